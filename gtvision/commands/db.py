"""``gtvision db upgrade``: apply pending schema migrations."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import psycopg

from gtvision.config import ConfigError, load_settings, mask_url
from gtvision.schema import MigrationError, upgrade


def _upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    dsn = args.database_url or settings.database_url
    if not dsn:
        msg = "invalid configuration: GTV_DATABASE_URL='': expected a postgresql:// URL"
        raise ConfigError(msg)
    try:
        applied = upgrade(dsn)
    except psycopg.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"gtvision: cannot reach {mask_url(dsn)}: {first}", file=sys.stderr)
        return 1
    except MigrationError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 1
    if applied:
        print(f"applied migrations: {', '.join(applied)}")
    else:
        print("database is current: nothing to apply")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``db upgrade``."""
    parser = sub.add_parser("db", help="database schema")
    cmds = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = cmds.add_parser("upgrade", help="apply pending migrations (safe to run concurrently)")
    up.add_argument("--database-url", default="", help="override GTV_DATABASE_URL")
    up.set_defaults(func=_upgrade)
