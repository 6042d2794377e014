"""Fan-out of the per-city event feed to SSE subscribers.

One reader task per city with at least one subscriber blocks on the feed
(:class:`FeedReaderLike`, the sinks contract) and puts each item, rendered once, into every
subscriber's bounded queue. The reader task stops when the last subscriber of its city leaves,
so an idle server runs no per-connection or per-city tasks. A subscriber that falls too far
behind is closed (its client reconnects with ``Last-Event-ID`` and misses nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sse_starlette import ServerSentEvent

from gtvision import metrics
from gtvision.web.redisguard import UNAVAILABLE

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000
RELEASE_DELAY_S = 2.0


class FeedItemLike(Protocol):
    """One entry of the per-city stream (``gtvision.sinks.feed.FeedItem``)."""

    @property
    def stream_id(self) -> str:
        """``"<ms>-<seq>"``."""
        ...

    @property
    def event_id(self) -> str:
        """Event UUID."""
        ...

    @property
    def type(self) -> str:
        """Event type."""
        ...

    @property
    def camera_id(self) -> int:
        """Camera id."""
        ...

    @property
    def json(self) -> str:
        """Event JSON without crop bytes."""
        ...


class FeedReaderLike(Protocol):
    """Async reader of the per-city stream (``gtvision.sinks.feed.FeedReader``)."""

    async def read(
        self, city_id: int, after: str, block_ms: int, count: int
    ) -> Sequence[FeedItemLike]:
        """Items of ``city_id`` with stream id greater than ``after`` (block_ms 0: no wait)."""
        ...

    async def last_id(self, city_id: int) -> str | None:
        """Newest stream id of ``city_id`` (None when empty)."""
        ...

    async def history_lost(self, city_id: int, after: str) -> bool:
        """True when entries newer than ``after`` were trimmed (read Postgres for them)."""
        ...


_STREAM_ID = re.compile(r"([0-9]{1,19})-([0-9]{1,19})")
MAX_STREAM_PART = 2**63 - 1


def check_stream_id(text: str) -> str:
    """``text`` if it is a stream id ``<ms>-<seq>`` (ASCII digits, each at most 2**63-1).

    Raises ``ValueError`` otherwise: ``int()`` alone would take ``1_0``, blanks, non-ASCII
    digits and numbers Redis and PostgreSQL refuse.
    """
    m = _STREAM_ID.fullmatch(text)
    if m is None or max(int(m.group(1)), int(m.group(2))) > MAX_STREAM_PART:
        msg = f"expected <milliseconds>-<sequence> (two numbers up to {MAX_STREAM_PART})"
        raise ValueError(msg)
    return text


def sid_key(stream_id: str) -> tuple[int, int]:
    """Sortable form of a stream id ``"<ms>-<seq>"`` (invalid ids sort first)."""
    ms, _, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return -1, -1


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered stream entry; ``wire`` is its SSE encoding, built once for all subscribers."""

    stream_id: str
    type: str
    camera_id: int
    data: str
    wire: bytes = b""

    @classmethod
    def build(cls, stream_id: str, type_: str, camera_id: int, data: str) -> Message:
        """A message with its SSE bytes (``id``, ``event``, ``data``) encoded."""
        wire = ServerSentEvent(data=data, id=stream_id, event=type_).encode()
        return cls(stream_id, type_, camera_id, data, wire)


CLOSED = Message("", "", -1, "")


@dataclass(eq=False, slots=True)
class Subscription:
    """One subscriber's queue on one city."""

    city_id: int
    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))


def _release_memory() -> None:
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


def _plain(item: FeedItemLike) -> str:
    return item.json


