"""Built-in flows and how flows are found.

A flow is a function ``build(ctx: FlowContext) -> Dataflow`` (see :mod:`gtvision.flows.context`).
``load_flow`` accepts a built-in name (``motion``, ``lpr``) or ``MODULE:ATTR`` for your own.
"""

from __future__ import annotations

from gtvision.flows.context import BUILTIN_FLOWS, FlowBuilder, FlowContext, load_flow

__all__ = ["BUILTIN_FLOWS", "FlowBuilder", "FlowContext", "load_flow"]
