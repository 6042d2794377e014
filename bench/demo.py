"""Timings of ``gtvision demo`` on a fresh data directory, then on the same one again.

Prints: first start (process start → "ready"), time to the first ``lpr.detected`` on the SSE
feed, time to the hotlist ``alert.triggered``, Ctrl-C → exit, and the second start on the reused
data directory. The sample video is generated on the first start (part of its figure).

    .venv/bin/python bench/demo.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
from demo_process import sse_events, start_demo  # type: ignore[import-not-found]

from gtvision.demo import CITY_NAME
from gtvision.sources.synthetic import HOTLIST_PLATE


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gtv-bench-demo-") as tmp:
        data = Path(tmp) / "data"
        demo = start_demo(data)
        demo.wait_for_line(r"^ready in", 180)
        first_ready = time.monotonic() - demo.started
        first_pass = first_alert = float("nan")
        with httpx.Client(base_url=demo.base_url, timeout=10) as client:
            token = demo.login(client)
            cities = client.get("/cities", headers={"Authorization": f"Bearer {token}"}).json()
            items = cities if isinstance(cities, list) else cities.get("items", [])
            city = next(c["id"] for c in items if c["name"] == CITY_NAME)
            for kind, payload in sse_events(client, token, city, 120):
                now = time.monotonic() - demo.started
                if kind == "lpr.detected" and first_pass != first_pass:
                    first_pass = now
                if kind == "alert.triggered" and payload.get("plate") == HOTLIST_PLATE:
                    first_alert = now
                    break
        t0 = time.monotonic()
        code = demo.interrupt(15)
        stop_s = time.monotonic() - t0
        again = start_demo(data)
        again.wait_for_line(r"^ready in", 60)
        second_ready = time.monotonic() - again.started
        again.interrupt(15)
    print(f"first start (fresh data dir, incl. video + initdb): {first_ready:6.1f} s")
    print(f"first lpr.detected on SSE after process start:      {first_pass:6.1f} s")
    print(f"hotlist alert.triggered on SSE after process start: {first_alert:6.1f} s")
    print(f"Ctrl-C to exit (code {code}):                           {stop_s:6.1f} s")
    print(f"second start (reused data dir):                     {second_ready:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
