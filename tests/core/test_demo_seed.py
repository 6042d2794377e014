"""The demo's seed rows: created once, reused on later runs, password reset on request."""

from __future__ import annotations

import psycopg

from gtvision.demo import ADMIN_USER, CAMERA_NAME, CITY_NAME, HOTLIST_REASON, seed
from gtvision.web.auth import verify_password


def _hash(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT password_hash FROM users WHERE username = %s", (ADMIN_USER,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_seed_is_idempotent_and_prints_the_password_once(fresh_pg_dsn: str) -> None:
    first = seed(fresh_pg_dsn, "GTV5K42")
    assert first.admin_password
    assert verify_password(_hash(fresh_pg_dsn), first.admin_password)
    again = seed(fresh_pg_dsn, "GTV5K42")
    assert (again.city_id, again.camera_id) == (first.city_id, first.camera_id)
    assert again.admin_password is None, "an existing admin keeps its password, unprinted"
    assert verify_password(_hash(fresh_pg_dsn), first.admin_password)
    with psycopg.connect(fresh_pg_dsn) as conn:
        rows = conn.execute(
            "SELECT city_id, pattern, kind FROM hotlists WHERE pattern = 'GTV5K42'"
        ).fetchall()
    assert rows == [(first.city_id, "GTV5K42", "exact")]
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        enabled = conn.execute("SELECT enabled FROM cameras WHERE id = %s", (first.camera_id,))
        assert enabled.fetchone() == (True,)  # watchable: the live relay plays the sample
        conn.execute("UPDATE cameras SET enabled = false WHERE id = %s", (first.camera_id,))
    seed(fresh_pg_dsn, "GTV5K42")
    with psycopg.connect(fresh_pg_dsn) as conn:
        again_on = conn.execute("SELECT enabled FROM cameras WHERE id = %s", (first.camera_id,))
        assert again_on.fetchone() == (True,)  # a demo from before this change gets it too


def test_reset_and_chosen_password(fresh_pg_dsn: str) -> None:
    seed(fresh_pg_dsn, "GTV5K42", password="first-password")
    assert verify_password(_hash(fresh_pg_dsn), "first-password")
    reset = seed(fresh_pg_dsn, "GTV5K42", reset_password=True)
    assert reset.admin_password
    assert reset.admin_password != "first-password"
    assert verify_password(_hash(fresh_pg_dsn), reset.admin_password)
    assert not verify_password(_hash(fresh_pg_dsn), "first-password")


def test_what_operators_see_is_portuguese_also_in_a_demo_from_before(fresh_pg_dsn: str) -> None:
    """A data directory seeded with the English names keeps its rows (same ids), renamed."""
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        (city,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO cities (name) VALUES ('Demo City') RETURNING id"
        ).fetchone()
        (cam,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO cameras (city_id, name, stream_url) VALUES "
            "(%s, 'Sample street', 'rtsp://sample.invalid/street') RETURNING id",
            (city,),
        ).fetchone()
        conn.execute(
            "INSERT INTO hotlists (city_id, pattern, kind, reason) VALUES "
            "(%s, 'GTV5K42', 'exact', 'Demo: vehicle reported stolen')",
            (city,),
        )
    got = seed(fresh_pg_dsn, "GTV5K42")
    assert (got.city_id, got.camera_id) == (city, cam)
    with psycopg.connect(fresh_pg_dsn) as conn:
        names = conn.execute(
            "SELECT c.name, m.name, h.reason FROM cities c JOIN cameras m ON m.city_id = c.id "
            "JOIN hotlists h ON h.city_id = c.id"
        ).fetchall()
    assert names == [(CITY_NAME, CAMERA_NAME, HOTLIST_REASON)]
    assert "roubo" in HOTLIST_REASON
