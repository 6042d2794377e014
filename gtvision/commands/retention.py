"""``gtvision retention``: LGPD retention runs and plate erasure (see ``sinks/retention.py``)."""

from __future__ import annotations

import argparse
import getpass
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from gtvision.config import load_settings


def _run(args: argparse.Namespace) -> int:
    from gtvision import metrics
    from gtvision.sinks.retention import purger_from_settings

    settings = load_settings()
    purger = purger_from_settings(settings)
    if args.every:
        metrics.serve_http(
            args.metrics_port or settings.metrics_port, settings.http_host, "retention"
        )
    stop = threading.Event()
    if args.every:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    while True:
        done = purger.expire(
            datetime.now(UTC),
            default_days=settings.retention_days,
            audit_days=settings.audit_retention_days,
            dry_run=args.dry_run,
        )
        key = "would_remove" if args.dry_run else "removed"
        print(json.dumps({key: done.as_dict()}), flush=True)
        if not args.dry_run:
            for kind, count in done.as_dict().items():
                metrics.RETENTION_REMOVED.labels(kind).inc(count)
            metrics.RETENTION_LAST_RUN.set_to_current_time()
        if not args.every or stop.wait(args.every):
            return 0


def _erase(args: argparse.Namespace) -> int:
    from gtvision.sinks.retention import purger_from_settings

    if (args.city is None) == (not args.all_cities):
        print("gtvision: retention erase needs --city N or --all-cities", file=sys.stderr)
        return 2
    purger = purger_from_settings(load_settings())
    try:
        done = purger.erase(
            args.plate,
            city_id=args.city,
            actor=f"cli:{getpass.getuser()}",
            reference=args.reference,
            dry_run=args.dry_run,
            equivalent=not args.exact,
        )
    except ValueError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    key = "would_remove" if args.dry_run else "removed"
    print(json.dumps({key: done.as_dict()}), flush=True)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``retention run`` and ``retention erase``."""
    parser = sub.add_parser("retention", help="LGPD: delete expired data, erase a plate's data")
    cmds = parser.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    run = cmds.add_parser(
        "run",
        help="delete events and recordings past their camera's retention_days, old audit rows",
    )
    run.add_argument("--dry-run", action="store_true", help="only count what would go")
    run.add_argument(
        "--every", type=float, default=0.0, metavar="SECONDS", help="repeat until stopped"
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="with --every: serve Prometheus metrics on this port (default GTV_METRICS_PORT)",
    )
    run.set_defaults(func=_run)
    erase = cmds.add_parser(
        "erase",
        help="delete every stored event of one plate and of its other form (old <-> Mercosul),"
        " objects, feed and outbox included",
        description="Delete every stored event of one plate (objects, feed entries, outbox"
        " rows) and rewrite audited searches of it to 'erased'. By default the plate's other"
        " Brazilian form goes too: old ABC1234 and Mercosul ABC1C34 name one vehicle.",
    )
    erase.add_argument("plate", help="the plate, e.g. ABC1D23 (separators are ignored)")
    erase.add_argument("--city", type=int, default=None, help="only in this city id")
    erase.add_argument("--all-cities", action="store_true", help="in every city")
    erase.add_argument(
        "--reference", default="", help="the request's reference, kept in the audit log"
    )
    erase.add_argument(
        "--exact",
        action="store_true",
        help="erase exactly the given text, not the plate's other form (old <-> Mercosul)",
    )
    erase.add_argument("--dry-run", action="store_true", help="only count what would go")
    erase.set_defaults(func=_erase)
