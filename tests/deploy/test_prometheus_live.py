"""Debian's Prometheus with the shipped config scrapes real gtvision processes (behind Debian's
HAProxy with deploy/haproxy.cfg); the camera-offline alert fires when the camera's RTSP
publisher stops.

The shipped ``prometheus.yml``/``alerts.yml`` are used as they are except for what a test
cannot keep: each job's DNS discovery becomes the loopback address of the process this test
started (every job of the file must have one), intervals are 1 s, no Alertmanager, and
CameraOffline waits 3 s instead of 1 min (the promtool unit tests cover the real minute).
"""

from __future__ import annotations

import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import RedisTarget, S3Target, free_port
from tests.deploy.conftest import DEPLOY, Exporter, Processes, http_get, wait_http
from tests.deploy.webtier import HAProxy, client_tls, self_signed

PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
GTV = [sys.executable, "-m", "gtvision.cli"]
CAMERA = "1000001"  # the first GTV_RTSP_URLS camera


def config_for_test(targets: dict[str, list[str]], out: Path, offline_for: str) -> Path:
    """The shipped files with test targets and intervals, written to ``out``."""
    config = yaml.safe_load(PROMETHEUS.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config.pop("alerting")
    left = dict(targets)
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": left.pop(job["job_name"])}]
    assert left == {}, f"jobs the shipped config does not scrape: {sorted(left)}"
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "CameraOffline":
                assert rule["for"] == "1m"
                rule["for"] = offline_for
    (out / "alerts.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    path = out / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _api(base: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    body = json.loads(http_get(f"{base}/api/v1/{path}{query}"))
    assert body["status"] == "success", body
    return body["data"]


def _until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what} not within {timeout}s (last: {last})")


def _value(base: str, query: str) -> dict[str, float]:
    """Instant query result as {label set as text: value}."""
    result = _api(base, "query", query=query)["result"]
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}


