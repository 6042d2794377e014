"""Hotlists: per-city plate patterns that raise ``alert.triggered`` when a vehicle passes.

Entry kinds (``hotlists.kind``):

* ``exact``: the plate equals the pattern;
* ``wildcard``: ``*`` is any run of characters, ``?`` exactly one (``ABC*``, ``?BC1D23``);
* ``fuzzy``: :func:`~gtvision.operators.lpr.ocrdist.ocr_distance` to the pattern is at most
  ``max_distance`` (a confusable substitution like ``O``/``0`` or ``8``/``B`` costs 0.5, any other
  edit 1), so an OCR-confused read still matches.

Patterns and plates are compared upper-case without spaces or dashes. A Brazilian plate also
matches through its other form (:mod:`gtvision.operators.lpr.equivalence`: old ``ABC1234`` is
Mercosul ``ABC1C34``): an entry for either form alerts on a read of either, and the alert's
match says which form was read and whether the entry matched through the other one. An entry whose
``expires_at`` is not after the current wall-clock time never matches.

**One alert per pass**: when several entries match, the highest ``priority`` wins (then exact
before wildcard before fuzzy, then the smaller distance, then the smaller entry id). One vehicle
pass gives at most one alert, carrying the entry that matters most, so operators are not flooded
with near-identical alerts for one car; the alert id is the UUID5 of the pass and the match.

:class:`HotlistMatcher` is built once per refresh: exact entries in a dict, wildcard entries
bucketed by their first literal character and compiled to regexes, fuzzy entries prefiltered
with rapidfuzz's C Levenshtein before the weighted distance -- a pass costs well under a
millisecond against thousands of entries. :class:`PgHotlists` reloads the ``hotlists`` table in
a background thread every ``refresh_s`` seconds, so entries added through the API reach a
running flow without a restart (the last good load stays in use when the database is down).
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal, Protocol

import bytewax.operators as op
import psycopg
from bytewax.dataflow import Stream, operator
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from gtvision.events import Alert, HotlistMatch, PlatePass, UtcDatetime
from gtvision.operators.lpr.equivalence import plate_identity
from gtvision.operators.lpr.ocrdist import levenshtein_bound, ocr_distance
from gtvision.operators.passes import Clock, utcnow
from gtvision.operators.refresh import Reloading

log = logging.getLogger(__name__)

HotlistKind = Literal["exact", "wildcard", "fuzzy"]
_KIND_RANK: dict[str, int] = {"exact": 0, "wildcard": 1, "fuzzy": 2}
_NORMALISE = re.compile(r"[\s\-.]")
_LITERAL = re.compile(r"^[A-Z0-9]+$")
_WILDCARD = re.compile(r"^[A-Z0-9*?]+$")


def normalise_plate(text: str) -> str:
    """Upper-case, without spaces, dashes or dots (``abc-1234`` -> ``ABC1234``)."""
    return _NORMALISE.sub("", text).upper()


class HotlistEntry(BaseModel):
    """One row of the ``hotlists`` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    city_id: int = Field(ge=0)
    pattern: str
    kind: HotlistKind
    max_distance: float = Field(default=1.0, ge=0.0)
    priority: int = 0
    reason: str = ""
    expires_at: UtcDatetime | None = None

    @field_validator("pattern")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_plate(value)

    @model_validator(mode="after")
    def _check_pattern(self) -> HotlistEntry:
        allowed = _WILDCARD if self.kind == "wildcard" else _LITERAL
        if not allowed.match(self.pattern):
            msg = f"hotlist entry {self.id}: pattern {self.pattern!r} is not valid for {self.kind}"
            raise ValueError(msg)
        return self

    def expired(self, now: datetime) -> bool:
        """True once ``expires_at`` is reached."""
        return self.expires_at is not None and self.expires_at <= now


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body)


