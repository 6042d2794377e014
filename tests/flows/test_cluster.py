"""``gtvision run`` as a Bytewax cluster of two processes, on real cameras, Postgres and S3.

The LPR flow over two RTSP cameras showing the synthetic street (two cars per 15 s loop) in a
2-process cluster on this shared 2-core machine, so the readers drop frames under load:

* each camera is read by exactly one process;
* exactly one ``lpr.detected`` per car pass (no pass split by dropped frames);
* every ``lpr.detected`` has a playable clip, whichever process stored it (a camera's events
  are often stored by the other process: keyed steps run where the camera's key lives);
* SIGTERM to both processes: exit 0 within 10 s, no Rust panic, the passes open at the stop are
  emitted and get clips, the open recording segments are finished and uploaded.
"""

from __future__ import annotations

import io
import itertools
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import psycopg
import pytest
from rapidfuzz.distance import Levenshtein

from gtvision.sinks.objects import S3ObjectStore
from gtvision.sources.synthetic import write_video

from ..conftest import S3Target
from .cluster_util import LocalCluster, clean_env


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 s of the synthetic street: BRA2E19 at 2.0-6.5 s, KLM3907 at 10.0-14.5 s."""
    return write_video(tmp_path_factory.mktemp("street") / "street15.mp4", duration_s=15.0)


def _playable(data: bytes) -> tuple[int, bool]:
    with av.open(io.BytesIO(data), mode="r") as clip:
        frames = list(clip.decode(clip.streams.video[0]))
    return len(frames), bool(frames and frames[0].key_frame)


def _passes(dsn: str) -> list[tuple[int, str, float, str | None]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT camera_id, plate, extract(epoch FROM ts), clip_key FROM events "
            "WHERE type = 'lpr.detected' ORDER BY camera_id, ts"
        ).fetchall()
    return [(int(c), str(p), float(t), k) for c, p, t, k in rows]


def _pass_detail(dsn: str) -> list[tuple[int, str, str, str, int]]:
    """camera, plate, first and last seen (s.ms), reads: what tells a split pass's cause."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT camera_id, plate, to_char(ts, 'SS.MS'), "
            "to_char((payload->>'last_seen')::timestamptz, 'SS.MS'), (payload->>'reads')::int "
            "FROM events WHERE type = 'lpr.detected' ORDER BY camera_id, ts"
        ).fetchall()
    return [(int(c), str(p), str(f), str(la), int(n)) for c, p, f, la, n in rows]


CARS = ("BRA2E19", "KLM3907")


def _car_of(plate: str) -> str | None:
    """The car whose plate is within one edit of ``plate`` (``None``: no car, or both)."""
    near = [c for c in CARS if Levenshtein.distance(plate, c) <= 1]
    return near[0] if len(near) == 1 else None


def test_lpr_cluster_reads_each_camera_once_clips_every_pass_and_stops_cleanly(
    fresh_pg_dsn: str,
    s3_target: S3Target,
    publish_file: Callable[..., Any],
    street: Path,
    tmp_path: Path,
) -> None:
    pubs = [publish_file(street, "cluster-a"), publish_file(street, "cluster-b")]
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        city = conn.execute("INSERT INTO cities (name) VALUES ('c') RETURNING id").fetchone()
        assert city is not None
        cams = [
            int(
                conn.execute(
                    "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, %s, %s) "
                    "RETURNING id",
                    (city[0], pub.name, pub.url),
                ).fetchone()[0]  # type: ignore[index]
            )
            for pub in pubs
        ]
    s3 = {
        "GTV_S3_ENDPOINT": s3_target.endpoint, "GTV_S3_ACCESS_KEY": s3_target.access_key,
        "GTV_S3_SECRET_KEY": s3_target.secret_key, "GTV_S3_BUCKET": s3_target.bucket,
    }  # fmt: skip
    cluster = LocalCluster(
        ["run", "lpr", "--poll-s", "1"],
        2,
        tmp_path / "logs",
        env={
            i: clean_env(
                GTV_DATABASE_URL=fresh_pg_dsn,
                GTV_CAMERA_ALLOW_CIDRS="127.0.0.1/32",  # the test cameras are on loopback
                GTV_RECORD_SEGMENT_S="4",
                GTV_DATA_DIR=str(tmp_path / f"host{i}"),
                **s3,
            )
            for i in range(2)
        },
    )
    cluster.start()
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and all(cluster.alive()):
            per_camera = [sum(1 for p in _passes(fresh_pg_dsn) if p[0] == c) for c in cams]
            if min(per_camera) >= 2:
                break
            time.sleep(1)
        logs = [cluster.log(i) for i in range(2)]
        assert all(cluster.alive()), logs
        assert min(per_camera) >= 2, (per_camera, logs)
        codes, took = cluster.signal_all(signal.SIGTERM)
    finally:
        cluster.stop()
    logs = [cluster.log(i) for i in range(2)]
    assert codes == [0, 0], logs
    assert took < 10, f"the cluster took {took:.1f} s to stop"
    assert not any("panicked" in log or "Traceback" in log for log in logs), logs

    for cam, pub in zip(cams, pubs, strict=True):  # each camera read by exactly one process
        started = [log.count(f"camera {cam} ({pub.name}) started") for log in logs]
        assert sorted(started) == [0, 1], (cam, started)

    passes = _passes(fresh_pg_dsn)
    # Each pass is one of the two cars. Reading accuracy is the LPR tests' business (a loaded
    # live reader may misread one character, e.g. BRA2F19), so a pass is attributed to the car
    # whose plate is within one edit of its reading; anything further is a wrong pass.
    car = {p: _car_of(p) for _, p, _, _ in passes}
    assert None not in car.values(), passes
    for cam in cams:  # one pass per car: the same car comes back once per 15 s loop
        seen = [(car[plate], t) for c, plate, t, _ in passes if c == cam]
        for (p1, t1), (p2, t2) in itertools.combinations(seen, 2):
            assert p1 != p2 or abs(t2 - t1) >= 10.0, (cam, _pass_detail(fresh_pg_dsn), logs)

    store = S3ObjectStore(
        s3_target.endpoint, s3_target.access_key, s3_target.secret_key, s3_target.bucket
    )
    for cam, plate, _, key in passes:  # every pass, including those flushed by the stop
        assert key is not None, f"camera {cam} pass {plate} has no clip: {passes}"
        frames, first_key = _playable(store.get(key))
        assert frames >= 10, (key, frames)
        assert first_key, key

    with psycopg.connect(fresh_pg_dsn) as conn:
        rows = conn.execute("SELECT camera_id, object_key FROM recordings").fetchall()
    assert {int(c) for c, _ in rows} == set(cams)
    assert all(key is not None for _, key in rows), rows  # the open segments were finished


