"""The metric definitions: documented, bounded labels; ``serve``'s multiprocess directory.

That ``/metrics`` of ``serve --workers 2`` sums both workers is checked end to end, behind
HAProxy and scraped by Prometheus, in tests/deploy/test_prometheus_live.py.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from gtvision import metrics
from tests.conftest import free_port

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


def test_serve_gauges_sum_over_workers_without_a_pid_label() -> None:
    """With several uvicorn workers a gauge in mode ``all`` would gain a ``pid`` label per
    worker (and keep dead workers' values): serve's gauges must say how to combine workers."""
    from prometheus_client import Gauge

    by_name = {m.name: m for m in metrics.catalogue()}
    for value in vars(metrics).values():
        if isinstance(value, Gauge) and by_name[value._name].command in {"serve", "every command"}:
            assert value._multiprocess_mode in {"livesum", "liveall", "max", "livemax"}, value._name
