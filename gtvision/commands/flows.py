"""``gtvision flows list|show``: the built-in flows, and what a flow is and takes."""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any


def _list(args: argparse.Namespace) -> int:
    from gtvision.flows.context import BUILTIN_FLOWS, load_flow

    for name, target in sorted(BUILTIN_FLOWS.items()):
        doc = inspect.getdoc(sys.modules[load_flow(name).__module__]) or ""
        print(f"{name:8} {target:28} {doc.splitlines()[0] if doc else ''}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from gtvision.flows.context import FlowNotFoundError, load_flow
    from gtvision.flows.params import describe, params_model

    try:
        builder = load_flow(args.flow)
    except FlowNotFoundError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    module = sys.modules[builder.__module__]
    doc = inspect.getdoc(module) or inspect.getdoc(builder) or "(no description)"
    print(f"flow {builder.__module__}:{builder.__name__}")
    print(f"  {doc.splitlines()[0]}")
    model = params_model(builder)
    print("parameters" + (f" ({model.__name__}):" if model is not None else ":"))
    for line in describe(model):
        print(line)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``flows list`` and ``flows show``."""
    p = sub.add_parser("flows", help="list the built-in flows, show a flow's parameters")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("list", help="the built-in flows").set_defaults(func=_list)
    show = verbs.add_parser("show", help="a flow's description and parameters")
    show.add_argument("flow", help="motion, lpr or MODULE:ATTR")
    show.set_defaults(func=_show)
