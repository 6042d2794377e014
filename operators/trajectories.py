"""Cross-camera trajectories: the same plate at several cameras of a city within a time window.

Passes (``lpr.detected``) are keyed by city and **plate key** (:func:`plate_key`: the old
``LLL9D99`` and Mercosul ``LLL9L99`` forms of one vehicle share a key), so one vehicle's
sightings meet in one ``StatefulLogic`` whatever camera or worker produced them. Rules:

* :class:`Then` ``cameras=(A, B, …), within_s=T``: seen at A, then B (then …), first to
  last within T. The chain is canonical: for each sighting of the last camera, the latest
  sighting of each earlier camera before the next one.
* :class:`Spread` ``min_cameras=N, within_s=T`` (optionally among ``cameras``): seen at N
  different cameras within T (sliding over the sightings in time order).

Each match is one :class:`~gtvision.events.PlateTrajectory` whose id is the UUID5 of the rule,
the plate key and the first sighting's pass, so overlapping windows that start at the same pass
are one event, and a replay gives the same ids.

**Out-of-order input.** A pass may arrive up to ``lateness_s`` (event time) after passes of the
same plate that are later than it. Sightings are kept sorted and a match is only decided once
the plate's watermark (its latest sighting time minus ``lateness_s``) is past the match's last
sighting, so a late pass within the lateness is part of the decision. Otherwise pending matches
are decided at the end of the input (replays), or ``idle_s`` of wall-clock time after the last
arrival (live runs).

**Hotlists.** :func:`trajectory_alerts` turns the trajectories of hotlisted plates into
``alert.triggered`` (its ``pass_id`` is the trajectory's id), so an operator is alerted when a
listed vehicle goes "A then B" or through N cameras, not only at each pass.

**Bounded memory.** Sightings older than the longest rule window behind the watermark can no
longer start a match and are dropped, at most ``max_sightings`` are kept per plate, and a plate
with nothing left is dropped from the state (all of it in the recovery snapshots).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulLogic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gtvision.events import Alert, HotlistMatch, PlatePass, PlateSighting, PlateTrajectory
from gtvision.operators.hotlist import HotlistMatcher, HotlistSource
from gtvision.operators.lpr.equivalence import plate_key
from gtvision.operators.passes import Clock, utcnow

_FAR = datetime.max.replace(tzinfo=UTC)


class Then(BaseModel):
    """Seen at ``cameras[0]``, then ``cameras[1]`` …, first to last within ``within_s``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["sequence"] = "sequence"
    cameras: tuple[int, ...] = Field(min_length=2, max_length=16)
    within_s: float = Field(gt=0, le=7 * 86400)

    @property
    def name(self) -> str:
        """Readable rule name (part of the trajectory id)."""
        return " then ".join(str(c) for c in self.cameras) + f" within {self.within_s:g}s"


class Spread(BaseModel):
    """Seen at ``min_cameras`` different cameras (of ``cameras``, if given) within ``within_s``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["spread"] = "spread"
    min_cameras: int = Field(default=2, ge=2, le=64)
    within_s: float = Field(gt=0, le=7 * 86400)
    cameras: tuple[int, ...] = ()

    @model_validator(mode="after")
    def _enough(self) -> Spread:
        if self.cameras and len(set(self.cameras)) < self.min_cameras:
            msg = f"{self.min_cameras} cameras asked among only {sorted(set(self.cameras))}"
            raise ValueError(msg)
        return self

    @property
    def name(self) -> str:
        """Readable rule name (part of the trajectory id)."""
        among = f" of {','.join(map(str, self.cameras))}" if self.cameras else ""
        return f"{self.min_cameras} cameras{among} within {self.within_s:g}s"


Rule = Then | Spread


@dataclass(frozen=True, slots=True)
class TrajectoryConfig:
    """Lateness (event seconds), wall-clock idle flush (None: end of input only), memory cap."""

    lateness_s: float = 60.0
    idle_s: float | None = 60.0
    max_sightings: int = 64


@dataclass
class PlateState:
    """One plate's sightings (time order), emitted matches, watermark, last arrival."""

    sightings: list[PlateSighting] = field(default_factory=list)
    emitted: set[tuple[str, str]] = field(default_factory=set)
    mark: datetime | None = None
    decided: datetime | None = None
    """Matches ending at or before this time were decided (pruning may not revisit them)."""
    arrival: datetime | None = None
    city_id: int = 0


def _then_chains(rule: Then, seen: Seq[PlateSighting]) -> list[list[PlateSighting]]:
    window = timedelta(seconds=rule.within_s)
    chains = []
    for i, last in enumerate(seen):
        if last.camera_id != rule.cameras[-1]:
            continue
        chain, j = [last], i
        for cam in reversed(rule.cameras[:-1]):
            j = next((k for k in range(j - 1, -1, -1) if seen[k].camera_id == cam), -1)
            if j < 0:
                break
            chain.insert(0, seen[j])
        if len(chain) == len(rule.cameras) and chain[-1].ts - chain[0].ts <= window:
            chains.append(chain)
    return chains


def _spread_chains(rule: Spread, seen: Seq[PlateSighting]) -> list[list[PlateSighting]]:
    window = timedelta(seconds=rule.within_s)
    pool = [s for s in seen if not rule.cameras or s.camera_id in rule.cameras]
    chains = []
    for i, last in enumerate(pool):
        inside = [s for s in pool[: i + 1] if last.ts - s.ts <= window]
        firsts: dict[int, PlateSighting] = {}
        for s in inside:
            firsts.setdefault(s.camera_id, s)
        if len(firsts) >= rule.min_cameras:
            chains.append(sorted(firsts.values(), key=lambda s: (s.ts, s.camera_id)))
    return chains


