"""The ``gtvision`` command line.

Each sub-command lives in ``gtvision/commands/<name>.py`` and exposes ``register(subparsers)``;
handlers take the parsed arguments and return an exit code. Heavy imports (torch, PyAV, the web
app) happen inside handlers so ``gtvision --version`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gtvision import __version__
from gtvision.config import ConfigError, load_settings

COMMANDS: tuple[str, ...] = (
    "gtvision.commands.config",
    "gtvision.commands.db",
    "gtvision.commands.demo",
    "gtvision.commands.doctor",
    "gtvision.commands.eval",
    "gtvision.commands.flows",
    "gtvision.commands.lpr",
    "gtvision.commands.models",
    "gtvision.commands.relay",
    "gtvision.commands.replay",
    "gtvision.commands.retention",
    "gtvision.commands.run",
    "gtvision.commands.serve",
    "gtvision.commands.users",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="gtvision", description="Video management and licence-plate analytics."
    )
    parser.add_argument("--version", action="version", version=f"gtvision {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _setup_logging() -> None:
    """``GTV_LOG_LEVEL``/``GTV_LOG_FORMAT``/``GTV_LOG_FILE``; defaults when they are invalid.

    An invalid configuration is reported by the command itself (exit 2, one line).
    """
    from gtvision import logs

    try:
        settings = load_settings()
    except ConfigError:
        logs.setup()
        return
    logs.setup(settings.log_level, settings.log_format, settings.log_file)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gtvision`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    _setup_logging()
    try:
        code: int = args.func(args)
    except ConfigError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
