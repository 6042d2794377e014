"""A deterministic file-driven flow for the crash tests: plate readings → plate passes.

The input file has one reading per line, ``camera_id,plate,seconds``. The source (one partition,
resume state = next line number) paces itself with ``next_awake`` so a run lasts a few
seconds. A keyed ``stateful_map`` (snapshotted by Bytewax recovery) folds consecutive readings of
one camera into a :class:`~gtvision.events.PlatePass`, emitted when the plate changes; ids are
deterministic (type, city, camera, first_seen).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import Sink

from gtvision.events import EventBase, PlatePass

T0 = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
CITY = 21


@dataclass(frozen=True)
class Reading:
    """One line of the file."""

    camera_id: int
    plate: str
    seconds: float


def write_readings(path: Path, cameras: int = 3, passes: int = 60, seed: int = 7) -> Path:
    """Readings of ``passes`` plates per camera (3–8 reads each), interleaved; then an END."""
    rng = random.Random(seed)
    lines: list[tuple[float, str]] = []
    for cam in range(1, cameras + 1):
        t = 0.0
        for p in range(passes):
            plate = f"C{cam}P{p:03d}"
            for _ in range(rng.randint(3, 8)):
                t += rng.uniform(0.05, 0.3)
                lines.append((t, f"{cam},{plate},{t:.3f}"))
            t += 1.0
        lines.append((t + 1, f"{cam},END,{t + 1:.3f}"))
    lines.sort()
    path.write_text("\n".join(line for _, line in lines) + "\n")
    return path


class _Part(StatefulSourcePartition[Reading, int]):
    def __init__(self, path: Path, resume: int, per_batch: int, pause: timedelta) -> None:
        self._lines = path.read_text().splitlines()
        self._pos = resume
        self._per_batch = per_batch
        self._pause = pause
        self._awake = datetime.now(UTC)

    def next_batch(self) -> list[Reading]:
        if self._pos >= len(self._lines):
            raise StopIteration
        chunk = self._lines[self._pos : self._pos + self._per_batch]
        self._pos += len(chunk)
        self._awake = datetime.now(UTC) + self._pause
        out = []
        for line in chunk:
            cam, plate, sec = line.split(",")
            out.append(Reading(int(cam), plate, float(sec)))
        return out

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        return self._pos


class ReadingsSource(FixedPartitionedSource[Reading, int]):
    """Lines of a readings file, ``per_batch`` every ``pause``."""

    def __init__(self, path: Path, per_batch: int = 4, pause_s: float = 0.01) -> None:
        self.path = path
        self.per_batch = per_batch
        self.pause = timedelta(seconds=pause_s)

    def list_parts(self) -> list[str]:
        return ["readings"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Part:
        return _Part(self.path, resume_state or 0, self.per_batch, self.pause)


@dataclass(frozen=True)
class _Open:
    plate: str
    first: float
    last: float
    reads: int


def _fold(state: _Open | None, r: Reading) -> tuple[_Open | None, PlatePass | None]:
    if state is not None and state.plate == r.plate:
        return _Open(r.plate, state.first, r.seconds, state.reads + 1), None
    done = None
    if state is not None:
        first, last = T0 + timedelta(seconds=state.first), T0 + timedelta(seconds=state.last)
        done = PlatePass(
            city_id=CITY,
            camera_id=r.camera_id,
            ts=last,
            plate=state.plate,
            confidence=min(1.0, 0.5 + 0.05 * state.reads),
            first_seen=first,
            last_seen=last,
            reads=state.reads,
        )
    return _Open(r.plate, r.seconds, r.seconds, 1), done


def _not_none(item: tuple[str, PlatePass | None]) -> PlatePass | None:
    return item[1]


def build(path: Path, sink: Sink[EventBase]) -> Dataflow:
    """readings → keyed fold → plate passes → ``sink``."""
    flow = Dataflow("readings_passes")
    readings = op.input("in", flow, ReadingsSource(path))
    keyed = op.key_on("by_camera", readings, lambda r: str(r.camera_id))
    folded = op.stateful_map("fold", keyed, _fold)
    passes = op.filter_map("passes", folded, _not_none)
    op.output("sink", passes, sink)
    return flow
