"""Ordered SQL migrations (``gtvision/migrations/NNNN_name.sql``) and their runner.

``upgrade`` takes a session-level advisory lock first, so two processes upgrading at once
serialise: one applies, the other waits and then finds nothing left to do. Each migration runs
in its own transaction together with its row in ``schema_migrations``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import psycopg

ADVISORY_LOCK_KEY = 0x67747669  # "gtvi"
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the SQL text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """All migrations shipped with the package, ordered by version."""
    found: list[Migration] = []
    for entry in resources.files("gtvision.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        stem = entry.name.removesuffix(".sql")
        version, _, name = stem.partition("_")
        found.append(Migration(version=version, name=name, sql=entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


class MigrationError(Exception):
    """A migration cannot be applied or the database history disagrees with the code."""


def upgrade(dsn: str) -> list[str]:
    """Apply pending migrations to ``dsn``; return the versions applied (empty when current)."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
            done = {str(v): str(c) for v, c in rows}
            for mig in migrations():
                if mig.version in done:
                    if done[mig.version] != mig.checksum:
                        msg = (
                            f"migration {mig.version}_{mig.name} was changed after it was "
                            f"applied (checksum {done[mig.version][:12]} in the database, "
                            f"{mig.checksum[:12]} in the code)"
                        )
                        raise MigrationError(msg)
                    continue
                with conn.transaction():
                    conn.execute(mig.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                        (mig.version, mig.checksum),
                    )
                applied_now.append(mig.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


def current_version(dsn: str) -> str | None:
    """Newest applied migration version, or ``None`` on an empty database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if not exists or exists[0] is None:
            return None
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return None if row is None else row[0]