def test_cameras_added_and_removed_reach_a_running_cluster(
    fresh_pg_dsn: str, rtsp_publisher: Callable[..., Any], tmp_path: Path
) -> None:
    """Cameras added or removed in the table (what the API writes) start/stop on exactly one
    process of a running 2-process motion cluster within seconds, without a restart."""
    pubs = [rtsp_publisher(f"rebalance-{k}", size="320x240") for k in range(3)]
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        row = conn.execute("INSERT INTO cities (name) VALUES ('c') RETURNING id").fetchone()
        assert row is not None
        city = row[0]

    def add(pub: Any) -> int:
        with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
            new = conn.execute(
                "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, %s, %s) RETURNING id",
                (city, pub.name, pub.url),
            ).fetchone()
        assert new is not None
        return int(new[0])

    outs = [tmp_path / f"p{i}.jsonl" for i in range(2)]

    def events() -> list[tuple[int, int, str, str]]:
        found = []
        for i, out in enumerate(outs):
            for line in out.read_text().splitlines() if out.exists() else []:
                e = json.loads(line)
                found.append((i, e["camera_id"], e["type"], e.get("reason", "")))
        return found

    def wait_for(what: Callable[[list[tuple[int, int, str, str]]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not what(events()):
            time.sleep(0.2)
        assert what(events()), (events(), [cluster.log(i)[-2000:] for i in range(2)])

    first = add(pubs[0])
    cluster = LocalCluster(
        ["run", "motion", "--poll-s", "1"],
        2,
        tmp_path / "logs",
        args={i: ["--jsonl", str(outs[i])] for i in range(2)},
        env={
            i: clean_env(GTV_DATABASE_URL=fresh_pg_dsn, GTV_CAMERA_ALLOW_CIDRS="127.0.0.1/32")
            for i in range(2)
        },
    )
    cluster.start()
    try:
        wait_for(lambda ev: any(c == first and t == "camera.online" for _, c, t, _ in ev), 40)
        added = [add(pub) for pub in pubs[1:]]
        t0 = time.monotonic()
        wait_for(lambda ev: {c for _, c, t, _ in ev if t == "camera.online"} >= set(added), 15)
        took = time.monotonic() - t0
        with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM cameras WHERE id = %s", (added[0],))
        wait_for(lambda ev: (added[0], "camera.offline", "removed") in {e[1:] for e in ev}, 10)
        codes, stop_s = cluster.signal_all(signal.SIGTERM)
    finally:
        cluster.stop()
    assert took < 8, f"added cameras came online after {took:.1f} s"
    assert codes == [0, 0], [cluster.log(i)[-2000:] for i in range(2)]
    assert stop_s < 10
    online = [(i, c) for i, c, t, _ in events() if t == "camera.online"]
    for cam in (first, *added):  # each camera read by exactly one process, once
        assert [c for _, c in online].count(cam) == 1, online
    assert {i for i, _ in online} == {0, 1}  # both processes read cameras