class Hub:
    """Per-city reader tasks and their subscribers."""

    def __init__(
        self,
        feed: FeedReaderLike,
        render: Callable[[FeedItemLike], str] = _plain,
        block_ms: int = 1000,
    ) -> None:
        self.feed = feed
        self.render = render
        self.block_ms = block_ms
        self._subs: dict[int, set[Subscription]] = {}
        self._readers: dict[int, asyncio.Task[None]] = {}
        self._starting: dict[int, asyncio.Future[None]] = {}
        self._release: asyncio.TimerHandle | None = None

    async def subscribe(self, city_id: int) -> Subscription:
        """Register a subscriber; start the city's reader if it is the first.

        When this returns, every event published later reaches the subscriber's queue.
        """
        sub = Subscription(city_id)
        self._subs.setdefault(city_id, set()).add(sub)
        metrics.SSE_SUBSCRIBERS.labels(str(city_id)).inc()
        try:
            while city_id not in self._readers:
                starting = self._starting.get(city_id)
                if starting is not None:  # another subscriber is starting the reader
                    await asyncio.shield(starting)
                    continue
                starting = asyncio.get_running_loop().create_future()
                self._starting[city_id] = starting
                try:
                    start = await self._start_id(city_id)
                    if city_id in self._subs:
                        self._readers[city_id] = asyncio.create_task(
                            self._run(city_id, start), name=f"gtv-feed-{city_id}"
                        )
                finally:
                    del self._starting[city_id]
                    starting.set_result(None)
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Drop a subscriber; stop the city's reader if it was the last."""
        subs = self._subs.get(sub.city_id)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        metrics.SSE_SUBSCRIBERS.labels(str(sub.city_id)).dec()
        if not subs:
            del self._subs[sub.city_id]
            task = self._readers.pop(sub.city_id, None)
            if task is not None:
                task.cancel()
            if not self._subs:
                self._schedule_release()

    def _schedule_release(self) -> None:
        """Once the last subscriber is gone, hand freed heap back to the OS (glibc keeps it).

        A burst of thousands of SSE connections leaves tens of MB of freed-but-retained heap;
        ``malloc_trim`` returns it, so an idle server goes back to its baseline RSS.
        """
        if self._release is not None:
            self._release.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._release = loop.call_later(RELEASE_DELAY_S, _release_memory)

    def reading(self, city_id: int) -> bool:
        """Whether the city's reader runs (its subscribers get every event published from now)."""
        return city_id in self._readers

    def subscribers(self, city_id: int | None = None) -> int:
        """Number of subscribers (of one city, or all)."""
        if city_id is not None:
            return len(self._subs.get(city_id, ()))
        return sum(len(s) for s in self._subs.values())

    async def close(self) -> None:
        """Stop every reader and close every subscriber."""
        tasks = list(self._readers.values())
        self._readers.clear()
        for subs in self._subs.values():
            for sub in subs:
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(CLOSED)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _deliver(self, city_id: int, msg: Message) -> None:
        for sub in list(self._subs.get(city_id, ())):
            try:
                sub.queue.put_nowait(msg)
            except asyncio.QueueFull:
                log.warning("SSE subscriber of city %s is too slow: closing it", city_id)
                self.unsubscribe(sub)
                sub.queue.get_nowait()
                sub.queue.put_nowait(CLOSED)

    async def _start_id(self, city_id: int) -> str:
        return await self.feed.last_id(city_id) or "0-0"

    async def _run(self, city_id: int, after: str) -> None:
        failing = False
        while True:
            try:
                items = await self.feed.read(city_id, after, self.block_ms, 500)
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE as err:  # an outage: one line when it starts, one when it ends
                if not failing:
                    log.warning(
                        "the event feed of city %s does not answer (%s: %s); retrying every "
                        "second", city_id, type(err).__name__, err,
                    )  # fmt: skip
                failing = True
                await asyncio.sleep(1.0)
                continue
            except Exception:
                log.exception("reading the event feed of city %s failed; retrying", city_id)
                await asyncio.sleep(1.0)
                continue
            if failing:
                failing = False
                log.warning("the event feed of city %s answers again", city_id)
            for item in items:
                after = item.stream_id
                try:
                    data = self.render(item)
                except Exception:
                    log.exception("cannot render feed item %s", item.stream_id)
                    continue
                self._deliver(
                    city_id, Message.build(item.stream_id, item.type, item.camera_id, data)
                )
