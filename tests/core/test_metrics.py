"""The metric definitions: documented, bounded labels, and summed over ``serve``'s workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gtvision import metrics
from tests.conftest import RedisTarget, free_port, interrupt

ROOT = Path(__file__).resolve().parents[2]
GTV = [sys.executable, "-m", "gtvision.cli"]
#: every label any gtvision metric may carry: ids and templates, never plates or raw paths
BOUNDED_LABELS = {
    "camera", "city", "route", "method", "status", "type", "outcome", "reason", "step", "kind",
    "version", "command",
}  # fmt: skip


def test_docs_list_exactly_the_metrics_of_the_code() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"<!-- metrics:begin -->\n(.*?)<!-- metrics:end -->", text, re.S)
    assert block, "docs/operations.md lost its <!-- metrics:begin/end --> markers"
    assert block.group(1) == metrics.markdown_table(), (
        "docs/operations.md is out of date: paste `.venv/bin/python -m gtvision.metrics` "
        "between the metrics markers"
    )


def test_labels_are_bounded_and_names_follow_the_conventions() -> None:
    seen: set[str] = set()
    for m in metrics.catalogue():
        assert m.name not in seen
        seen.add(m.name)
        assert m.name.startswith("gtvision_"), m.name
        assert set(m.labels) <= BOUNDED_LABELS, f"{m.name} has an unbounded label: {m.labels}"
        if m.kind == "counter":
            assert m.name.endswith("_total"), m.name
        if m.kind == "histogram":
            assert m.name.endswith("_seconds"), m.name
    assert len(seen) >= 20


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _start_serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*GTV, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
    )
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gtvision serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"gtvision serve --workers {workers} did not get ready on port {port}")


def test_serve_empties_the_multiprocess_dir_before_workers_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gtvision.commands.serve import MULTIPROC_ENV, metrics_dir

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert metrics_dir(8080, workers=1) is None
    assert MULTIPROC_ENV not in os.environ
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "keep.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    assert metrics_dir(8080, workers=1) == given  # set by the operator: used even with 1 worker
    assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]
    monkeypatch.delenv(MULTIPROC_ENV)
    default = metrics_dir(free_port(), workers=3)
    assert default is not None
    assert os.environ[MULTIPROC_ENV] == str(default)
    assert default.is_dir()
    assert not list(default.iterdir())


def test_serve_with_two_workers_sums_every_worker(
    pg_dsn: str, redis_target: RedisTarget, tmp_path: Path
) -> None:
    port = free_port()
    multiproc = tmp_path / "prom"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.pop("PYTHONMALLOC", None)
    env.update(
        {
            "GTV_DATABASE_URL": pg_dsn,
            "GTV_REDIS_URL": redis_target.url,
            "GTV_REDIS_PREFIX": redis_target.prefix + "metrics:",
            "GTV_DATA_DIR": str(tmp_path),
            "GTV_LOG_LEVEL": "WARNING",
            "GTV_DB_POOL_SIZE": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        }
    )
    healthz = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    for _round in range(2):  # the second start must not add the first one's counts
        proc = _start_serve(env, port, workers=2)
        try:
            n = 40
            for _ in range(n):  # a new connection each time: the kernel spreads them
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            count = _samples(text, "gtvision_http_request_duration_seconds_count")
            assert count.get(healthz) == n, count
            pids = {
                m.group(1)
                for p in multiproc.glob("*.db")
                if (m := re.search(r"_(\d+)\.db$", p.name))
            }
            assert len(pids) >= 2, f"expected files of both workers, found {sorted(pids)}"
            build = _samples(text, "gtvision_build_info")
            assert build, "gtvision_build_info missing"
        finally:
            interrupt(proc, 20)
