"""Live event feed for the SSE endpoints: one Redis Stream per city (or an in-process twin).

Stream key ``rkey(prefix, "c<city>", "events")`` (``gtv:{c12}:events``); each entry has the fields
``id`` (event id), ``type``, ``camera_id`` and ``json`` (event JSON without crop bytes). Entry ids
are ``"<ms>-<seq>"``.

Publishing is idempotent per event id: :class:`RedisFeed` runs ``XADD`` inside a Lua script that
first looks up ``gtv:{c12}:feedid:<event id>`` (kept ``dedupe_ttl_s``), so re-publishing a
re-emitted event returns the stream id it already has instead of appending a duplicate entry.
A batch is one script call per city. The stream and the dedupe keys carry the city's hash tag,
so the script's keys sit in one slot of a Redis Cluster (``GTV_REDIS_CLUSTER``).
:class:`MemoryFeed` keeps the same map in memory.

Readers ask for entries strictly after a stream id (SSE ``Last-Event-ID``); ``"0"``/``"0-0"`` reads
from the start and ``"$"`` only what arrives after the call. When old entries were trimmed
(approximate ``MAXLEN``), :meth:`history_lost` tells whether entries after a given id are gone, so
the web can fall back to Postgres for the gap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from gtvision.config import Settings
from gtvision.events import EventBase
from gtvision.redis_keys import (
    AsyncRedis,
    SyncRedis,
    city_tag,
    connect,
    connect_async,
    rkey,
)
from gtvision.sinks.outbox import event_json

DEFAULT_MAXLEN = 100_000
DEFAULT_DEDUPE_TTL_S = 7 * 24 * 3600

# KEYS[1]: the city's stream; KEYS[1+i]: dedupe key of event i. ARGV[1]: MAXLEN, ARGV[2]: TTL,
# then id, type, camera_id, json of each event. Returns the stream id of every event, in order.
_PUBLISH_LUA = """
local out = {}
for i = 2, #KEYS do
  local sid = redis.call('GET', KEYS[i])
  if not sid then
    local a = 2 + (i - 2) * 4
    sid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[a + 1],
                     'type', ARGV[a + 2], 'camera_id', ARGV[a + 3], 'json', ARGV[a + 4])
    redis.call('SET', KEYS[i], sid, 'EX', ARGV[2])
  end
  out[#out + 1] = sid
end
return out
"""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One feed entry as read back by the web."""

    stream_id: str
    event_id: str
    type: str
    camera_id: int
    json: str


class FeedPublisher(Protocol):
    """Appends stored events to the feed of their city."""

    def publish(self, event: EventBase) -> str:
        """Append ``event`` (idempotent per event id); return its stream id."""
        ...


class FeedReader(Protocol):
    """Reads a city's feed (used by the SSE endpoints)."""

    async def read(self, city_id: int, after: str, block_ms: int, count: int) -> list[FeedItem]:
        """Entries strictly after ``after``, waiting up to ``block_ms`` (0: no wait) for one."""
        ...

    async def oldest_id(self, city_id: int) -> str | None:
        """Id of the oldest retained entry, ``None`` for an empty feed."""
        ...

    async def history_lost(self, city_id: int, after: str) -> bool:
        """True when entries newer than ``after`` were trimmed (fall back to Postgres)."""
        ...


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` (or ``"<ms>"``) as a comparable tuple; raises ValueError if malformed."""
    ms, _, seq = value.partition("-")
    try:
        parsed = (int(ms), int(seq) if seq else 0)
    except ValueError:
        msg = f"stream id must look like '<ms>-<seq>', got {value!r}"
        raise ValueError(msg) from None
    if parsed[0] < 0 or parsed[1] < 0:
        msg = f"stream id must be non-negative, got {value!r}"
        raise ValueError(msg)
    return parsed


def stream_key(prefix: str, city_id: int) -> str:
    """Redis key of the stream of ``city_id``."""
    return rkey(prefix, city_tag(city_id), "events")


def dedupe_key(prefix: str, city_id: int, event_id: str) -> str:
    """Redis key remembering the stream id of a published event (same slot as the stream)."""
    return rkey(prefix, city_tag(city_id), "feedid", event_id)


def _item(stream_id: str, fields: dict[str, str]) -> FeedItem:
    return FeedItem(
        stream_id=stream_id,
        event_id=fields["id"],
        type=fields["type"],
        camera_id=int(fields["camera_id"]),
        json=fields["json"],
    )


class RedisFeed:
    """Feed on Redis Streams: synchronous publish (flow thread), asynchronous read (web loop).

    ``cluster``: ``url`` names seed nodes of a Redis Cluster (``gtvision.redis_keys``).
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        dedupe_ttl_s: int = DEFAULT_DEDUPE_TTL_S,
        cluster: bool = False,
        max_connections: int = 100,
    ) -> None:
        self._url = url
        self._max_connections = max_connections
        self._prefix = prefix
        self._maxlen = maxlen
        self._ttl = dedupe_ttl_s
        self._cluster = cluster
        # created at first use: a cluster client connects when it is made, and a process must
        # start (and its sink hold and retry) while the cluster does not answer
        self._sync_client: SyncRedis | None = None
        self._script_obj: Any = None
        self._async: AsyncRedis | None = None

    @property
    def _sync(self) -> SyncRedis:
        if self._sync_client is None:
            self._sync_client = connect(self._url, cluster=self._cluster, socket_timeout=10)
        return self._sync_client

    @property
    def _script(self) -> Any:
        if self._script_obj is None:
            self._script_obj = self._sync.register_script(_PUBLISH_LUA)
        return self._script_obj

    def publish(self, event: EventBase) -> str:
        """Append ``event`` to its city's stream once; return the entry id."""
        return self.publish_many([event])[0]

    def publish_many(self, events: Sequence[EventBase]) -> list[str]:
        """``publish`` for a batch: one script call per city, ids returned in input order."""
        by_city: dict[int, list[int]] = {}
        for i, event in enumerate(events):
            by_city.setdefault(event.city_id, []).append(i)
        out = [""] * len(events)
        for city, indexes in by_city.items():
            keys = [stream_key(self._prefix, city)]
            args: list[Any] = [self._maxlen, self._ttl]
            for i in indexes:
                event = events[i]
                keys.append(dedupe_key(self._prefix, city, event.id))
                args += [event.id, event.type, event.camera_id, event_json(event)]
            sids: Any = self._script(keys=keys, args=args)
            for i, sid in zip(indexes, sids, strict=True):
                out[i] = str(sid)
        return out

    def _client(self) -> AsyncRedis:
        if self._async is None:
            self._async = connect_async(
                self._url, cluster=self._cluster, max_connections=self._max_connections
            )
        return self._async

    async def read(self, city_id: int, after: str, block_ms: int, count: int) -> list[FeedItem]:
        """Entries strictly after ``after`` (``XREAD``), waiting up to ``block_ms``."""
        if after != "$":
            parse_stream_id(after)
        key = stream_key(self._prefix, city_id)
        block = block_ms if block_ms > 0 else None
        reply: Any = await self._client().xread({key: after}, count=count, block=block)
        items: list[FeedItem] = []
        for _key, entries in reply or []:
            items.extend(_item(sid, fields) for sid, fields in entries)
        return items

    async def oldest_id(self, city_id: int) -> str | None:
        """Id of the first retained entry."""
        first = await self._client().xrange(stream_key(self._prefix, city_id), count=1)
        return str(first[0][0]) if first else None

    async def last_id(self, city_id: int) -> str | None:
        """Id of the newest entry."""
        last = await self._client().xrevrange(stream_key(self._prefix, city_id), count=1)
        return str(last[0][0]) if last else None

    async def history_lost(self, city_id: int, after: str) -> bool:
        """True when entries newer than ``after`` may have been trimmed away.

        Redis does not record the id of the last trimmed entry, so this answers True whenever
        something was trimmed (``entries-added > length``) and ``after`` is older than the oldest
        retained entry — conservative: at worst the web reads a few rows from Postgres it did
        not need.
        """
        key = stream_key(self._prefix, city_id)
        try:
            info: Any = await self._client().xinfo_stream(key)
        except redis.ResponseError:
            return False  # no stream yet: nothing was ever trimmed
        deleted = parse_stream_id(str(info.get("max-deleted-entry-id") or "0-0"))
        if deleted > parse_stream_id(after):
            return True
        first = info.get("first-entry")
        trimmed = int(info.get("entries-added") or 0) > int(info.get("length") or 0)
        return bool(trimmed and first and parse_stream_id(after) < parse_stream_id(str(first[0])))

    def forget(self, city_id: int, stream_ids: list[str]) -> int:
        """Delete entries of a city's stream (``XDEL``; LGPD erasure); return how many went."""
        if not stream_ids:
            return 0
        return int(self._sync.xdel(stream_key(self._prefix, city_id), *stream_ids))

    def close(self) -> None:
        """Close the synchronous connection pool (if one was made)."""
        if self._sync_client is not None:
            self._sync_client.close()

    async def aclose(self) -> None:
        """Close the asynchronous client (call from the loop that read)."""
        if self._async is not None:
            await self._async.aclose()
            self._async = None


@dataclass
class _City:
    entries: deque[tuple[tuple[int, int], FeedItem]]
    max_deleted: tuple[int, int] = (0, 0)
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)


class MemoryFeed:
    """In-process feed with Redis stream semantics (ids, strict ``after``, trimming, dedupe).

    ``publish`` may be called from any thread; ``read`` is a coroutine that wakes when a
    publish happens, whichever loop it runs on.
    """

    def __init__(self, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._maxlen = maxlen
        self._lock = threading.Lock()
        self._cities: dict[int, _City] = {}
        self._last = (0, 0)
        self._seen: OrderedDict[str, str] = OrderedDict()

    def _city(self, city_id: int) -> _City:
        city = self._cities.get(city_id)
        if city is None:
            city = self._cities[city_id] = _City(entries=deque())
        return city

    def _next_id(self) -> tuple[int, int]:
        ms = time.time_ns() // 1_000_000
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return self._last

    def publish(self, event: EventBase) -> str:
        """Append ``event`` once (same event id, same stream id); wake waiting readers."""
        with self._lock:
            known = self._seen.get(event.id)
            if known is not None:
                return known
            sid = self._next_id()
            text = f"{sid[0]}-{sid[1]}"
            city = self._city(event.city_id)
            item = FeedItem(text, event.id, event.type, event.camera_id, event_json(event))
            city.entries.append((sid, item))
            while len(city.entries) > self._maxlen:
                city.max_deleted = city.entries.popleft()[0]
            self._seen[event.id] = text
            while len(self._seen) > 4 * self._maxlen:
                self._seen.popitem(last=False)
            waiters, city.waiters = city.waiters, []
        for loop, flag in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(flag.set)
        return text

    def publish_many(self, events: Sequence[EventBase]) -> list[str]:
        """``publish`` for a batch."""
        return [self.publish(e) for e in events]

    def _after(self, city_id: int, after: tuple[int, int], count: int) -> list[FeedItem]:
        city = self._cities.get(city_id)
        if city is None:
            return []
        out: list[FeedItem] = []
        for sid, item in city.entries:
            if sid > after:
                out.append(item)
                if len(out) >= count:
                    break
        return out

    async def read(self, city_id: int, after: str, block_ms: int, count: int) -> list[FeedItem]:
        """Entries strictly after ``after``, waiting up to ``block_ms`` for the first one."""
        with self._lock:
            start = self._last if after == "$" else parse_stream_id(after)
            items = self._after(city_id, start, count)
            if items or block_ms <= 0:
                return items
            flag = asyncio.Event()
            self._city(city_id).waiters.append((asyncio.get_running_loop(), flag))
        deadline = time.monotonic() + block_ms / 1000
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            try:
                await asyncio.wait_for(flag.wait(), remaining)
            except TimeoutError:
                return []
            with self._lock:
                items = self._after(city_id, start, count)
                if items:
                    return items
                flag.clear()
                self._city(city_id).waiters.append((asyncio.get_running_loop(), flag))

    async def oldest_id(self, city_id: int) -> str | None:
        """Id of the first retained entry."""
        with self._lock:
            city = self._cities.get(city_id)
            return city.entries[0][1].stream_id if city and city.entries else None

    async def last_id(self, city_id: int) -> str | None:
        """Id of the newest entry."""
        with self._lock:
            city = self._cities.get(city_id)
            return city.entries[-1][1].stream_id if city and city.entries else None

    def forget(self, city_id: int, stream_ids: list[str]) -> int:
        """Delete entries of a city's stream (LGPD erasure), like ``XDEL``; return how many."""
        doomed = {parse_stream_id(sid) for sid in stream_ids}
        with self._lock:
            city = self._cities.get(city_id)
            if city is None or not doomed:
                return 0
            kept = deque(e for e in city.entries if e[0] not in doomed)
            gone = [e[0] for e in city.entries if e[0] in doomed]
            city.entries = kept
            if gone:
                city.max_deleted = max(city.max_deleted, *gone)
            return len(gone)

    async def history_lost(self, city_id: int, after: str) -> bool:
        """True when an entry newer than ``after`` was trimmed away."""
        with self._lock:
            city = self._cities.get(city_id)
            return city is not None and city.max_deleted > parse_stream_id(after)


def make_feed(settings: Settings) -> RedisFeed | MemoryFeed:
    """``RedisFeed`` when ``settings.redis_url`` is set, else an in-process ``MemoryFeed``."""
    if settings.redis_url:
        return RedisFeed(
            settings.redis_url,
            settings.redis_prefix,
            maxlen=settings.redis_stream_maxlen,
            cluster=settings.redis_cluster,
            max_connections=settings.redis_max_connections,
        )
    return MemoryFeed(maxlen=settings.redis_stream_maxlen)
