"""Health checks of every configured service, for ``gtvision doctor``.

Each check connects for real with a bounded timeout and returns one :class:`Check` row:
PostgreSQL (connect and schema version), Redis (PING), RabbitMQ (AMQP handshake), S3 (the
bucket exists) and every RTSP source (``GTV_RTSP_URLS`` plus the enabled cameras in the
database): open it with PyAV and decode one frame. Services that are not configured are
reported as such and do not fail the run. Targets are shown with passwords masked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Literal
from urllib.parse import urlsplit

from gtvision.config import Settings, mask_url

Status = Literal["OK", "FAILED", "not configured"]


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check."""

    service: str
    target: str
    status: Status
    reason: str = ""

    @property
    def failed(self) -> bool:
        """Whether this row makes ``doctor`` exit non-zero."""
        return self.status == "FAILED"


def _reason(err: BaseException, url: str = "") -> str:
    """First line of an exception (or its type name), with ``url``'s password masked."""
    text = str(err).strip()
    first = text.splitlines()[0].strip() if text else ""
    first = first or type(err).__name__
    if url:
        first = first.replace(url, mask_url(url))
        password = urlsplit(url).password
        if password:
            first = first.replace(password, "***")
    return first


def check_postgres(url: str, timeout: float) -> Check:
    """Connect and compare the applied schema version with the shipped migrations."""
    import psycopg

    from gtvision.schema import current_version, migrations

    target = mask_url(url)
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("SELECT 1")
        have = current_version(url)
    except psycopg.Error as err:
        return Check("PostgreSQL", target, "FAILED", _reason(err, url))
    want = migrations()[-1].version
    if have != want:
        shown = f"schema at {have}" if have else "no gtvision schema"
        reason = f"{shown}, code expects {want}: run `gtvision db upgrade`"
        return Check("PostgreSQL", target, "FAILED", reason)
    return Check("PostgreSQL", target, "OK", f"schema {have}")


def check_redis(url: str, timeout: float, *, cluster: bool = False) -> Check:
    """PING the server; with ``cluster``, also that the Redis Cluster serves every slot.

    A cluster URL may list several seed nodes: the first that answers is asked.
    """
    import redis

    from gtvision.redis_keys import seed_urls

    target = mask_url(url)
    seeds = seed_urls(url) if cluster else [url]
    for seed in seeds[:-1]:
        probe = redis.Redis.from_url(seed, socket_connect_timeout=timeout)
        try:
            probe.ping()
        except redis.RedisError:
            continue
        finally:
            probe.close()
        url = seed
        break
    else:
        url = seeds[-1]
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, decode_responses=True
    )
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
        enabled = str(client.info("cluster").get("cluster_enabled", 0)) == "1"
        if enabled != cluster:
            want = "a Redis Cluster node" if cluster else "a single server"
            have = "a Redis Cluster node" if enabled else "a single server"
            fix = "true" if enabled else "false"
            reason = f"GTV_REDIS_CLUSTER expects {want}, server is {have}: set it to {fix}"
            return Check("Redis", target, "FAILED", reason)
        if cluster:
            reply = client.cluster("info")
            info = {str(k): str(v) for k, v in reply.items()} if isinstance(reply, dict) else {}
            if info.get("cluster_state") != "ok":
                ok_slots = info.get("cluster_slots_ok", "?")
                reason = f"cluster_state {info.get('cluster_state')}, {ok_slots}/16384 slots ok"
                return Check("Redis", target, "FAILED", reason)
            masters = info.get("cluster_size", "?")
            return Check("Redis", target, "OK", f"cluster ok, {masters} masters, version {version}")
    except redis.RedisError as err:
        return Check("Redis", target, "FAILED", _reason(err, url))
    finally:
        client.close()
    return Check("Redis", target, "OK", f"PING ok, version {version}")


async def _amqp_handshake(url: str, limit_s: float) -> str:
    import aio_pika

    conn = await aio_pika.connect(url, timeout=limit_s)
    try:
        props = conn.transport.connection.server_properties if conn.transport else {}
        version = props.get("version", b"?")
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        await conn.close()


def check_amqp(url: str, timeout: float) -> Check:
    """Open and close an AMQP connection (full handshake, login and vhost) to every node."""
    from gtvision.sinks.amqp import broker_urls

    nodes = broker_urls(url)
    if len(nodes) == 1:
        return _check_amqp_node(nodes[0], timeout)
    checks = [_check_amqp_node(node, timeout) for node in nodes]
    good = [c for c in checks if c.status == "OK"]
    bad = "; ".join(f"{c.target}: {c.reason}" for c in checks if c.status != "OK")
    reason = f"{len(good)}/{len(nodes)} nodes answer" + (f" ({bad})" if bad else "")
    return Check("RabbitMQ", mask_url(url), "OK" if good else "FAILED", reason)


