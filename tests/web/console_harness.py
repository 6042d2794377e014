"""What the console's browser tests run on: a real ``gtvision serve`` on real services.

* The server is ``tests/web/console_server.py`` (``gtvision serve`` with ICE on loopback) on a
  free port, against the session's PostgreSQL database, Redis (own key prefix) and moto's S3.
* Events are written by the sinks' :class:`EventWriter` (PostgreSQL + outbox, Redis feed, crops
  in S3), as the flows write them; clips and recordings are real H.264 MP4 files in S3.
* Every page the tests open records console errors, uncaught exceptions and CSP violations;
  :meth:`Browser.check_clean` fails a test that saw any.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from gtvision.events import Alert, HotlistMatch, PlateCandidate, PlatePass
from gtvision.redis_keys import city_tag, rkey
from gtvision.sinks.feed import RedisFeed
from gtvision.sinks.objects import S3ObjectStore, object_key
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.sources.synthetic import render_plate
from gtvision.web.auth import Role
from tests.conftest import RedisTarget, S3Target, free_port
from tests.core.test_demo import CHROMIUM, CHROMIUM_ARGS
from tests.web.conftest import PASSWORD, SECRET, World, seed

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "web" / "static" / "console"
LAUNCHER = Path(__file__).with_name("console_server.py")
BROWSER_ARGS = [
    *CHROMIUM_ARGS,
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
# recorded in every page before its own scripts run (CDP, so the page's CSP does not apply)
WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def make_mp4(path: Path, seconds: int = 6) -> Path:
    """A small H.264 MP4 (what clips and recordings are), made with ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=size=640x360:rate=15", "-t", str(seconds), "-c:v", "libx264", "-preset",
         "ultrafast", "-pix_fmt", "yuv420p", "-g", "15", "-movflags", "+faststart", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def crop_jpeg(plate: str, style: str = "old") -> bytes:
    """A plate crop as the LPR flow stores it (JPEG of the rendered plate)."""
    img = render_plate(plate, style, 240)  # type: ignore[arg-type]
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


