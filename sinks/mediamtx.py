"""Keeps MediaMTX's paths equal to the enabled cameras, through its v3 control API.

Every enabled camera is a path ``gtv-cam<id>`` that MediaMTX pulls from the camera's
``stream_url`` (RTSP over TCP, always on) and serves to many viewers (WebRTC/WHEP, LL-HLS).
:class:`PathSync` reconciles the **whole set**, never single changes: it lists MediaMTX's path
configurations (``/v3/config/paths/list``), adds what is missing (``add``), patches what differs
(``patch``) and deletes the ``gtv-cam*`` paths of removed or disabled cameras (``delete``);
paths it does not manage are left alone. It runs at start, whenever a camera row changes
(a trigger notifies ``gtv_cameras``, migration 0060: whatever wrote the row, API or SQL) and every
``GTV_MEDIAMTX_SYNC_S`` seconds. A MediaMTX outage therefore never fails a camera API call and
loses nothing: the next successful pass brings MediaMTX up to date. One process syncs at a time
(a PostgreSQL advisory lock); the other web processes wait on standby.

MediaMTX pulls from the URLs it is given, so they pass the same address guard as gtvision's
own readers (:func:`gtvision.sources.streamurl.pin`, ``GTV_CAMERA_ALLOW_CIDRS``): each pass
resolves every camera's host, gives MediaMTX the checked address, and leaves out (logged)
cameras whose address is refused — a row written outside the API or a name that now resolves
elsewhere never makes MediaMTX connect there.

Each call carries a one-minute control-API token (``[{"action": "api"}]``) signed with the key
whose JWKS gtvision serves (:mod:`gtvision.web.mediamtx`). When a pass takes the lock it asks
MediaMTX to reload that JWKS (``/v3/auth/jwks/refresh``), so a changed key is picked up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import psycopg

from gtvision import metrics
from gtvision.config import mask_url
from gtvision.sinks.backoff import Backoff
from gtvision.sources.streamurl import UnsafeUrl, pin

log = logging.getLogger(__name__)
CHANNEL = "gtv_cameras"
LOCK_KEY = 0x67747600_6D6D7478  # "gtv\0mmtx": one path syncer in the whole deployment
PAGE = 100
PATH_PREFIX = "gtv-cam"
_PATH_RE = re.compile(rf"^{PATH_PREFIX}(\d+)$")


def path_name(camera_id: int) -> str:
    """The MediaMTX path of a camera (``gtv-cam12``)."""
    return f"{PATH_PREFIX}{camera_id}"


def camera_of(path: str) -> int | None:
    """The camera id of a path gtvision manages, ``None`` for any other path."""
    found = _PATH_RE.match(path)
    return int(found.group(1)) if found else None


class MediaMtxError(Exception):
    """MediaMTX answered a control-API call with an error."""


def desired_paths(cameras: Iterable[tuple[int, str]]) -> dict[str, dict[str, Any]]:
    """Path configurations for ``(camera id, stream URL)`` of every enabled camera."""
    return {
        path_name(camera_id): {"source": url, "rtspTransport": "tcp", "sourceOnDemand": False}
        for camera_id, url in cameras
    }


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one reconciliation changed."""

    added: tuple[str, ...] = ()
    patched: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


class MediaMtxApi:
    """The part of MediaMTX's v3 control API the sync uses (``api/openapi.yaml`` upstream)."""

    def __init__(self, base_url: str, token: Callable[[], str], *, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token()}"}
        r = await self._client.request(method, path, headers=headers, **kw)
        if r.status_code >= 400:
            msg = f"MediaMTX {method} {path}: {r.status_code} {r.text[:200]}"
            raise MediaMtxError(msg)
        return r.json() if r.content else None

    async def paths(self) -> dict[str, dict[str, Any]]:
        """Every configured path, by name (all pages)."""
        out: dict[str, dict[str, Any]] = {}
        page = 0
        while True:
            params = {"page": page, "itemsPerPage": PAGE}
            body = await self._call("GET", "/v3/config/paths/list", params=params)
            for item in body.get("items") or []:
                out[item["name"]] = item
            page += 1
            if page >= int(body.get("pageCount") or 0):
                return out

    async def online(self) -> dict[str, str | None]:
        """Paths whose source is online now (runtime ``/v3/paths/list``): name -> since.

        ``online``/``onlineTime`` (MediaMTX ≥ 1.15), else the older ``ready``/``readyTime``.
        """
        out: dict[str, str | None] = {}
        page = 0
        while True:
            params = {"page": page, "itemsPerPage": PAGE}
            body = await self._call("GET", "/v3/paths/list", params=params)
            for item in body.get("items") or []:
                if item.get("online", item.get("ready")):
                    out[item["name"]] = item.get("onlineTime") or item.get("readyTime")
            page += 1
            if page >= int(body.get("pageCount") or 0):
                return out

    async def add(self, name: str, conf: dict[str, Any]) -> None:
        """``POST /v3/config/paths/add/{name}``."""
        await self._call("POST", f"/v3/config/paths/add/{quote(name)}", json=conf)

    async def patch(self, name: str, conf: dict[str, Any]) -> None:
        """``PATCH /v3/config/paths/patch/{name}``."""
        await self._call("PATCH", f"/v3/config/paths/patch/{quote(name)}", json=conf)

    async def delete(self, name: str) -> None:
        """``DELETE /v3/config/paths/delete/{name}``."""
        await self._call("DELETE", f"/v3/config/paths/delete/{quote(name)}")

    async def refresh_jwks(self) -> None:
        """``POST /v3/auth/jwks/refresh``: MediaMTX reloads the JWKS now."""
        await self._call("POST", "/v3/auth/jwks/refresh")

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()


