"""Postgres event sink: crops to the object store, event + outbox row in one transaction, feed.

Order of one batch (see ``docs/delivery.md``), each step idempotent so that any crash point
followed by a re-emission converges to exactly one row, one outbox row and one stream entry:

1. upload crops to ``city/camera/YYYY/MM/DD/<event id>.jpg`` (same key, same bytes);
2. one transaction: ``INSERT INTO events … ON CONFLICT (id) DO NOTHING`` and the outbox rows
   (``ON CONFLICT (event_id) DO NOTHING``);
3. for the batch's rows whose ``stream_id`` is still NULL: publish to the city feed (the feed
   dedupes by event id, so a re-publish returns the existing entry id) and store ``stream_id``.

Connection loss (Postgres, Redis, object store) is retried with capped backoff while the batch is
held: the flow slows down, nothing is dropped. Every failure is logged with the event ids.

The Bytewax side is a :class:`EventSink` (``DynamicSink``): one stateless partition per worker,
so events are written by the worker that produced them without a keyed exchange; the database is
the state, which makes a ``FixedPartitionedSink`` snapshot pointless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import psycopg
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from minio.error import S3Error, ServerError
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout
from urllib3.exceptions import HTTPError

from gtvision import metrics
from gtvision.config import Settings
from gtvision.events import EventBase
from gtvision.sinks.backoff import Backoff
from gtvision.sinks.clipservice import CLIPS, LINK_CLIP, ClipService
from gtvision.sinks.feed import FeedPublisher, make_feed
from gtvision.sinks.objects import ObjectStore, make_store, object_key
from gtvision.sinks.outbox import routing_key

if TYPE_CHECKING:
    from gtvision.sinks.recordings import SegmentRecorder


class ClipRequests(Protocol):
    """Where the writer asks for the clips of the events it stored."""

    def request(self, event: EventBase) -> bool:
        """Queue a clip of ``event`` if its camera is read in this process."""
        ...


log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    # a server still in recovery (a restore or a standby being promoted) takes writes soon
    psycopg.errors.ReadOnlySqlTransaction,
    psycopg.InterfaceError,
    PoolTimeout,
    redis.ConnectionError,
    redis.TimeoutError,
    # Redis Cluster fail-over: the slot's master is gone until a replica is promoted
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.ReadOnlyError,
    # no node of the cluster answers (not a RedisError): the feed waits for the cluster like
    # for a single Redis; a cluster misconfiguration is found at start by `gtvision doctor`
    redis.exceptions.RedisClusterException,
    HTTPError,
    ConnectionError,
    TimeoutError,
    ServerError,
)
_TRANSIENT_S3 = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "ServerBusy"}
)


def is_transient(err: BaseException) -> bool:
    """Connection-kind failures worth retrying (the rest are bugs or bad data)."""
    if isinstance(err, S3Error):
        return err.code in _TRANSIENT_S3
    return isinstance(err, TRANSIENT)


_INSERT_EVENT = """
INSERT INTO events (id, type, city_id, camera_id, ts, plate, confidence, payload, crop_key,
                    clip_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
RETURNING type, city_id
"""
_INSERT_OUTBOX = """
INSERT INTO outbox (event_id, routing_key, payload) VALUES (%s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""
_PENDING = """
SELECT id::text, stream_id IS NULL, clip_key IS NULL FROM events
WHERE id = ANY(%s::uuid[]) AND (stream_id IS NULL OR clip_key IS NULL)
"""
_SET_STREAM = """
UPDATE events e SET stream_id = u.sid
FROM unnest(%s::text[], %s::uuid[]) AS u(sid, id)
WHERE e.id = u.id AND e.stream_id IS NULL
"""


def _ids(events: Sequence[EventBase]) -> str:
    shown = ", ".join(e.id for e in events[:20])
    more = f" (+{len(events) - 20} more)" if len(events) > 20 else ""
    return shown + more


def stored_form(event: EventBase, crop_key: str | None) -> EventBase:
    """The event as stored: no crop bytes, ``crop_key`` filled where the model has the field."""
    update: dict[str, Any] = {}
    if "crop_jpeg" in type(event).model_fields:
        update["crop_jpeg"] = None
    if crop_key and "crop_key" in type(event).model_fields:
        update["crop_key"] = crop_key
    return event.model_copy(update=update) if update else event


def event_row(event: EventBase, crop_key: str | None) -> tuple[Any, ...]:
    """Parameters of ``_INSERT_EVENT`` for a stored-form event."""
    plate = getattr(event, "plate", None)
    confidence = getattr(event, "confidence", None)
    payload = Jsonb(event.model_dump(mode="json", exclude={"crop_jpeg"}))
    return (
        event.id,
        event.type,
        event.city_id,
        event.camera_id,
        event.ts,
        plate,
        confidence,
        payload,
        crop_key or getattr(event, "crop_key", None),
        getattr(event, "clip_key", None),
    )


class EventWriter:
    """Writes batches of events with the guarantees described in the module docstring."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        store: ObjectStore | None,
        feed: FeedPublisher | None,
        *,
        backoff_cap_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._pool = pool
        self._store = store
        self._feed = feed
        self._cap = backoff_cap_s
        self._sleep = sleep
        self.retries = 0
        self.clips: ClipRequests | None = None

    def _retry(self, what: str, events: Sequence[EventBase], fn: Callable[[], T]) -> T:
        backoff = Backoff(cap_s=self._cap)
        while True:
            try:
                return fn()
            except Exception as err:
                transient = is_transient(err)
                step = what.replace(" ", "_")
                metrics.SINK_ERRORS.labels(step, "transient" if transient else "permanent").inc()
                if not transient:
                    log.error(
                        "%s failed permanently (%s: %s) for events: %s",
                        what,
                        type(err).__name__,
                        err,
                        _ids(events),
                    )
                    raise
                self.retries += 1
                delay = backoff.next()
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                log.warning(
                    "%s failed (%s: %s), holding %d events, retry in %.1fs: %s",
                    what,
                    type(err).__name__,
                    first,
                    len(events),
                    delay,
                    _ids(events),
                )
                self._sleep(delay)

    def _upload_crops(self, events: Sequence[EventBase]) -> dict[str, str]:
        keys: dict[str, str] = {}
        store = self._store
        for event in events:
            crop = getattr(event, "crop_jpeg", None)
            if not crop:
                continue
            if store is None:
                log.warning("no object store configured: crop of event %s not kept", event.id)
                continue
            key = object_key(event, "jpg")

            def put(k: str = key, c: bytes = crop, st: ObjectStore = store) -> None:
                st.put(k, c, "image/jpeg")

            self._retry("crop upload", [event], put)
            keys[event.id] = key
        return keys

    def _insert(self, rows: Sequence[tuple[EventBase, str | None]]) -> list[tuple[str, int]]:
        """Insert events and outbox rows in one transaction; (type, city) of the new events."""
        new: list[tuple[str, int]] = []
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(_INSERT_EVENT, [event_row(e, k) for e, k in rows], returning=True)
            while True:
                new.extend((str(r[0]), int(r[1])) for r in cur.fetchall())
                if not cur.nextset():
                    break
            cur.executemany(
                _INSERT_OUTBOX,
                [
                    (e.id, routing_key(e), Jsonb(e.model_dump(mode="json", exclude={"crop_jpeg"})))
                    for e, _ in rows
                ],
            )
        return new

    def _pending(self, ids: list[str]) -> tuple[set[str], set[str]]:
        """Ids of the batch without stream entry, and without clip."""
        with self._pool.connection() as conn:
            rows = conn.execute(_PENDING, (ids,)).fetchall()
        return {str(r[0]) for r in rows if r[1]}, {str(r[0]) for r in rows if r[2]}

    def link_clip(self, event_id: str, key: str) -> None:
        """Store the clip key of a stored event (called by the clip recorder's thread)."""

        def run() -> None:
            with self._pool.connection() as conn:
                conn.execute(LINK_CLIP, (key, key, event_id))

        self._retry("clip link", [], run)

    def _set_stream_ids(self, pairs: list[tuple[str, str]]) -> None:
        with self._pool.connection() as conn:
            conn.execute(_SET_STREAM, ([sid for sid, _ in pairs], [eid for _, eid in pairs]))

    def write(self, events: Sequence[EventBase]) -> None:
        """Store ``events`` (duplicates and re-emissions are absorbed); returns when durable."""
        unique = list({e.id: e for e in events}.values())
        if not unique:
            return
        t0 = time.perf_counter()
        self._write(unique)
        metrics.SINK_WRITE_SECONDS.observe(time.perf_counter() - t0)

    def _write(self, unique: list[EventBase]) -> None:
        crop_keys = self._upload_crops(unique)
        stored = [(stored_form(e, crop_keys.get(e.id)), crop_keys.get(e.id)) for e in unique]
        for kind, city in self._retry("event insert", unique, lambda: self._insert(stored)):
            metrics.EVENTS.labels(kind, str(city)).inc()
        unpublished, clipless = self._retry(
            "pending check", unique, lambda: self._pending([e.id for e in unique])
        )
        recorder = self.clips
        if recorder is not None:
            for event in unique:
                if event.id in clipless and "clip_key" in type(event).model_fields:
                    recorder.request(event)
        feed = self._feed
        pending = [e for e, _ in stored if e.id in unpublished]
        if feed is None or not pending:
            return
        many = getattr(feed, "publish_many", None)

        def publish() -> list[tuple[str, str]]:
            sids = many(pending) if many else [feed.publish(e) for e in pending]
            return list(zip(sids, (e.id for e in pending), strict=True))

        pairs = self._retry("feed publish", pending, publish)
        self._retry("stream id update", pending, lambda: self._set_stream_ids(pairs))


class _Partition(StatelessSinkPartition[EventBase]):
    def __init__(self, writer: EventWriter, closers: list[Callable[[], None]]) -> None:
        self._writer = writer
        self._closers = closers

    def write_batch(self, items: list[EventBase]) -> None:
        self._writer.write(items)

    def close(self) -> None:
        t0 = time.monotonic()
        for closer in self._closers:
            closer()
        log.info("event sink closed in %.1f s (clips, recording)", time.monotonic() - t0)


def open_pool(dsn: str, max_size: int = 2) -> ConnectionPool[Any]:
    """A small pool whose connections are checked before use (survives server restarts)."""
    return ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        check=ConnectionPool.check_connection,
        timeout=10,
        open=True,
        kwargs={"connect_timeout": 5},
    )


class EventSink(DynamicSink[EventBase]):
    """Bytewax sink of typed events into Postgres, the object store and the feed."""

    def __init__(
        self,
        dsn: str,
        *,
        store_factory: Callable[[], ObjectStore | None] = lambda: None,
        feed_factory: Callable[[], FeedPublisher | None] = lambda: None,
        backoff_cap_s: float = 30.0,
        clip_rolls_s: tuple[float, float] | None = None,
        record: tuple[float, Path] | None = None,
    ) -> None:
        self._dsn = dsn
        self._record = record
        self._store_factory = store_factory
        self._feed_factory = feed_factory
        self._cap = backoff_cap_s
        self._clip_rolls = clip_rolls_s

    @classmethod
    def from_settings(cls, settings: Settings, feed: FeedPublisher | None = None) -> EventSink:
        """Sink wired to ``GTV_DATABASE_URL``, the configured object store and feed."""
        return cls(
            settings.database_url,
            store_factory=lambda: make_store(settings),
            feed_factory=(lambda: feed) if feed is not None else (lambda: make_feed(settings)),
            backoff_cap_s=settings.reconnect_cap_s,
            clip_rolls_s=(settings.clip_pre_roll_s, settings.clip_post_roll_s),
            record=(
                (
                    settings.record_segment_s,
                    settings.record_spool_dir or settings.data_dir / "spool" / "recordings",
                )
                if settings.record_segment_s > 0
                else None
            ),
        )

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[EventBase]:
        """Open the pool, object store and feed; share the process's clip service and recorder."""
        pool = open_pool(self._dsn)
        store = self._store_factory()
        writer = EventWriter(pool, store, self._feed_factory(), backoff_cap_s=self._cap)
        closers: list[Callable[[], None]] = []
        if self._clip_rolls is not None and store is not None and any(self._clip_rolls):
            pre, post = self._clip_rolls
            dsn = self._dsn

            def service() -> ClipService:
                return ClipService(open_pool(dsn), store, pre_roll_s=pre, post_roll_s=post)

            writer.clips, release_clips = CLIPS.acquire(service)
            closers.append(release_clips)
        if self._record is not None and store is not None:
            from gtvision.sinks.recordings import acquire

            closers.append(acquire(lambda: self._recorder(store)))
        closers.append(pool.close)
        return _Partition(writer, closers)

    def _recorder(self, store: ObjectStore) -> SegmentRecorder:
        """The process recorder (:mod:`gtvision.sinks.recordings`) with its own pool."""
        from gtvision.sinks.recordings import SegmentRecorder
        from gtvision.sinks.spool import RecordingUploader

        assert self._record is not None
        segment_s, spool = self._record
        pool = open_pool(self._dsn)
        uploader = RecordingUploader(
            pool, store, self._feed_factory(), spool, backoff_cap_s=self._cap
        )
        return SegmentRecorder(uploader, spool, segment_s=segment_s, on_close=pool.close)