@pytest.mark.slow
def test_prometheus_scrapes_every_gtvision_process_and_alerts_on_an_offline_camera(
    fresh_pg_dsn: str,
    redis_target: RedisTarget,
    amqp_url: str,
    s3_target: S3Target,
    exporters: dict[str, Exporter],
    rtsp_publisher: Callable[..., Any],
    processes: Processes,
    tmp_path: Path,
) -> None:
    camera = rtsp_publisher("prom-cam", size="320x240", rate=10, gop=10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(
        {
            "GTV_DATABASE_URL": fresh_pg_dsn,
            "GTV_REDIS_URL": redis_target.url,
            "GTV_REDIS_PREFIX": redis_target.prefix + "prom:",
            "GTV_AMQP_URL": amqp_url,
            "GTV_S3_ENDPOINT": s3_target.endpoint,
            "GTV_S3_ACCESS_KEY": s3_target.access_key,
            "GTV_S3_SECRET_KEY": s3_target.secret_key,
            "GTV_S3_BUCKET": s3_target.bucket,
            "GTV_RTSP_URLS": camera.url,
            "GTV_DATA_DIR": str(tmp_path / "data"),
            "GTV_JWT_SECRET": "prometheus-test-" + "y" * 40,
        }
    )
    env.pop("PYTHONMALLOC", None)
    names = ("web", "flow", "relay", "retention", "prom", "https", "lbstats")
    ports = {name: free_port() for name in names}
    commands = {
        "web": [*GTV, "serve", "--port", str(ports["web"]), "--workers", "2"],
        "flow": [*GTV, "run", "motion", "--metrics-port", str(ports["flow"])],
        "relay": [*GTV, "relay", "--metrics-port", str(ports["relay"])],
        "retention": [
            *GTV, "retention", "run", "--every", "3600", "--metrics-port", str(ports["retention"]),
        ],
    }  # fmt: skip
    started = {}
    for name, cmd in commands.items():
        log = processes.start(name, cmd, env)
        started[name] = (processes.last(), log)
    for name, (proc, log) in started.items():
        wait_http(f"http://127.0.0.1:{ports[name]}/metrics", proc, log, timeout=60)
    pem, ca = self_signed(tmp_path)
    balancer = HAProxy(
        ports["https"],
        {
            "GTV_HAPROXY_HTTPS_BIND": f"127.0.0.1:{ports['https']}",
            "GTV_HAPROXY_CERT": str(pem),
            "GTV_HAPROXY_WEB1": f"127.0.0.1:{ports['web']}",
            "GTV_HAPROXY_STATS_BIND": f"127.0.0.1:{ports['lbstats']}",
        },
        tmp_path / "haproxy.log",
    )
    balancer.start()
    try:
        _through_the_balancer(balancer.url, client_tls(ca), ports["web"])
        _scrape_and_alert(ports, exporters, tmp_path, processes, camera)
    finally:
        balancer.stop()


def _through_the_balancer(base: str, tls: ssl.SSLContext, web_port: int) -> None:
    """Requests through HAProxy reach both uvicorn workers; /metrics of the instance sums them."""
    n = 30
    for _ in range(n):  # a new TLS connection each time: both workers get some
        with urllib.request.urlopen(f"{base}/healthz", context=tls, timeout=5) as resp:
            assert resp.status == 200
            rid = resp.headers["X-Request-ID"]
    assert not re.fullmatch(r"[0-9a-f]{32}", rid), "HAProxy's request id was not kept"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{base}/metrics", context=tls, timeout=5)
    assert denied.value.code == 404
    text = http_get(f"http://127.0.0.1:{web_port}/metrics")
    counts = [
        float(m.group(1))
        for m in re.finditer(
            r'^gtvision_http_request_duration_seconds_count\{method="GET",route="/healthz",'
            r'status="200"\} (\S+)$',
            text,
            re.M,
        )
    ]
    assert counts == [float(n)], "the two workers' counts are not summed into one series"


def _scrape_and_alert(
    ports: dict[str, int],
    exporters: dict[str, Exporter],
    tmp_path: Path,
    processes: Processes,
    camera: Any,
) -> None:

    def loop(name: str) -> list[str]:
        return [f"127.0.0.1:{ports[name]}"]

    config = config_for_test(
        {
            "gtvision-web": loop("web"),
            "gtvision-flow": loop("flow"),
            "gtvision-relay": loop("relay"),
            "gtvision-retention": loop("retention"),
            "haproxy": loop("lbstats"),
            "node": [exporters["node"].address],
            "postgres": [exporters["postgres"].address],
            "prometheus": loop("prom"),
        },
        tmp_path,
        offline_for="3s",
    )
    prom_log = processes.start(
        "prometheus",
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prom']}",
            "--log.level=warn",
        ],
    )
    base = f"http://127.0.0.1:{ports['prom']}"
    wait_http(f"{base}/-/ready", processes.last(), prom_log)

    def all_up() -> dict[str, str] | None:
        targets = _api(base, "targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if len(health) == 8 and set(health.values()) == {"up"} else None

    t0 = time.monotonic()
    _until("every target up", all_up, 40)
    print(f"all 8 targets up {time.monotonic() - t0:.1f}s after Prometheus was ready")

    online = f'gtvision_camera_online{{camera="{CAMERA}"}}'
    _until("the camera online in Prometheus", lambda: 1.0 in _value(base, online).values(), 40)
    builds = {json.loads(k)["command"] for k in _value(base, "gtvision_build_info")}
    assert builds == {"serve", "run", "relay", "retention"}
    for query in (
        f'gtvision_camera_frames_read_total{{camera="{CAMERA}"}} > 0',
        f'gtvision_camera_frames_analysed_total{{camera="{CAMERA}"}} > 0',
        'gtvision_events_total{type="camera.online"} > 0',
        "gtvision_outbox_backlog >= 0",
        "gtvision_retention_last_success_timestamp_seconds > 0",
        'gtvision_http_request_duration_seconds_count{route="/metrics"} > 0',
        "pg_up == 1",
        "node_memory_MemTotal_bytes > 0",
    ):
        assert _until(query, lambda q=query: _value(base, q), 20), query  # type: ignore[misc]

    def offline_alert() -> list[dict[str, Any]]:
        alerts = _api(base, "alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "CameraOffline" and a["state"] == "firing"
        ]

    assert offline_alert() == []
    camera.kill()
    stopped = time.monotonic()
    firing = _until("CameraOffline firing", offline_alert, 60)
    print(f"CameraOffline firing {time.monotonic() - stopped:.1f}s after the publisher stopped")
    assert [a["labels"]["camera"] for a in firing] == [CAMERA]
    assert firing[0]["labels"]["job"] == "gtvision-flow"
    assert firing[0]["annotations"]["summary"] == f"Câmera {CAMERA} sem imagem há mais de 1 minuto"
