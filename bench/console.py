"""The operator console's bars, measured in Debian's Chromium against a real ``gtvision serve``.

Sets up what the tests use (a fresh PostgreSQL database, a Redis prefix, moto's S3, the
server of ``tests/web/console_harness.py``), then prints:

* first load of ``/`` in a new browser context (no cache): ``loadEventEnd`` of the navigation
  timing, median and worst of N (bar ≤ 1000 ms); the same for a logged-in tab until the alert
  queue shows its totals (a new tab resuming its session through the refresh cookie);
* alert latency: an alert written by the sinks' EventWriter → its row in the queue (bar ≤ 2 s);
* a feed of 500 events in one minute (250 passes + 250 alerts at the real rate): rows kept
  (bar ≤ 200), the longest main-thread task and the worst lateness of a 50 ms timer;
* the built JavaScript, gzipped (bar ≤ 250 kB).

Absolute times depend on the machine's load: the load average is printed beside them.

    .venv/bin/python bench/console.py [--runs 10] [--feed-seconds 60]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' harness

from gtvision.web.auth import Role
from tests.conftest import (
    PG_ADMIN,
    REDIS_BASE,
    RedisTarget,
    S3Target,
    create_database,
    drop_database,
    free_port,
)
from tests.web.console_harness import BUILT, Browser, start_console


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--feed-seconds", type=float, default=60.0)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    from minio import Minio
    from moto.server import ThreadedMotoServer

    db = f"gtv_bench_console_{uuid.uuid4().hex[:8]}"
    dsn = create_database(PG_ADMIN, db)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    s3 = S3Target(f"127.0.0.1:{port}", "testing", "testing", "gtv-bench")
    Minio(s3.endpoint, access_key="testing", secret_key="testing", secure=False).make_bucket(
        s3.bucket
    )
    redis_target = RedisTarget(REDIS_BASE, f"gtvbench:{uuid.uuid4().hex[:6]}:")
    failed: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gtv-bench-console-") as tmp:
            servers = start_console(dsn, redis_target, s3, Path(tmp))
            console = next(servers)
            with sync_playwright() as pw:
                browser = Browser(pw, console.base)
                print(f"load average before: {_load()}")
                loads = []
                for _ in range(args.runs):
                    page = browser.page()
                    page.goto(console.base + "/")
                    page.wait_for_selector("#login button[type=submit]")
                    loads.append(page.evaluate(
                        "performance.getEntriesByType('navigation')[0].loadEventEnd"
                    ))  # fmt: skip
                    page.context.close()
                page = browser.page()
                browser.login(page, console.user(Role.OPERATOR))
                ready = []
                for _ in range(args.runs):
                    tab = page.context.new_page()
                    tab.goto(console.base + "/#/alerts")
                    tab.wait_for_selector("[data-testid=unacked-count]:has-text('reconhecido')")
                    ready.append(tab.evaluate("performance.now()"))
                    tab.close()
                page.wait_for_selector("[data-testid=conn]:has-text('ao vivo')")
                latency = []
                for i in range(args.runs):
                    began = time.monotonic()
                    _, alert = console.pass_and_alert(f"BEN{i:04d}", clip=False)
                    assert alert is not None
                    page.wait_for_selector(f"[data-event='{alert.id}']", timeout=10_000)
                    latency.append((time.monotonic() - began) * 1000)
                page.evaluate(
                    "window.__long = 0; window.__lag = 0;"
                    "new PerformanceObserver(l => l.getEntries().forEach("
                    " e => { window.__long = Math.max(window.__long, e.duration); }))"
                    ".observe({type: 'longtask'});"
                    "let last = performance.now(); setInterval(() => { const now ="
                    " performance.now(); window.__lag = Math.max(window.__lag, now - last - 50);"
                    " last = now; }, 50);"
                )
                base = datetime.now(UTC)
                began = time.monotonic()
                step = args.feed_seconds / 250
                for i in range(250):
                    console.pass_and_alert(
                        f"F{i:06d}", when=base + timedelta(seconds=i), clip=False, crop=False
                    )
                    time.sleep(max(0.0, began + (i + 1) * step - time.monotonic()))
                time.sleep(2)
                rows = page.locator("[data-testid=alert-row]").count()
                longest, lag = page.evaluate("[window.__long, window.__lag]")
                browser.close()
            next(servers, None)
    finally:
        moto.stop()
        drop_database(PG_ADMIN, db)
    js = sum(len(gzip.compress(p.read_bytes(), 9)) for p in (BUILT / "assets").glob("*.js"))

    def bar(name: str, value: float, limit: float, unit: str) -> None:
        ok = value <= limit
        if not ok:
            failed.append(name)
        verdict = "met" if ok else "NOT MET"
        print(f"{name:<44} {value:>9.1f} {unit:<3} bar <= {limit:g} {unit}  {verdict}")

    print(f"load average after: {_load()}")
    print(f"{'measure':<44} {'value':>9}")
    bar("first load, median (loadEventEnd)", statistics.median(loads), 1000, "ms")
    bar("first load, worst", max(loads), 1000, "ms")
    bar("logged-in tab ready, median", statistics.median(ready), 1000, "ms")
    bar("alert written -> row shown, median", statistics.median(latency), 2000, "ms")
    bar("alert written -> row shown, worst", max(latency), 2000, "ms")
    bar(f"rows after 500 events in {args.feed_seconds:g} s", rows, 200, "")
    bar("longest main-thread task during the feed", longest, 200, "ms")
    bar("worst 50 ms timer lateness during the feed", lag, 250, "ms")
    bar("built JavaScript, gzipped", js / 1000, 250, "kB")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
