"""LGPD: retention of stored events and erasure of one plate's data (``gtvision retention``).

Plates are personal data. Everything gtvision stores about a plate lives in four places: the
``events`` row (plate, payload with candidates), its ``outbox`` row (the message payload), the
crop/clip objects it names, and the city's live-feed stream entry (Redis, or the in-process feed
of ``gtvision demo``). :class:`Purger`
removes all four, in batches, for

* **retention** (:meth:`Purger.expire`): events older than their camera's ``retention_days``
  (``GTV_RETENTION_DAYS`` for events of cameras that are not registered any more), recordings
  and exports (with their objects) the same way, and ``audit_log`` rows older than
  ``GTV_AUDIT_RETENTION_DAYS``;
* **erasure** (:meth:`Purger.erase`): every event whose plate equals a given plate or, by
  default, its other Brazilian form (old ``ABC1234`` ↔ Mercosul ``ABC1C34``, one vehicle: see
  :mod:`gtvision.operators.lpr.equivalence`), in one city or in all, whatever its age (a data
  subject's request).

Each batch is one transaction: rows are locked (``FOR UPDATE SKIP LOCKED``, so two purgers never
fight), their objects and stream entries deleted (both idempotent), then the rows; a failure
rolls the batch back and the next run repeats it, so nothing is left half-erased. An erasure
writes one ``audit_log`` row (``plate.erase``) with who, the reference of the request and the
counts, but not the plate itself, which would keep the data it erases. Undelivered outbox rows of
erased events are dropped too: the data must go even when RabbitMQ has been down for so long.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import psycopg

from gtvision.config import ConfigError, Settings
from gtvision.operators.lpr.equivalence import plate_identity
from gtvision.operators.lpr.plates import normalise

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500


class Deleter(Protocol):
    """The part of an object store the purger uses (idempotent delete)."""

    def delete(self, key: str) -> None:
        """Remove ``key``; no error when it does not exist."""
        ...


@runtime_checkable
class FeedForgetter(Protocol):
    """The part of a live feed the purger uses (``RedisFeed`` / ``MemoryFeed``)."""

    def forget(self, city_id: int, stream_ids: list[str]) -> int:
        """Delete entries of a city's stream; return how many went."""
        ...


