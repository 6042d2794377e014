"""Scoring a flow's events against labels: precision, recall and F1 per event type.

Labels are CSV rows ``type,camera,time[,tolerance_s][,ATTRIBUTE…]``:

* ``camera``: the camera id the replay gives the file (``--camera-id``, manifest ids);
* ``time``: an ISO time, or seconds after the camera's first frame (its replay anchor);
* any other column (``plate``, ``zone``, ``line``, ``direction``, ``count`` …): when the row
  gives a value, the event must carry the same value in the field of that name (compared as
  text; plates by their old/Mercosul key, so ``ABC1234`` matches ``ABC1C34``);
* ``tolerance_s``: how far the event's ``ts`` may be from ``time`` (default ``--tolerance``).

Events of a type are matched one-to-one to labels of the same type and camera: candidate pairs
within the tolerance and with equal attributes are taken closest first. A label left alone is a
**miss**, an event left alone a **false event**. The types that have labels are scored (so
camera health events do not count as false events); ``--types`` scores exactly the types it
names (labels of other types are ignored, types without labels count every event as false).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from gtvision.operators.lpr.equivalence import plate_key

_SHOWN = ("plate", "zone", "line", "direction", "count")
_FIXED = frozenset({"type", "camera", "time", "tolerance_s"})


class LabelError(ValueError):
    """A labels file that cannot be read (names the row and the problem)."""


class Label(BaseModel):
    """One expected event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1)
    camera: int = Field(ge=0)
    time: AwareDatetime | float
    attrs: dict[str, str] = Field(default_factory=dict)
    tolerance_s: float | None = Field(default=None, gt=0)
    row: int = 0


def load_labels(path: Path) -> list[Label]:
    """The labels of a CSV file (header row required)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        msg = f"labels file not found: {str(path)!r}"
        raise LabelError(msg) from None
    rows = list(csv.DictReader(line for line in text.splitlines() if line.strip()))
    labels = []
    for i, row in enumerate(rows, start=2):
        data: dict[str, Any] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        data = {k: v for k, v in data.items() if v != ""}
        attrs = {k: v for k, v in data.items() if k not in _FIXED}
        fixed: dict[str, Any] = {k: v for k, v in data.items() if k in _FIXED}
        fixed["time"] = _time(str(fixed.get("time", "")))
        try:
            labels.append(Label.model_validate({**fixed, "attrs": attrs, "row": i}))
        except ValidationError as err:
            msg = f"labels {str(path)!r} line {i} ({row!r}): {err}"
            raise LabelError(msg) from None
    if not labels:
        msg = f"labels {str(path)!r} has no rows (expected a header type,camera,time,…)"
        raise LabelError(msg)
    return labels


def _time(text: str) -> float | str:
    """Seconds after the camera's first frame when numeric, else the ISO text as given."""
    try:
        return float(text)
    except ValueError:
        return text.replace("Z", "+00:00")


def _key(name: str, value: object) -> str:
    text = str(value)
    return plate_key(text) if name == "plate" else text


@dataclass
class TypeScore:
    """Counts and rates of one event type."""

    labels: int = 0
    events: int = 0
    matched: int = 0

    @property
    def precision(self) -> float:
        """Matched events ÷ events (1 when there were none)."""
        return self.matched / self.events if self.events else 1.0

    @property
    def recall(self) -> float:
        """Matched labels ÷ labels (1 when there were none)."""
        return self.matched / self.labels if self.labels else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    """Scores per type, the labels missed and the events that match no label."""

    scores: dict[str, TypeScore] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)
    false_events: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "types": {
                t: {**asdict(s), "precision": s.precision, "recall": s.recall, "f1": s.f1}
                for t, s in sorted(self.scores.items())
            },
            "misses": self.misses,
            "false_events": self.false_events,
        }

    def lines(self) -> list[str]:
        """A readable table, then the misses and false events."""
        out = [f"{'type':20} {'labels':>6} {'events':>6} {'precision':>9} {'recall':>6} {'F1':>6}"]
        for t, s in sorted(self.scores.items()):
            out.append(
                f"{t:20} {s.labels:6d} {s.events:6d} {s.precision:9.3f} {s.recall:6.3f} {s.f1:6.3f}"
            )
        out += [f"miss: {json.dumps(m, default=str)}" for m in self.misses]
        out += [f"false event: {json.dumps(f, default=str)}" for f in self.false_events]
        return out


def _label_time(label: Label, anchors: dict[int, datetime]) -> datetime:
    if isinstance(label.time, datetime):
        return label.time
    if label.camera not in anchors:  # labels of a camera that is not replayed: wrong file
        known = ", ".join(str(c) for c in sorted(anchors)) or "none"
        msg = f"label line {label.row}: camera {label.camera} is not replayed (cameras: {known})"
        raise LabelError(msg)
    return anchors[label.camera] + timedelta(seconds=label.time)


def score(
    events: list[dict[str, Any]],
    labels: list[Label],
    anchors: dict[int, datetime],
    tolerance_s: float = 2.0,
    types: frozenset[str] = frozenset(),
) -> Report:
    """Match ``events`` (decoded JSON lines) to ``labels``; see the module docstring."""
    scored = set(types) or {lb.type for lb in labels}
    labels = [lb for lb in labels if lb.type in scored]
    report = Report(scores={t: TypeScore() for t in scored})
    evs = [e for e in events if e.get("type") in scored]
    times = [datetime.fromisoformat(str(e["ts"]).replace("Z", "+00:00")) for e in evs]
    pairs = []
    for li, lb in enumerate(labels):
        when = _label_time(lb, anchors)
        tol = lb.tolerance_s or tolerance_s
        wanted = {a: _key(a, v) for a, v in lb.attrs.items()}
        for ei, ev in enumerate(evs):
            if ev["type"] != lb.type or int(ev.get("camera_id", -1)) != lb.camera:
                continue
            dt = abs((times[ei] - when).total_seconds())
            if dt > tol or any(_key(a, ev.get(a, "")) != v for a, v in wanted.items()):
                continue
            pairs.append((dt, li, ei))
    used_l: set[int] = set()
    used_e: set[int] = set()
    for _dt, li, ei in sorted(pairs):
        if li not in used_l and ei not in used_e:
            used_l.add(li)
            used_e.add(ei)
    for li, lb in enumerate(labels):
        s = report.scores[lb.type]
        s.labels += 1
        if li in used_l:
            s.matched += 1
        else:
            report.misses.append(lb.model_dump(mode="json", exclude_defaults=True))
    for ei, ev in enumerate(evs):
        report.scores[ev["type"]].events += 1
        if ei not in used_e:
            shown = {k: ev.get(k) for k in ("type", "camera_id", "ts", "id", *_SHOWN)}
            report.false_events.append({k: v for k, v in shown.items() if v is not None})
    return report