def _check_amqp_node(url: str, timeout: float) -> Check:
    target = mask_url(url)
    try:
        version = asyncio.run(asyncio.wait_for(_amqp_handshake(url, timeout), timeout + 1))
    except (TimeoutError, asyncio.TimeoutError):  # noqa: UP041 (aiormq raises the old alias)
        return Check("RabbitMQ", target, "FAILED", f"no AMQP handshake within {timeout:g}s")
    except Exception as err:  # aio-pika raises many unrelated types for one failure
        code = err.args[0] if err.args and isinstance(err.args[0], int) else None
        reason = _reason(err, url)
        if code is not None:  # aiormq keeps only the errno of a refused/unreachable socket
            reason = f"{os.strerror(code)}: {reason}"
        return Check("RabbitMQ", target, "FAILED", reason)
    return Check("RabbitMQ", target, "OK", f"AMQP handshake ok, server {version}")


def check_s3(settings: Settings, timeout: float) -> Check:
    """Ask the endpoint whether the configured bucket exists."""
    import urllib3
    from minio import Minio

    scheme = "https" if settings.s3_secure else "http"
    target = f"{scheme}://{settings.s3_endpoint}/{settings.s3_bucket}"
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=urllib3.Retry(total=0)
    )
    client = Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
        http_client=http,
    )
    try:
        exists = client.bucket_exists(settings.s3_bucket)
    except urllib3.exceptions.MaxRetryError as err:  # connection-level: show the cause only
        cause = _reason(err.reason or err).rpartition("new connection: ")[2]
        return Check("S3", target, "FAILED", cause)
    except Exception as err:  # minio wraps S3 errors in several types
        return Check("S3", target, "FAILED", _reason(err))
    finally:
        http.clear()
    if not exists:
        return Check("S3", target, "FAILED", f"bucket {settings.s3_bucket!r} does not exist")
    return Check("S3", target, "OK", "bucket exists")


def check_rtsp(
    url: str, timeout: float, label: str = "RTSP", allow: Sequence[str] | None = None
) -> Check:
    """Open the stream over TCP and decode one video frame.

    With ``allow`` (table cameras: ``GTV_CAMERA_ALLOW_CIDRS``) the address is checked first and
    the checked address opened, as the readers do.
    """
    import av

    from gtvision.sources.streamurl import UnsafeUrl, pin

    target = mask_url(url)
    try:
        opened = url if allow is None else pin(url, allow)
    except UnsafeUrl as err:
        return Check(label, target, "FAILED", f"address refused: {err}")
    try:
        with av.open(
            opened, options={"rtsp_transport": "tcp"}, timeout=(timeout, timeout)
        ) as container:
            if not container.streams.video:
                return Check(label, target, "FAILED", "no video stream")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                return Check(label, target, "OK", f"{frame.width}x{frame.height} {stream.name}")
    except (av.error.FFmpegError, OSError) as err:
        return Check(label, target, "FAILED", _reason(err, url))
    return Check(label, target, "FAILED", "stream ended before the first frame")


def database_cameras(url: str, timeout: float) -> list[tuple[str, str]]:
    """``(label, stream_url)`` of every enabled camera; empty when the database is unusable."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout))) as conn:
            rows = conn.execute(
                "SELECT id, name, stream_url FROM cameras WHERE enabled ORDER BY id"
            ).fetchall()
    except psycopg.Error:
        return []
    return [(f"camera {cid} {name}", str(stream)) for cid, name, stream in rows]


def run_checks(settings: Settings, timeout: float = 5.0) -> list[Check]:
    """Every check, in a fixed order, run concurrently; unconfigured services listed too."""
    jobs: list[Callable[[], Check]] = []
    rows: list[Check | None] = []

    def add(service: str, job: Callable[[], Check] | None) -> None:
        rows.append(Check(service, "-", "not configured") if job is None else None)
        if job is not None:
            jobs.append(job)

    db, rd, mq = settings.database_url, settings.redis_url, settings.amqp_url
    add("PostgreSQL", partial(check_postgres, db, timeout) if db else None)
    add("Redis", partial(check_redis, rd, timeout, cluster=settings.redis_cluster) if rd else None)
    add("RabbitMQ", partial(check_amqp, mq, timeout) if mq else None)
    add("S3", partial(check_s3, settings, timeout) if settings.s3_endpoint else None)
    sources: list[tuple[str, str, Sequence[str] | None]] = [
        ("RTSP", url, None) for url in settings.rtsp_urls
    ]
    if db:
        allow = settings.camera_allow_cidrs
        sources += [(label, url, allow) for label, url in database_cameras(db, timeout)]
    if not sources:
        add("RTSP", None)
    for label, url, guard in sources:
        add(label, partial(check_rtsp, url, timeout, label, guard))
    with ThreadPoolExecutor(max_workers=min(8, len(jobs) or 1)) as pool:
        results = iter(list(pool.map(lambda job: job(), jobs)))
    return [row if row is not None else next(results) for row in rows]


def format_table(checks: list[Check]) -> str:
    """Aligned ``SERVICE TARGET STATUS REASON`` lines with a header."""
    header = Check("SERVICE", "TARGET", "OK", "REASON")
    table = [(c.service, c.target, "STATUS" if c is header else c.status, c.reason)
             for c in [header, *checks]]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    return "\n".join(
        f"{s:<{widths[0]}}  {t:<{widths[1]}}  {st:<{widths[2]}}  {r}".rstrip()
        for s, t, st, r in table
    )