class HotlistMatcher:
    """Matches plates against the entries of one city (see the module docstring)."""

    def __init__(self, entries: Iterable[HotlistEntry]) -> None:
        self.exact: dict[str, list[HotlistEntry]] = defaultdict(list)
        self.wild_by_first: dict[str, list[tuple[re.Pattern[str], HotlistEntry]]] = defaultdict(
            list
        )
        self.wild_any: list[tuple[re.Pattern[str], HotlistEntry]] = []
        self.fuzzy: list[HotlistEntry] = []
        self.size = 0
        for e in entries:
            self.size += 1
            if e.kind == "exact":
                self.exact[e.pattern].append(e)
            elif e.kind == "wildcard":
                compiled = (_wildcard_regex(e.pattern), e)
                first = e.pattern[0]
                if first in "*?":
                    self.wild_any.append(compiled)
                else:
                    self.wild_by_first[first].append(compiled)
            else:
                self.fuzzy.append(e)
        self.fuzzy_patterns = [e.pattern for e in self.fuzzy]
        max_d = max((e.max_distance for e in self.fuzzy), default=0.0)
        self.lev_cutoff = levenshtein_bound(max_d)

    def __len__(self) -> int:
        return self.size

    def matches(self, plate: str, now: datetime) -> list[tuple[HotlistEntry, float]]:
        """Every live entry matching ``plate`` or its other form, with its distance.

        The distance is 0 for exact/wildcard matches; an entry matching both forms is listed
        once, with the smaller distance (the read form first on a tie).
        """
        best: dict[int, tuple[HotlistEntry, float]] = {}
        for form in plate_identity(normalise_plate(plate)).forms:
            for e, d in self._matches(form, now):
                if e.id not in best or d < best[e.id][1]:
                    best[e.id] = (e, d)
        return list(best.values())

    def matched_form(self, plate: str, entry: HotlistEntry) -> str:
        """Which form of ``plate`` ``entry`` matches best (the read text on a tie)."""
        forms = plate_identity(normalise_plate(plate)).forms
        far = float("inf")
        scored = [
            (min((d for e, d in self._matches(f, None) if e.id == entry.id), default=far), i)
            for i, f in enumerate(forms)
        ]
        return forms[min(scored)[1]]

    def _matches(self, text: str, now: datetime | None) -> list[tuple[HotlistEntry, float]]:
        if not text:
            return []
        found: list[tuple[HotlistEntry, float]] = [(e, 0.0) for e in self.exact.get(text, ())]
        for rx, e in (*self.wild_by_first.get(text[0], ()), *self.wild_any):
            if rx.fullmatch(text):
                found.append((e, 0.0))
        if self.fuzzy:
            near = process.extract(
                text,
                self.fuzzy_patterns,
                scorer=Levenshtein.distance,
                score_cutoff=self.lev_cutoff,
                limit=None,
            )
            for _, _, idx in near:
                e = self.fuzzy[idx]
                dist = ocr_distance(text, e.pattern)
                if dist <= e.max_distance:
                    found.append((e, dist))
        return [(e, d) for e, d in found if now is None or not e.expired(now)]

    def best(self, plate: str, now: datetime) -> tuple[HotlistEntry, float] | None:
        """The winning match: highest priority, then exact > wildcard > fuzzy, distance, id."""
        found = self.matches(plate, now)
        if not found:
            return None
        return min(found, key=lambda m: (-m[0].priority, _KIND_RANK[m[0].kind], m[1], m[0].id))


class HotlistSource(Protocol):
    """Where the alert operator gets the current matcher of a city."""

    def matcher(self, city_id: int) -> HotlistMatcher:
        """The current matcher of ``city_id`` (empty when the city has no entries)."""
        ...


_EMPTY = HotlistMatcher(())


class StaticHotlists:
    """Fixed entries (tests, replays with a hotlist file)."""

    def __init__(self, entries: Iterable[HotlistEntry]) -> None:
        by_city: dict[int, list[HotlistEntry]] = defaultdict(list)
        for e in entries:
            by_city[e.city_id].append(e)
        self.matchers = {city: HotlistMatcher(es) for city, es in by_city.items()}

    def matcher(self, city_id: int) -> HotlistMatcher:
        """The matcher of ``city_id``."""
        return self.matchers.get(city_id, _EMPTY)


_SELECT = (
    "SELECT id, city_id, pattern, kind, max_distance, priority, reason, expires_at "
    "FROM hotlists WHERE expires_at IS NULL OR expires_at > now() ORDER BY id"
)


def load_entries(dsn: str) -> list[HotlistEntry]:
    """Every unexpired row of the ``hotlists`` table (invalid rows are logged and skipped)."""
    entries: list[HotlistEntry] = []
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        for row in conn.execute(_SELECT):
            rid, city, pattern, kind, max_d, prio, reason, expires = row
            try:
                entries.append(
                    HotlistEntry(
                        id=rid,
                        city_id=city,
                        pattern=pattern,
                        kind=kind,
                        max_distance=max_d,
                        priority=prio,
                        reason=reason,
                        expires_at=expires,
                    )
                )
            except ValueError as err:
                log.warning("skipping hotlist row %s: %s", rid, err)
    return entries


class PgHotlists:
    """Hotlists from Postgres, reloaded in a background thread every ``refresh_s`` seconds."""

    def __init__(
        self, dsn: str, refresh_s: float = 10.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.current = Reloading(
            lambda: StaticHotlists(load_entries(dsn)),
            StaticHotlists(()),
            refresh_s,
            "hotlists",
            monotonic,
        )

    def matcher(self, city_id: int) -> HotlistMatcher:
        """Current matcher; the first call loads, later calls trigger background reloads."""
        return self.current.get().matcher(city_id)


def alert_for(p: PlatePass, matcher: HotlistMatcher, now: datetime) -> Alert | None:
    """The ``alert.triggered`` of a pass, or None when no live entry matches."""
    hit = matcher.best(p.plate, now)
    if hit is None:
        return None
    entry, dist = hit
    ident = plate_identity(p.plate)
    matched = matcher.matched_form(p.plate, entry)
    crop_key = p.crop_key
    if crop_key is None and p.crop_jpeg:
        from gtvision.sinks.objects import object_key

        crop_key = object_key(p, "jpg")  # where the event sink stores the pass's crop
    return Alert(
        city_id=p.city_id,
        camera_id=p.camera_id,
        ts=p.ts,
        pass_id=p.id,
        plate=p.plate,
        match=HotlistMatch(
            entry_id=entry.id,
            pattern=entry.pattern,
            kind=entry.kind,
            distance=dist,
            priority=entry.priority,
            reason=entry.reason,
            plate_form=ident.form,
            equivalent=matched != ident.text,
        ),
        crop_key=crop_key,
    )


@operator
def hotlist_alerts(
    step_id: str,
    passes: Stream[PlatePass],
    hotlists: HotlistSource,
    clock: Clock = utcnow,
) -> Stream[Alert]:
    """Turn each pass matching a live hotlist entry of its city into one :class:`Alert`."""

    def check(p: PlatePass) -> Alert | None:
        return alert_for(p, hotlists.matcher(p.city_id), clock())

    return op.filter_map("match", passes, check)
