"""``GET /recordings``: city scoping, filters, pages, presigned URLs that serve the video, audit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from gtvision.web.auth import Role
from tests.web.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _add(api: Api, city: str, start: datetime, minutes: int, *, done: bool = True) -> str:
    """A recording row of ``city``'s camera (``done``: finished, object uploaded)."""
    w = api.world
    rec_id = f"rec-t-{uuid.uuid4().hex[:10]}"
    cid, cam = w.cities[city], w.cameras[city]
    key = f"{cid}/{cam}/rec/{start:%Y/%m/%d}/{rec_id}.mp4" if done else None
    if key:
        api.store.put(key, b"mp4-" + rec_id.encode(), "video/mp4")
    with psycopg.connect(api.settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO recordings (id, city_id, camera_id, started_at, ended_at, object_key, "
            "bytes) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (rec_id, cid, cam, start, start + timedelta(minutes=minutes) if done else None,
             key, 12 if done else None),
        )  # fmt: skip
    return rec_id


async def test_lists_own_city_with_urls_that_serve_the_video(api: Api) -> None:
    base = datetime(2031, 5, 6, 7, 0, tzinfo=UTC)  # after every seeded row: newest first
    old = _add(api, "a", base, 1)
    new = _add(api, "a", base + timedelta(minutes=1), 1)
    open_ = _add(api, "a", base + timedelta(minutes=2), 0, done=False)
    h = api.auth("a", Role.VIEWER)
    r = await api.client.get("/recordings", params={"limit": 2}, headers=h)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["id"] for i in page["items"]] == [open_, new]
    assert page["items"][0]["url"] is None  # still being written
    assert page["items"][0]["ended_at"] is None
    video = await api.client.get(page["items"][1]["url"])
    assert video.status_code == 200
    assert video.content == b"mp4-" + new.encode()
    r2 = await api.client.get(
        "/recordings", params={"limit": 2, "cursor": page["next_cursor"]}, headers=h
    )
    assert [i["id"] for i in r2.json()["items"]][:1] == [old]
    everything = (await api.client.get("/recordings", params={"limit": 500}, headers=h)).json()
    assert {i["city_id"] for i in everything["items"]} == {api.world.cities["a"]}
    with psycopg.connect(api.settings.database_url) as conn:
        row = conn.execute(
            "SELECT city_id, detail->>'rows' FROM audit_log WHERE action = 'recordings.list' "
            "AND username = %s ORDER BY id DESC LIMIT 1",
            (api.world.users[("a", Role.VIEWER)].username,),
        ).fetchone()
    assert row is not None
    assert row[0] == api.world.cities["a"]


async def test_time_window_and_camera_filters(api: Api) -> None:
    base = datetime(2030, 1, 2, 3, 0, tzinfo=UTC)  # before the open one above
    first = _add(api, "a", base, 10)  # 03:00-03:10
    second = _add(api, "a", base + timedelta(minutes=10), 10)  # 03:10-03:20
    h = api.auth("a", Role.OPERATOR)

    async def ids(**params: str | int) -> list[str]:
        r = await api.client.get("/recordings", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    window = {"since": (base + timedelta(minutes=5)).isoformat(),
              "until": (base + timedelta(minutes=12)).isoformat()}  # fmt: skip
    assert await ids(**window) == [second, first]  # both overlap 03:05-03:12
    later = {"since": (base + timedelta(minutes=15)).isoformat(),
             "until": (base + timedelta(minutes=16)).isoformat()}  # fmt: skip
    assert await ids(**later) == [second]
    assert await ids(**window, camera_id=api.world.cameras["a"]) == [second, first]
    bad = await api.client.get("/recordings", params={"cursor": "nope"}, headers=h)
    assert bad.status_code == 422


async def test_admin_reads_any_city_and_a_city_user_never_another(api: Api) -> None:
    b = api.world.cities["b"]
    admin = await api.client.get(
        "/recordings", params={"city_id": b}, headers=api.auth(None, Role.ADMIN)
    )
    assert f"rec-b-{api.world.tag}" in admin.text
    other = await api.client.get(
        "/recordings", params={"city_id": b}, headers=api.auth("a", Role.VIEWER)
    )
    assert f"rec-b-{api.world.tag}" not in other.text