def matches(rule: Rule, seen: Seq[PlateSighting]) -> list[list[PlateSighting]]:
    """Every match of ``rule`` over ``seen`` (sorted by time), as ordered sightings."""
    if isinstance(rule, Then):
        return _then_chains(rule, seen)
    return _spread_chains(rule, seen)


class _Logic(StatefulLogic[PlatePass, PlateTrajectory, PlateState]):
    def __init__(
        self, rules: Seq[Rule], config: TrajectoryConfig, clock: Clock, resume: PlateState | None
    ) -> None:
        self.rules, self.config, self.clock = rules, config, clock
        self.state = resume if resume is not None else PlateState()
        self.lateness = timedelta(seconds=config.lateness_s)
        self.keep = timedelta(seconds=max(r.within_s for r in rules))

    def on_item(self, value: PlatePass) -> tuple[Iterable[PlateTrajectory], bool]:
        st = self.state
        st.city_id, st.arrival = value.city_id, self.clock()
        sighting = PlateSighting(
            camera_id=value.camera_id, ts=value.first_seen, plate=value.plate, pass_id=value.id
        )
        if all(s.pass_id != sighting.pass_id for s in st.sightings):
            st.sightings.append(sighting)
            st.sightings.sort(key=lambda s: (s.ts, s.camera_id, s.pass_id))
        st.mark = max(st.mark or sighting.ts, sighting.ts)
        out = self._decide(st.mark - self.lateness)
        self._prune(st.mark - self.lateness)
        return out, self._retain()

    def on_notify(self) -> tuple[Iterable[PlateTrajectory], bool]:
        return self._decide(_FAR), StatefulLogic.DISCARD

    def on_eof(self) -> tuple[Iterable[PlateTrajectory], bool]:
        return self._decide(_FAR), StatefulLogic.DISCARD

    def notify_at(self) -> datetime | None:
        idle, st = self.config.idle_s, self.state
        if idle is None or st.arrival is None or not st.sightings:
            return None
        return st.arrival + timedelta(seconds=idle)

    def snapshot(self) -> PlateState:
        return copy.deepcopy(self.state)

    def _decide(self, horizon: datetime) -> list[PlateTrajectory]:
        st, out = self.state, []
        done = st.decided
        for rule in self.rules:
            for chain in matches(rule, st.sightings):
                key = (rule.name, chain[0].pass_id)
                last = chain[-1].ts
                if last > horizon or (done is not None and last <= done) or key in st.emitted:
                    continue
                st.emitted.add(key)
                out.append(
                    PlateTrajectory(
                        city_id=st.city_id,
                        camera_id=chain[-1].camera_id,
                        ts=chain[-1].ts,
                        rule=rule.name,
                        plate=plate_key(chain[0].plate),
                        first_pass=chain[0].pass_id,
                        sightings=tuple(chain),
                    )
                )
        st.decided = horizon if done is None else max(done, horizon)
        return sorted(out, key=lambda t: (t.ts, t.rule))

    def _prune(self, horizon: datetime) -> None:
        st = self.state
        oldest = horizon - self.keep
        st.sightings = [s for s in st.sightings if s.ts >= oldest][-self.config.max_sightings :]
        live = {s.pass_id for s in st.sightings}
        st.emitted = {k for k in st.emitted if k[1] in live}

    def _retain(self) -> bool:
        return StatefulLogic.RETAIN if self.state.sightings else StatefulLogic.DISCARD


def _plate_key(p: PlatePass) -> str:
    return f"{p.city_id}/{plate_key(p.plate)}"


@operator
def plate_trajectories(
    step_id: str,
    passes: Stream[PlatePass],
    rules: Seq[Rule],
    config: TrajectoryConfig | None = None,
    clock: Clock = utcnow,
) -> Stream[PlateTrajectory]:
    """One ``plate.trajectory`` per match of ``rules`` by one vehicle's passes in a city."""
    if not rules:
        msg = f"plate_trajectories({step_id!r}) needs at least one rule"
        raise ValueError(msg)
    cfg = config or TrajectoryConfig()
    keyed = op.key_on("by_plate", op.filter("read", passes, lambda p: bool(p.plate)), _plate_key)

    def build(resume: PlateState | None) -> _Logic:
        return _Logic(tuple(rules), cfg, clock, resume)

    return op.key_rm("unkey", op.stateful("match", keyed, build))


def trajectory_alert(t: PlateTrajectory, matcher: HotlistMatcher, now: datetime) -> Alert | None:
    """The ``alert.triggered`` of a trajectory whose plate (any form read) is on a live entry.

    ``pass_id`` is the trajectory's id (the alert points at the trajectory, which lists the
    passes); one alert per trajectory and entry.
    """
    hits = [h for s in t.sightings if (h := matcher.best(s.plate, now)) is not None]
    if not hits:
        return None
    entry, dist = min(hits, key=lambda h: (-h[0].priority, h[1], h[0].id))
    match = HotlistMatch(
        entry_id=entry.id, pattern=entry.pattern, kind=entry.kind, distance=dist,
        priority=entry.priority, reason=entry.reason,
    )  # fmt: skip
    return Alert(
        city_id=t.city_id, camera_id=t.camera_id, ts=t.ts, pass_id=t.id,
        plate=t.sightings[-1].plate, match=match,
    )  # fmt: skip


@operator
def trajectory_alerts(
    step_id: str,
    trajectories: Stream[PlateTrajectory],
    hotlists: HotlistSource,
    clock: Clock = utcnow,
) -> Stream[Alert]:
    """One ``alert.triggered`` per trajectory of a plate on a live hotlist entry of its city."""

    def check(t: PlateTrajectory) -> Alert | None:
        return trajectory_alert(t, hotlists.matcher(t.city_id), clock())

    return op.filter_map("match", trajectories, check)
