"""Command-line arguments shared by the flow commands (``replay``, ``run``, ``eval``).

Kept free of flow imports: building the ``gtvision`` parser must not import the flows (their
operators load metrics, OpenCV, Bytewax), so ``gtvision --version`` and ``gtvision serve`` stay
light; the values are interpreted by :mod:`gtvision.flows.params` inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_param_arguments(parser: argparse.ArgumentParser) -> None:
    """``--param KEY=VALUE`` (repeatable) and ``--params FILE.toml``."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a flow parameter (repeatable; VALUE read as JSON when it parses)",
    )
    parser.add_argument(
        "--params", type=Path, default=None, metavar="FILE", help="flow parameters (TOML)"
    )
