"""``POST /cameras/{id}/exports`` on real Postgres and the local object store.

The segments are cut from an ffmpeg H.264 file the way the continuous recorder cuts them
(fragmented MP4, each starting at a keyframe, media time rebased to 0) and listed in
``recordings`` with their wall-clock start, so the export reads exactly what production stores.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from gtvision.sinks.exports import ExportTooLarge, Segment, join_segments
from gtvision.sinks.spool import FRAGMENTED
from gtvision.web.auth import Role
from tests.web.conftest import Api, running

in_loop = pytest.mark.asyncio(loop_scope="session")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
FPS, GOP, SECONDS = 10, 20, 20  # a keyframe every 2 s


@dataclass(frozen=True)
class Cut:
    """One recorder-style segment: its wall-clock start, key, size and packets (wall, bytes)."""

    started_at: datetime
    key: str
    size: int
    packets: list[tuple[datetime, bytes]]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is needed (Debian package ffmpeg)"
    out = tmp_path_factory.mktemp("exp") / "cam.mp4"
    subprocess.run(
        [
            ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc=size=320x240:rate={FPS}:d={SECONDS}", "-c:v", "libx264",
            "-preset", "ultrafast", "-bf", "0", "-g", str(GOP), "-pix_fmt", "yuv420p", str(out),
        ],
        check=True, timeout=120,
    )  # fmt: skip
    return out


def _cut(source: Path, api: Api, camera: int, every_s: float) -> list[Cut]:
    """Cut ``source`` at the first keyframe after each ``every_s`` and store the segments."""
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        tb = Fraction(stream.time_base or 1)
        packets = [p for p in src.demux(stream) if p.size]
        groups: list[list[Any]] = []
        for p in packets:
            if not groups or (p.is_keyframe and (p.dts - groups[-1][0].dts) * tb >= every_s):
                groups.append([])
            groups[-1].append(p)
        cuts = []
        for i, group in enumerate(groups):
            base = group[0].dts
            start = T0 + timedelta(seconds=float(base * tb))
            path = source.with_name(f"seg{camera}-{i}.mp4")
            with av.open(str(path), mode="w", format="mp4", options=FRAGMENTED) as out:
                st = out.add_stream_from_template(stream)
                for p in group:
                    pkt = av.Packet(bytes(p))
                    pkt.stream, pkt.time_base = st, tb
                    pkt.pts, pkt.dts = p.pts - base, p.dts - base
                    pkt.duration, pkt.is_keyframe = p.duration, p.is_keyframe
                    out.mux(pkt)
            key = f"x/{camera}/rec/seg{i}.mp4"
            api.store.put(key, path.read_bytes(), "video/mp4")
            walls = [(T0 + timedelta(seconds=float(p.dts * tb)), bytes(p)) for p in group]
            cuts.append(Cut(start, key, path.stat().st_size, walls))
    return cuts


def _camera_with(api: Api, cuts: list[Cut], *, skip: tuple[int, ...] = ()) -> int:
    with psycopg.connect(api.settings.database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, %s, %s) RETURNING id",
            (api.world.cities["a"], f"exp-{uuid.uuid4().hex[:6]}", "rtsp://10.1.2.9/x"),
        ).fetchone()
        assert row is not None
        for i, c in enumerate(cuts):
            if i in skip:
                continue
            conn.execute(
                "INSERT INTO recordings (id, city_id, camera_id, started_at, ended_at, "
                "object_key, bytes) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (f"rec-{row[0]}-{i}", api.world.cities["a"], row[0], c.started_at,
                 c.packets[-1][0], c.key, c.size),
            )  # fmt: skip
    return int(row[0])


def _read(api: Api, key: str) -> list[tuple[float, bool, bytes]]:
    with av.open(str(api.store.path(key))) as f:
        s = f.streams.video[0]
        tb = Fraction(s.time_base or 1)
        return [(float((p.pts or 0) * tb), p.is_keyframe, bytes(p)) for p in f.demux(s) if p.size]


def _body(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


@in_loop
async def test_export_joins_segments_without_reencoding(api: Api, source: Path) -> None:
    cuts = _cut(source, api, 1, every_s=5)
    assert len(cuts) >= 3
    camera = _camera_with(api, cuts)
    start, end = T0 + timedelta(seconds=3.55), T0 + timedelta(seconds=13.2)
    h = api.auth("a", Role.VIEWER)
    done = REGISTRY.get_sample_value("gtvision_exports_total", {"outcome": "ok"}) or 0
    r = await api.client.post(f"/cameras/{camera}/exports", json=_body(start, end), headers=h)
    assert r.status_code == 201, r.text
    assert REGISTRY.get_sample_value("gtvision_exports_total", {"outcome": "ok"}) == done + 1
    out = r.json()
    # starts at the keyframe before start (2 s GOP: 2.0 s), ends at the last frame <= end
    assert datetime.fromisoformat(out["started_at"]) == T0 + timedelta(seconds=2)
    assert datetime.fromisoformat(out["ended_at"]) == T0 + timedelta(seconds=13.2)
    assert out["segments"] == len({c.key for c in cuts if c.started_at <= end and
                                   c.packets[-1][0] >= T0 + timedelta(seconds=2)})  # fmt: skip
    assert out["url"].startswith("http://testserver/files/")
    got = _read(api, out["object_key"])
    wanted = [
        (w, data) for c in cuts for w, data in c.packets if T0 + timedelta(seconds=2) <= w <= end
    ]
    assert [g[2] for g in got] == [d for _, d in wanted]  # the very same packets: no re-encoding
    assert got[0][1]  # a keyframe first
    times = [T0 + timedelta(seconds=t) + timedelta(seconds=2) for t, _, _ in got]
    assert all(
        abs((a - w).total_seconds()) < 0.002 for a, (w, _) in zip(times, wanted, strict=True)
    )
    assert out["bytes"] == api.store.path(out["object_key"]).stat().st_size
    with psycopg.connect(api.settings.database_url) as conn:
        audit = conn.execute(
            "SELECT username, detail->>'export' FROM audit_log WHERE action = 'recordings.export'"
            " AND target = %s",
            (f"camera:{camera}",),
        ).fetchall()
        row = conn.execute("SELECT camera_id, segments FROM exports WHERE id = %s", (out["id"],))
        stored = row.fetchone()
    assert audit == [(api.world.users[("a", Role.VIEWER)].username, out["id"])]
    assert stored == (camera, out["segments"])


@in_loop
async def test_a_missing_segment_stays_a_gap(api: Api, source: Path) -> None:
    cuts = _cut(source, api, 2, every_s=5)
    camera = _camera_with(api, cuts, skip=(1,))
    r = await api.client.post(
        f"/cameras/{camera}/exports",
        json=_body(T0, T0 + timedelta(seconds=SECONDS)),
        headers=api.auth("a", Role.OPERATOR),
    )
    assert r.status_code == 201, r.text
    got = _read(api, r.json()["object_key"])
    assert r.json()["segments"] == len(cuts) - 1
    steps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
    gap = (cuts[2].started_at - cuts[1].started_at).total_seconds()
    assert max(steps) == pytest.approx(gap + 1 / FPS, abs=0.002)  # wall-clock time kept
    assert len(got) == sum(len(c.packets) for i, c in enumerate(cuts) if i != 1)


@in_loop
async def test_export_refusals(api: Api, source: Path) -> None:
    cuts = _cut(source, api, 3, every_s=5)
    camera = _camera_with(api, cuts)
    h = api.auth("a", Role.VIEWER)
    url = f"/cameras/{camera}/exports"
    backwards = await api.client.post(url, json=_body(T0, T0), headers=h)
    assert backwards.status_code == 422
    long = await api.client.post(url, json=_body(T0, T0 + timedelta(days=2)), headers=h)
    assert long.status_code == 422
    assert "limited to 3600 s" in long.json()["detail"]
    naive = await api.client.post(url, json={"start": "2026-01-05T12:00:00", "end": "x"}, headers=h)
    assert naive.status_code == 422
    never = T0 - timedelta(days=1)
    empty = await api.client.post(url, json=_body(never, never + timedelta(minutes=5)), headers=h)
    assert empty.status_code == 404
    other = api.world.cameras["b"]
    r = await api.client.post(f"/cameras/{other}/exports", json=_body(T0, T0), headers=h)
    assert r.status_code in (404, 422)
    r = await api.client.post(
        f"/cameras/{other}/exports", json=_body(T0, T0 + timedelta(seconds=5)), headers=h
    )
    assert r.status_code == 404
    small = api.settings.model_copy(update={"export_max_bytes": 1_000_000})
    with psycopg.connect(api.settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE recordings SET bytes = 600000 WHERE camera_id = %s", (camera,))
    async with running(small, feed=api.feed, store=api.store) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            big = await c.post(url, json=_body(T0, T0 + timedelta(seconds=12)), headers=h)
    assert big.status_code == 413
    assert "GTV_EXPORT_MAX_BYTES" in big.json()["detail"]


def test_join_stops_at_its_size_bound(api: Api, source: Path, tmp_path: Path) -> None:
    cuts = _cut(source, api, 4, every_s=5)
    segs = [Segment(f"s{i}", c.started_at, c.key) for i, c in enumerate(cuts)]
    with pytest.raises(ExportTooLarge):
        join_segments(
            api.store.get, segs, T0, T0 + timedelta(seconds=SECONDS), tmp_path / "x.mp4",
            max_bytes=20_000,
        )  # fmt: skip
