"""``gtvision users create NAME --role ROLE [--city ID]``: bootstrap accounts from the shell.

The password comes from ``GTV_BOOTSTRAP_PASSWORD``, else from a prompt on a terminal, else it is
generated and printed once.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import Any

from gtvision.config import ConfigError, load_settings

ROLES = ("admin", "city_admin", "operator", "analyst", "viewer")


def _password(settings_password: str) -> tuple[str, bool] | None:
    """``(password, generated)``: GTV_BOOTSTRAP_PASSWORD, a prompt, or a random one."""
    if settings_password:
        return settings_password, False
    if not sys.stdin.isatty():
        return secrets.token_urlsafe(15), True
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        print("gtvision: the two passwords differ", file=sys.stderr)
        return None
    return first, False


def _create(args: argparse.Namespace) -> int:
    import psycopg

    from gtvision.web.auth import hash_password

    settings = load_settings()
    if not settings.database_url:
        msg = "invalid configuration: GTV_DATABASE_URL='': expected a postgresql:// URL"
        raise ConfigError(msg)
    if args.role != "admin" and args.city is None:
        print(f"gtvision: role {args.role!r} needs --city ID", file=sys.stderr)
        return 2
    chosen = _password(settings.bootstrap_password.get_secret_value())
    if chosen is None:
        return 2
    password, generated = chosen
    if len(password) < 8:
        print(f"gtvision: password too short ({len(password)} < 8 characters)", file=sys.stderr)
        return 2
    city = None if args.role == "admin" else args.city
    try:
        with psycopg.connect(settings.database_url) as conn:
            row = conn.execute(
                "INSERT INTO users (username, password_hash, role, city_id) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (args.name, hash_password(password), args.role, city),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        print(f"gtvision: user {args.name!r} already exists", file=sys.stderr)
        return 1
    except psycopg.errors.ForeignKeyViolation:
        print(f"gtvision: city {city} does not exist", file=sys.stderr)
        return 1
    except psycopg.OperationalError as err:
        print(f"gtvision: cannot reach the database: {err}".strip(), file=sys.stderr)
        return 1
    assert row is not None
    where = "all cities" if city is None else f"city {city}"
    print(f"created user {args.name!r} (id {row[0]}, role {args.role}, {where})")
    if generated:
        print(f"generated password (shown once): {password}")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``users create``."""
    parser = sub.add_parser("users", help="user accounts")
    cmds = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = cmds.add_parser(
        "create", help="create a user (password: GTV_BOOTSTRAP_PASSWORD, a prompt, or generated)"
    )
    create.add_argument("name", help="login name")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--city", type=int, default=None, help="city id (all roles but admin)")
    create.set_defaults(func=_create)
