"""``gtvision doctor``: check every configured service and print one line per check."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from gtvision.config import load_settings


def _doctor(args: argparse.Namespace) -> int:
    from gtvision.doctor import format_table, run_checks

    # a refused AMQP connection is reported in the table; aiormq would also log it
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    checks = run_checks(load_settings(), timeout=args.timeout)
    print(format_table(checks), flush=True)
    return 1 if any(c.failed for c in checks) else 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``doctor``."""
    parser = sub.add_parser(
        "doctor",
        help="check PostgreSQL, Redis, RabbitMQ, S3 and RTSP sources (exit 1 if any fails)",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds per connection (default 5)"
    )
    parser.set_defaults(func=_doctor)
