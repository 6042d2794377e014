"""Camera directory from the real ``cameras`` table."""

from __future__ import annotations

import json

import psycopg
import pytest

from gtvision.sources.cameras import DbCameras, env_cameras, find_camera


def test_enabled_cameras_with_masks_and_motion_settings(fresh_pg_dsn: str) -> None:
    mask = [[0, 0], [0.5, 0], [0.5, 0.5]]
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        city = conn.execute("INSERT INTO cities (name) VALUES ('x') RETURNING id").fetchone()
        assert city is not None
        rows = [
            ("gate", "rtsp://10.0.0.1/a", True, True, '{"threshold": 40}', json.dumps([mask])),
            ("off", "rtsp://10.0.0.2/a", False, True, "{}", "[]"),
            ("nomotion", "rtsp://10.0.0.3/a", True, False, "{}", "[]"),
            ("broken", "rtsp://10.0.0.4/a", True, True, '{"threshold": "high"}', "[]"),
        ]
        for name, url, enabled, motion, settings, masks in rows:
            conn.execute(
                "INSERT INTO cameras (city_id, name, stream_url, enabled, motion_enabled, "
                "motion_settings, masks, analysis_fps, keyframes_only) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 2, true)",
                (city[0], name, url, enabled, motion, settings, masks),
            )
    extra = env_cameras(["rtsp://127.0.0.1:8554/x"]).specs
    specs = {s.name: s for s in DbCameras(fresh_pg_dsn, extra).cameras()}
    assert set(specs) == {"gate", "nomotion", "broken", "env-1"}
    gate = specs["gate"]
    assert gate.motion.threshold == 40
    assert gate.motion.masks == ((((0.0, 0.0), (0.5, 0.0), (0.5, 0.5))),)
    assert (gate.analysis_fps, gate.keyframes_only, gate.city_id) == (2.0, True, city[0])
    assert not specs["nomotion"].motion.enabled
    assert specs["broken"].motion.threshold == 25  # invalid JSON settings fall back to defaults
    assert specs["env-1"].camera_id == 1_000_001
    assert find_camera(fresh_pg_dsn, "gate").camera_id == gate.camera_id
    with pytest.raises(LookupError, match="no camera named 'nope'"):
        find_camera(fresh_pg_dsn, "nope")
