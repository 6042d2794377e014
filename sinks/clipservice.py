"""Clips in a cluster: a process cuts the clips of the cameras it reads, whoever stored the event.

A camera's encoded packets live in the packet ring of the process that reads it
(:data:`gtvision.sinks.clips.RINGS`), while its events may be stored by a sink partition of any
worker of the cluster: keyed steps (incidents, plate passes) run on the worker that owns the
camera's key, which may sit in another process or on another host. So clip cutting does not
depend on where the event was stored:

* the sink that stores an event asks its own process's :class:`ClipService` at once (the fast
  path: the camera's ring is often local);
* every ``poll_s`` each process's service also asks PostgreSQL, the system of record, for the
  recent events of the cameras whose rings it holds that still have no ``clip_key`` (any type
  whose payload has a ``clip_key`` field: ``lpr.detected``, ``motion.incident``, custom events),
  and queues them on its :class:`~gtvision.sinks.clips.ClipRecorder`.

A clip is cut where the packets are, uploaded to ``city/camera/YYYY/MM/DD/<event id>.mp4`` and
linked (``events.clip_key``) by that process. Events older than the rings' retention are not
looked at (their packets are gone). A camera moving between processes (re-balance) can be
clipped by both: same key, same window, idempotent. One service per process
(:data:`CLIPS`), shared by its sink partitions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from gtvision.events import EventBase
from gtvision.sinks.backoff import Backoff
from gtvision.sinks.clips import RINGS, ClipRecorder, RingRegistry
from gtvision.sinks.objects import ObjectStore
from gtvision.sinks.shared import PerProcess

log = logging.getLogger(__name__)

_CLIPLESS = """
SELECT id::text, type, city_id, camera_id, ts FROM events
WHERE camera_id = ANY(%s) AND ts > %s AND clip_key IS NULL AND payload ? 'clip_key'
ORDER BY ts
"""
LINK_CLIP = """
UPDATE events SET clip_key = %s,
    payload = CASE WHEN payload ? 'clip_key'
                   THEN jsonb_set(payload, '{clip_key}', to_jsonb(%s::text)) ELSE payload END
WHERE id = %s
"""


class ClipService:
    """The clip cutter of a process: the sink's requests plus the database's clipless events."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        store: ObjectStore,
        *,
        pre_roll_s: float = 5.0,
        post_roll_s: float = 5.0,
        rings: RingRegistry = RINGS,
        poll_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._rings = rings
        self._poll_s = poll_s
        self.recorder = ClipRecorder(
            store, self.link, pre_roll_s=pre_roll_s, post_roll_s=post_roll_s, rings=rings
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clip-finder", daemon=True)
        self._thread.start()

    def request(self, event: EventBase) -> bool:
        """Queue a clip of ``event`` if its camera is read in this process (True when queued)."""
        return self.recorder.request(event)

    def link(self, event_id: str, key: str) -> None:
        """Store the clip's key on its event (retried while the database is unreachable)."""
        backoff = Backoff(cap_s=5.0)
        for _ in range(5):
            try:
                with self._pool.connection() as conn:
                    conn.execute(LINK_CLIP, (key, key, event_id))
                return
            except (psycopg.OperationalError, psycopg.InterfaceError) as err:
                log.warning("linking clip %s to event %s failed, retrying: %s", key, event_id, err)
                self._stop.wait(backoff.next())
        log.error("clip %s uploaded but not linked to event %s", key, event_id)

    def poll(self) -> int:
        """Queue the clipless recent events of this process's cameras; return how many."""
        cameras = sorted(self._rings.snapshot())
        if not cameras:
            return 0
        since = self._clock() - timedelta(seconds=self._rings.retain_s)
        with self._pool.connection() as conn:
            rows = conn.execute(_CLIPLESS, (cameras, since)).fetchall()
        queued = 0
        for event_id, kind, city_id, camera_id, ts in rows:
            target = EventBase(
                id=event_id, type=kind, city_id=int(city_id), camera_id=int(camera_id), ts=ts
            )
            queued += self.recorder.request(target)
        return queued

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll()
            except (psycopg.Error, OSError) as err:
                log.warning("looking for events without clips failed: %s", err)

    def close(self, settle_s: float = 1.0, max_s: float = 3.0) -> None:
        """Stop: find the last events, cut what is pending with the packets at hand, close.

        At a clean stop every worker flushes its open windows at once, and the last events of
        this process's cameras may be stored by another process a moment after this one's sink
        closes: keep looking until nothing new came for ``settle_s`` (at most ``max_s``).
        """
        self._stop.set()
        self._thread.join(timeout=5)
        deadline = time.monotonic() + max_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < settle_s:
            try:
                if self.poll():
                    quiet_since = time.monotonic()
            except (psycopg.Error, OSError) as err:
                log.warning("looking for the last events without clips failed: %s", err)
                break
            time.sleep(0.2)
        self.recorder.close()
        self._pool.close()


CLIPS: PerProcess[ClipService] = PerProcess(ClipService.close)