async def reconcile(api: MediaMtxApi, desired: dict[str, dict[str, Any]]) -> SyncResult:
    """Make MediaMTX's ``gtv-cam*`` paths exactly ``desired``."""
    current = {k: v for k, v in (await api.paths()).items() if camera_of(k) is not None}
    added, patched, deleted = [], [], []
    for name, conf in sorted(desired.items()):
        now = current.get(name)
        if now is None:
            await api.add(name, conf)
            added.append(name)
        elif any(now.get(k) != v for k, v in conf.items()):
            await api.patch(name, conf)
            patched.append(name)
    for name in sorted(set(current) - set(desired)):
        await api.delete(name)
        deleted.append(name)
    return SyncResult(tuple(added), tuple(patched), tuple(deleted))


async def enabled_cameras(conn: psycopg.AsyncConnection[Any]) -> list[tuple[int, str]]:
    """``(id, stream_url)`` of every enabled camera."""
    cur = await conn.execute("SELECT id, stream_url FROM cameras WHERE enabled ORDER BY id")
    return [(int(r[0]), str(r[1])) for r in await cur.fetchall()]


def guarded(cameras: Iterable[tuple[int, str]], allow: Sequence[str]) -> list[tuple[int, str]]:
    """The cameras whose address the guard allows, at that checked address (blocking: DNS)."""
    out = []
    for camera_id, url in cameras:
        try:
            out.append((camera_id, pin(url, allow)))
        except UnsafeUrl as err:
            log.warning("MediaMTX path sync: camera %s left out: %s", camera_id, err)
    return out


class PathSync:
    """The reconciliation loop (see the module docstring)."""

    def __init__(
        self,
        dsn: str,
        api: MediaMtxApi,
        *,
        interval_s: float = 60.0,
        allow: Sequence[str] | None = None,
    ) -> None:
        self.allow = allow
        self.dsn = dsn
        self.api = api
        self.interval_s = interval_s
        self.active = False  # holds the lock
        self.passes = 0  # successful reconciliations
        self.last: SyncResult | None = None
        self.synced = asyncio.Event()  # set after each successful pass

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until ``stop`` is set; database and MediaMTX failures are retried."""
        backoff = Backoff(base_s=0.5, cap_s=self.interval_s)
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await self._hold(conn, stop, backoff)
            except (psycopg.Error, OSError) as err:
                log.warning("MediaMTX path sync: database: %s: %s", type(err).__name__, err)
            self.active = False
            await _sleep_or_stop(stop, backoff.next())

    async def _hold(
        self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event, backoff: Backoff
    ) -> None:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        row = await cur.fetchone()
        if not (row and row[0]):  # another process syncs: stand by
            await _sleep_or_stop(stop, self.interval_s)
            return
        self.active = True
        await conn.execute(f"LISTEN {CHANNEL}")
        fresh = True
        while not stop.is_set():
            delay = self.interval_s
            try:
                if fresh:
                    await self.api.refresh_jwks()
                    fresh = False
                await self.sync(conn)
                backoff.reset()
                metrics.MEDIAMTX_SYNC.labels("ok").inc()
            except (httpx.HTTPError, MediaMtxError) as err:
                metrics.MEDIAMTX_SYNC.labels("failed").inc()
                log.warning("MediaMTX path sync failed (%s): %s", mask_url(self.api.base_url), err)
                delay = backoff.next()
            await _wait_notify(conn, stop, delay)

    async def sync(self, conn: psycopg.AsyncConnection[Any]) -> SyncResult:
        """One full reconciliation."""
        cameras = await enabled_cameras(conn)
        if self.allow is not None:
            cameras = await asyncio.to_thread(guarded, cameras, self.allow)
        result = await reconcile(self.api, desired_paths(cameras))
        for action, names in (
            ("add", result.added),
            ("patch", result.patched),
            ("delete", result.deleted),
        ):
            if names:
                metrics.MEDIAMTX_PATH_CHANGES.labels(action).inc(len(names))
        if result.added or result.patched or result.deleted:
            log.info(
                "MediaMTX paths: added %s, patched %s, deleted %s",
                list(result.added), list(result.patched), list(result.deleted),
            )  # fmt: skip
        self.passes += 1
        self.last = result
        self.synced.set()
        return result


async def _wait_notify(
    conn: psycopg.AsyncConnection[Any], stop: asyncio.Event, delay: float
) -> None:
    """Return after a camera change notification (bursts collapse), ``delay`` or ``stop``."""
    stopper = asyncio.ensure_future(stop.wait())
    waiter = asyncio.ensure_future(_first_notify(conn, delay))
    try:
        await asyncio.wait({stopper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        waiter.cancel()
        await asyncio.gather(stopper, waiter, return_exceptions=True)


async def _first_notify(conn: psycopg.AsyncConnection[Any], delay: float) -> None:
    got = [n async for n in conn.notifies(timeout=delay, stop_after=1)]
    if got:  # a burst of changes: take them all, one pass covers them
        async for _ in conn.notifies(timeout=0.2):
            pass


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
