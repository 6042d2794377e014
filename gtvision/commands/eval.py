"""``gtvision eval --flow F --labels labels.csv VIDEO…``: score a flow against labelled videos.

The videos are replayed exactly as ``gtvision replay`` does (same arguments: files, directory,
``--manifest``, ``--camera-id``, ``--param``…), then the flow's events are matched to the labels
(:mod:`gtvision.flows.scoring`): precision, recall and F1 per event type, the labels missed and
the false events. ``--json OUT`` writes the report as JSON (``-``: stdout);
``--min-precision``/``--min-recall`` make the exit code 1 when a scored type is below them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from gtvision.commands.replay import (
    UsageError,
    _entries,
    _plan,
    _replay,
    add_replay_arguments,
)
from gtvision.config import load_settings


def _anchor(file: str, start: datetime | None) -> datetime:
    from gtvision.sources.decode import EPOCH, creation_time

    if start is not None:
        return start
    if file.startswith("s3://"):
        return EPOCH
    import av

    with av.open(file) as container:
        return creation_time(dict(container.metadata)) or EPOCH


def _eval(args: argparse.Namespace) -> int:
    from gtvision.flows.scoring import LabelError, load_labels, score
    from gtvision.sources.multifile import ManifestError

    settings = load_settings()
    try:
        labels = load_labels(args.labels)
        plans = [_plan(entry, args, settings) for entry in _entries(args)]
    except (LabelError, ManifestError, UsageError) as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    anchors = {p.camera_id: _anchor(p.file, p.start) for p in plans}
    with tempfile.TemporaryDirectory(prefix="gtv-eval-") as tmp:
        out = Path(tmp) / "events.jsonl"
        args.jsonl, args.stream = str(out), False
        code = _replay(args, plans)
        if code != 0:
            return code
        events = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    types = frozenset(t for t in (args.types or "").split(",") if t)
    try:
        report = score(events, labels, anchors, args.tolerance, types)
    except LabelError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    data: dict[str, Any] = {"flow": args.flow, **report.as_json()}
    if args.json == "-":
        print(json.dumps(data, indent=2, default=str))
    else:
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=2, default=str), "utf-8")
        print("\n".join(report.lines()))
    low = [
        f"{t}: precision {s.precision:.3f}, recall {s.recall:.3f}"
        for t, s in sorted(report.scores.items())
        if s.precision < args.min_precision or s.recall < args.min_recall
    ]
    if low:
        print(
            f"gtvision: below the bars (precision ≥ {args.min_precision}, recall ≥ "
            f"{args.min_recall}): " + "; ".join(low),
            file=sys.stderr,
        )
        return 1
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``eval``."""
    p = sub.add_parser("eval", help="score a flow against labelled videos (precision/recall/F1)")
    add_replay_arguments(p)
    p.add_argument("--labels", type=Path, required=True, help="CSV: type,camera,time[,plate…]")
    p.add_argument("--tolerance", type=float, default=2.0, help="seconds (default 2)")
    p.add_argument("--types", default="", help="score only these event types (comma-separated)")
    p.add_argument("--json", default="", metavar="OUT", help="write the report as JSON (- stdout)")
    p.add_argument("--min-precision", type=float, default=0.0, help="exit 1 below this")
    p.add_argument("--min-recall", type=float, default=0.0, help="exit 1 below this")
    p.set_defaults(func=_eval, quiet=True)