@dataclass
class Console:
    """The running server and the means to put data behind it."""

    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    world: World
    dsn: str
    writer: EventWriter
    store: S3ObjectStore
    clip_mp4: Path
    redis_url: str
    prefix: str

    def user(self, role: Role, city: str = "a") -> str:
        """Username of the seeded user with ``role`` in ``city``."""
        return self.world.users[(city, role)].username

    def city(self, name: str = "a") -> int:
        return self.world.cities[name]

    def camera(self, name: str = "a") -> int:
        return self.world.cameras[name]

    def put_clip(self, key: str) -> str:
        self.store.put(key, self.clip_mp4.read_bytes(), "video/mp4")
        return key

    def pass_and_alert(
        self,
        plate: str,
        *,
        when: datetime | None = None,
        alert: bool = True,
        clip: bool = True,
        crop: bool = True,
    ) -> tuple[PlatePass, Alert | None]:
        """A plate pass (crop, clip, two candidates) and its hotlist alert, written now."""
        when = when or datetime.now(UTC)
        city, cam = self.city(), self.camera()
        clip_key = f"{city}/{cam}/clips/{uuid.uuid4().hex}.mp4" if clip else None
        if clip_key:
            self.put_clip(clip_key)
        passed = PlatePass(
            city_id=city, camera_id=cam, ts=when, plate=plate, confidence=0.94,
            first_seen=when, last_seen=when + timedelta(seconds=2), reads=6,
            candidates=(PlateCandidate(text=plate, confidence=0.94),
                        PlateCandidate(text=plate[:-1] + "8", confidence=0.04)),
            crop_jpeg=crop_jpeg(plate) if crop else None, clip_key=clip_key,
        )  # fmt: skip
        events: list[Any] = [passed]
        hit = None
        if alert:
            match = HotlistMatch(
                entry_id=self.world.hotlists["a"], pattern=plate, kind="exact", priority=5,
                reason="veículo roubado",
            )  # fmt: skip
            crop_key = object_key(passed, "jpg") if crop else None  # as operators.hotlist does
            hit = Alert(city_id=city, camera_id=cam, ts=when, pass_id=passed.id, plate=plate,
                        match=match, crop_key=crop_key)  # fmt: skip
            events.append(hit)
        self.writer.write(events)
        return passed, hit

    def add_camera(self, name: str, url: str) -> int:
        """A camera of city a (inserted past the API's SSRF guard: loopback RTSP)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute(
                "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, %s, %s) RETURNING id",
                (self.city(), name, url),
            ).fetchone()
        assert row is not None
        # the API caches camera lists (Redis, and 1 s in the server process): drop them
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.delete(
                *(rkey(self.prefix, city_tag(c), "cache", "cameras") for c in (self.city(), None))
            )
        finally:
            client.close()
        time.sleep(1.1)
        return int(row[0])

    def add_recording(self, camera: int, start: datetime, seconds: int) -> str:
        rec = f"rec-console-{uuid.uuid4().hex[:8]}"
        key = self.put_clip(f"{self.city()}/{camera}/rec/{start:%Y/%m/%d}/{rec}.mp4")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO recordings (id, city_id, camera_id, started_at, ended_at, object_key,"
                " bytes) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (rec, self.city(), camera, start, start + timedelta(seconds=seconds), key,
                 self.clip_mp4.stat().st_size),
            )  # fmt: skip
        return rec


def start_console(
    pg_dsn: str, redis_target: RedisTarget, s3: S3Target, tmp: Path
) -> Iterator[Console]:
    """Seed the world, start the server, yield it; stop everything afterwards."""
    prefix = f"{redis_target.prefix}console{uuid.uuid4().hex[:6]}:"
    store = S3ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket, secure=False)
    feed = RedisFeed(redis_target.url, prefix)
    pool = open_pool(pg_dsn)
    writer = EventWriter(pool, store, feed)
    world = seed(pg_dsn, writer)
    for name in ("a", "b"):  # the seeded passes' crops
        cid, cam = world.cities[name], world.cameras[name]
        store.put(f"{cid}/{cam}/x/{name}.jpg", crop_jpeg(world.plates[name][:7]), "image/jpeg")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(
        {
            "PYTHONMALLOC": "malloc",
            "GTV_DATABASE_URL": pg_dsn,
            "GTV_REDIS_URL": redis_target.url,
            "GTV_REDIS_PREFIX": prefix,
            "GTV_JWT_SECRET": SECRET,
            "GTV_DATA_DIR": str(tmp / "data"),
            "GTV_S3_ENDPOINT": s3.endpoint,
            "GTV_S3_ACCESS_KEY": s3.access_key,
            "GTV_S3_SECRET_KEY": s3.secret_key,
            "GTV_S3_BUCKET": s3.bucket,
            "GTV_PRESIGN_TTL_S": "900",
            "GTV_SSE_PING_S": "2",
            "GTV_LOGIN_RATE_LIMIT_PER_MIN": "0",
            "GTV_LOGIN_IP_RATE_LIMIT_PER_MIN": "0",
            "GTV_LOGIN_USER_FAILURES_PER_HOUR": "0",
            "GTV_RATE_LIMIT_PER_MIN": "0",
            # the test cameras are RTSP servers on loopback: the relay's guard must allow them
            "GTV_CAMERA_ALLOW_CIDRS": "10.0.0.0/8,192.168.0.0/16,127.0.0.1/32",
        }
    )
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    clip = make_mp4(tmp / "clip.mp4")
    console = Console(base, proc, log, world, pg_dsn, writer, store, clip, redis_target.url, prefix)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gtvision serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield console
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        pool.close()
        feed.close()


class Browser:
    """One Chromium for the module; pages that record what went wrong in them."""

    def __init__(self, pw: Any, base: str) -> None:
        assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        self.base = base
        self.problems: list[str] = []
        self.pages: list[Any] = []

    def context(self, **kw: Any) -> Any:
        ctx = self.browser.new_context(locale="pt-BR", **kw)
        ctx.add_init_script(WATCH_CSP)
        return ctx

    def page(self, ctx: Any = None, **kw: Any) -> Any:
        page = (ctx or self.context(**kw)).new_page()
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.pages.append(page)
        return page

    def _on_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.problems.append(f"console: {msg.text}")

    def login(self, page: Any, username: str, path: str = "/alerts") -> None:
        page.goto(f"{self.base}/#{path}")
        page.fill("#login-user", username)
        page.fill("#login-password", PASSWORD)
        page.click("#login button[type=submit]")
        page.wait_for_selector("[data-testid=logout]", timeout=10_000)

    def check_clean(self) -> None:
        """No console error, uncaught exception or CSP violation in any page so far."""
        for page in self.pages:
            if not page.is_closed():
                for v in page.evaluate("window.__csp || []"):
                    self.problems.append(f"csp: {v}")
        problems, self.problems = self.problems, []
        assert not problems, problems

    def close(self) -> None:
        self.browser.close()