@dataclass(frozen=True, slots=True)
class Purged:
    """What one purge removed (or, in a dry run, would remove)."""

    events: int = 0
    objects: int = 0
    feed_entries: int = 0
    outbox: int = 0
    recordings: int = 0
    exports: int = 0
    audit: int = 0

    def __add__(self, other: Purged) -> Purged:
        """Field-wise sum."""
        return Purged(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        """Counts by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_EVENT_COLS = "SELECT e.id, e.city_id, e.crop_key, e.clip_key, e.stream_id"
_EXPIRED = (
    "FROM events e LEFT JOIN cameras c ON c.id = e.camera_id "
    "WHERE e.ts < %(now)s - make_interval(days => COALESCE(c.retention_days, %(days)s::int))"
)
_OF_PLATE = (
    "FROM events e WHERE e.plate = ANY(%(plates)s) "
    "AND (%(city)s::bigint IS NULL OR e.city_id = %(city)s)"
)
_EXPIRED_RECORDINGS = (
    "FROM recordings r LEFT JOIN cameras c ON c.id = r.camera_id "
    "WHERE COALESCE(r.ended_at, r.started_at) "
    "< %(now)s - make_interval(days => COALESCE(c.retention_days, %(days)s::int))"
)
_EXPIRED_EXPORTS = (
    "FROM exports r LEFT JOIN cameras c ON c.id = r.camera_id "
    "WHERE r.ended_at < %(now)s - make_interval(days => COALESCE(c.retention_days, %(days)s::int))"
)
_OLD_AUDIT = "FROM audit_log WHERE ts < %(now)s - make_interval(days => %(audit_days)s::int)"
_BATCH = " LIMIT %(batch)s FOR UPDATE OF {} SKIP LOCKED"


class Purger:
    """Deletes events with everything they name (objects, outbox rows, stream entries)."""

    def __init__(
        self,
        dsn: str,
        store: Deleter | None,
        feed: FeedForgetter | None = None,
        *,
        batch: int = DEFAULT_BATCH,
        audit_key: bytes = b"",
    ) -> None:
        if batch < 1:
            msg = f"purge batch must be at least 1, got {batch}"
            raise ValueError(msg)
        self._dsn = dsn
        self._audit_key = audit_key
        self._store = store
        self._feed = feed
        self._batch = batch

    def _delete_objects(self, keys: list[str]) -> int:
        if self._store is None:
            return 0
        for key in keys:
            self._store.delete(key)
        return len(keys)

    def _delete_feed(self, entries: dict[int, list[str]]) -> int:
        if self._feed is None:
            return 0
        return sum(self._feed.forget(city, ids) for city, ids in entries.items())

    def _event_batches(self, where: str, params: dict[str, Any]) -> Purged:
        select = f"{_EVENT_COLS} {where}{_BATCH.format('e')}"
        total = Purged()
        with psycopg.connect(self._dsn) as conn:
            while True:
                with conn.transaction():
                    rows = conn.execute(select, {**params, "batch": self._batch}).fetchall()
                    if not rows:
                        break
                    ids = [r[0] for r in rows]
                    keys = sorted({k for r in rows for k in (r[2], r[3]) if k})
                    feed: dict[int, list[str]] = {}
                    for r in rows:
                        if r[4]:
                            feed.setdefault(int(r[1]), []).append(str(r[4]))
                    objects = self._delete_objects(keys)
                    entries = self._delete_feed(feed)
                    outbox = conn.execute(
                        "DELETE FROM outbox WHERE event_id = ANY(%s)", (ids,)
                    ).rowcount
                    events = conn.execute("DELETE FROM events WHERE id = ANY(%s)", (ids,)).rowcount
                total += Purged(events=events, objects=objects, feed_entries=entries, outbox=outbox)
                if len(rows) < self._batch:
                    break
        return total

    def _video_batches(self, table: str, expired: str, params: dict[str, Any]) -> int:
        """Delete expired rows of ``table`` (recordings, exports) and their objects."""
        removed = 0
        with psycopg.connect(self._dsn) as conn:
            while True:
                with conn.transaction():
                    rows = conn.execute(
                        f"SELECT r.id, r.object_key {expired}{_BATCH.format('r')}",
                        {**params, "batch": self._batch},
                    ).fetchall()
                    if not rows:
                        break
                    self._delete_objects([str(r[1]) for r in rows if r[1]])
                    removed += conn.execute(
                        f"DELETE FROM {table} WHERE id = ANY(%s)", ([r[0] for r in rows],)
                    ).rowcount
                if len(rows) < self._batch:
                    break
        return removed

    def _count(self, where: str, params: dict[str, Any]) -> int:
        with psycopg.connect(self._dsn) as conn:
            row = conn.execute(f"SELECT count(*) {where}", params).fetchone()
        return int(row[0]) if row else 0

    def expire(
        self, now: datetime, *, default_days: int, audit_days: int, dry_run: bool = False
    ) -> Purged:
        """Remove what is past retention at ``now`` (aware); ``dry_run`` only counts it."""
        if now.tzinfo is None:
            msg = f"retention needs an aware 'now', got {now.isoformat()}"
            raise ValueError(msg)
        params = {"now": now, "days": default_days, "audit_days": audit_days}
        if dry_run:
            return Purged(
                events=self._count(_EXPIRED, params),
                recordings=self._count(_EXPIRED_RECORDINGS, params),
                exports=self._count(_EXPIRED_EXPORTS, params),
                audit=self._count(_OLD_AUDIT, params),
            )
        done = self._event_batches(_EXPIRED, params)
        recordings = self._video_batches("recordings", _EXPIRED_RECORDINGS, params)
        exports = self._video_batches("exports", _EXPIRED_EXPORTS, params)
        with psycopg.connect(self._dsn) as conn:
            audit = conn.execute(f"DELETE {_OLD_AUDIT}", params).rowcount
        return done + Purged(recordings=recordings, exports=exports, audit=audit)

    def erase(
        self,
        plate: str,
        *,
        city_id: int | None,
        actor: str,
        reference: str = "",
        user_id: int | None = None,
        ip: str = "",
        dry_run: bool = False,
        equivalent: bool = True,
    ) -> Purged:
        """Remove every event of ``plate`` (in ``city_id``, or everywhere when ``None``).

        With ``equivalent`` (the default) the plate's other form goes too: erasing ``ABC1234``
        also erases ``ABC1C34`` and the reverse (:func:`erased_forms`); ``equivalent=False``
        erases exactly the given text. Audited searches and exports of each erased form (plain
        text and keyed reference) are rewritten to ``plate:erased``; wildcard patterns
        (``ABC1*``) are left as they are, even when they match an erased form
        (:data:`_FORGET_SEARCHES`). ``dry_run`` only counts the events of every erased form.
        """
        plates = erased_forms(plate, equivalent=equivalent)
        params = {"plates": list(plates), "city": city_id}
        if dry_run:
            return Purged(events=self._count(_OF_PLATE, params))
        done = self._event_batches(_OF_PLATE, params)
        detail: dict[str, object] = {
            "reference": reference,
            "scope": "all" if city_id is None else "city",
            "equivalent": equivalent,  # whether the other form was asked for
            "forms": len(plates),  # how many forms were erased (1, or 2 with an other form)
        }
        values = list(plates)
        if self._audit_key:
            values += [plate_ref(self._audit_key, p) for p in plates]
        with psycopg.connect(self._dsn) as conn:
            searches = conn.execute(
                _FORGET_SEARCHES, {"values": values, "targets": [f"plate:{v}" for v in values]}
            ).rowcount
            done = done + Purged(audit=searches)
            detail.update({k: str(v) for k, v in done.as_dict().items()})
            conn.execute(
                "INSERT INTO audit_log (user_id, username, city_id, action, target, detail, ip) "
                "VALUES (%s, %s, %s, 'plate.erase', 'plate', %s::jsonb, %s)",
                (user_id, actor, city_id, json.dumps(detail), ip),
            )
        log.info("erased a plate (%s): %s", reference or "no reference", done.as_dict())
        return done


def erased_forms(plate: str, *, equivalent: bool = True) -> tuple[str, ...]:
    """The stored plate texts an erasure of ``plate`` removes, the given (normalised) one first.

    With ``equivalent`` a Brazilian plate also names its other form (``ABC1234`` ↔ ``ABC1C34``);
    a Mercosul plate issued new (fifth letter after ``J``) or text of neither layout has none.
    """
    text = normalise(plate)
    if not text:
        msg = f"plate to erase must hold letters or digits, got {plate!r}"
        raise ValueError(msg)
    return plate_identity(text).forms if equivalent else (text,)


def plate_ref(key: bytes, plate: str) -> str:
    """The audit log's reference to a searched plate or pattern: ``h`` + 20 hex of a keyed hash.

    Searches are audited under ``plate:<ref>``, never the plate: who searched what stays
    answerable (``GET /audit?plate=`` computes the reference) without the audit log holding
    plates in clear text. The text is normalised like stored plates (case and separators).
    """
    text = "".join(ch for ch in plate.upper() if ch.isalnum() or ch in "*?")
    return "h" + hmac.new(key, text.encode(), "sha256").hexdigest()[:20]


#: Rewrites audited searches and exports of the erased plates to ``erased``: rows whose target or
#: plate filter is one of ``values`` (each erased form in clear text, as older versions wrote
#: it, and as its keyed :func:`plate_ref`), exact or fuzzy. Wildcard patterns are left as they
#: are, whatever the form: ``ABC1*`` is kept as its keyed reference (it cannot be told apart
#: from the other plates it matches) until the audit retention removes it.
_FORGET_SEARCHES = """
UPDATE audit_log SET
    target = CASE WHEN target LIKE 'plate:%%' THEN 'plate:erased' ELSE target END,
    detail = CASE
        WHEN detail ? 'plate' THEN jsonb_set(detail, '{plate}', '"erased"')
        WHEN detail -> 'filters' ? 'plate' THEN jsonb_set(detail, '{filters,plate}', '"erased"')
        ELSE detail END
WHERE action IN ('events.search', 'events.export')
  AND (target = ANY(%(targets)s) OR detail ->> 'plate' = ANY(%(values)s)
       OR detail -> 'filters' ->> 'plate' = ANY(%(values)s))
"""


def purger_from_settings(settings: Settings) -> Purger:
    """A purger on ``GTV_DATABASE_URL``, the configured object store and Redis feed."""
    from gtvision.sinks.feed import make_feed
    from gtvision.sinks.objects import make_store

    if not settings.database_url:
        msg = "invalid configuration: GTV_DATABASE_URL='': retention needs the database"
        raise ConfigError(msg)
    from gtvision.web.state import audit_key

    feed = make_feed(settings) if settings.redis_url else None
    return Purger(settings.database_url, make_store(settings), feed, audit_key=audit_key(settings))
