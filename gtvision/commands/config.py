"""``gtvision config show``: the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
from typing import Any

from gtvision.config import load_settings


def _show(args: argparse.Namespace) -> int:
    settings = load_settings()
    rows = settings.display()
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``config show``."""
    parser = sub.add_parser("config", help="show the effective configuration")
    cmds = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = cmds.add_parser("show", help="print every GTV_ variable (secrets masked)")
    show.set_defaults(func=_show)
