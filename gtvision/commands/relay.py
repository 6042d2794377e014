"""``gtvision relay``: publish the outbox to RabbitMQ (beside ``serve``; several may run)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from gtvision.config import ConfigError, load_settings


async def _main(args: argparse.Namespace) -> int:
    from gtvision import metrics
    from gtvision.sinks.relay import OutboxRelay, RelayConfig

    settings = load_settings()
    for var, value in (
        ("GTV_DATABASE_URL", settings.database_url),
        ("GTV_AMQP_URL", settings.amqp_url),
    ):
        if not value:
            msg = f"invalid configuration: {var}='': the relay needs it set"
            raise ConfigError(msg)
    relay = OutboxRelay(RelayConfig.from_settings(settings))
    metrics.serve_http(args.metrics_port or settings.metrics_port, settings.http_host, "relay")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await relay.run(stop, until_empty=args.until_empty)
    finally:
        await relay.close()
    print(f"relay stopped: {relay.sent} confirmed, {relay.failed} unconfirmed attempts")
    return 0


def _relay(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``relay``."""
    parser = sub.add_parser("relay", help="publish outbox rows to RabbitMQ (publisher confirms)")
    parser.add_argument(
        "--until-empty", action="store_true", help="exit once the outbox backlog is empty"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on this port (default GTV_METRICS_PORT)",
    )
    parser.set_defaults(func=_relay)
