"""``gtvision demo``: the whole slice on embedded defaults (see :mod:`gtvision.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gtvision.config import load_settings


def _demo(args: argparse.Namespace) -> int:
    from gtvision.demo import DemoOptions, run

    settings = load_settings()
    opts = DemoOptions(
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        video=args.video,
        loops=args.loops,
        reset_password=args.reset_admin_password,
    )
    return run(settings, opts)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``demo``."""
    parser = sub.add_parser(
        "demo",
        help="run the whole slice on a sample video: embedded PostgreSQL, LPR flow, web app",
        description=(
            "Start PostgreSQL (embedded unless GTV_DATABASE_URL is set), the LPR flow over a "
            "generated street video looped in real time, and the web app with the operator "
            "page. Data lives in GTV_DATA_DIR. Ctrl-C stops everything."
        ),
    )
    parser.add_argument("--host", default="", help="listen address (default GTV_HTTP_HOST)")
    parser.add_argument("--port", type=int, default=0, help="listen port (default GTV_HTTP_PORT)")
    parser.add_argument("--video", type=Path, default=None, help="loop this video instead")
    parser.add_argument(
        "--loops", type=int, default=0, help="stop the flow after N loops (0: never)"
    )
    parser.add_argument(
        "--reset-admin-password",
        action="store_true",
        help="give the admin user a new random password (or GTV_BOOTSTRAP_PASSWORD) and print it",
    )
    parser.set_defaults(func=_demo)
