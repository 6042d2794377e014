"""Cluster arguments (``-i``/``-a``/``-w``), per-process recovery partitions, ``GTV_THREADS``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gtvision.cluster import Cluster, ClusterError, parse_cluster
from gtvision.flows.context import recovery_config


def test_a_cluster_of_two_processes() -> None:
    c = parse_cluster("flow-0:2101; flow-1:2101", 1, 2)
    assert c == Cluster(("flow-0:2101", "flow-1:2101"), 1, 2)
    assert (c.processes, c.workers) == (2, 4)
    assert c.bytewax_args() == {
        "workers_per_process": 2,
        "process_id": 1,
        "addresses": ["flow-0:2101", "flow-1:2101"],
    }
    alone = parse_cluster(None, None, 3)
    assert (alone.processes, alone.workers) == (1, 3)
    assert alone.bytewax_args()["addresses"] is None


@pytest.mark.parametrize(
    ("addresses", "process_id", "workers", "message"),
    [
        ("a:1;b:2", None, 1, "give this process's index with -i"),
        ("a:1;b:2", 2, 1, "-i must be 0..1 for the 2 addresses of -a, got 2"),
        ("a:1;b:2", -1, 1, "got -1"),
        (None, 1, 1, "-i 1 without -a"),
        ("a:1;b", 0, 1, "got 'b' in 'a:1;b'"),
        ("a:1;a:1", 0, 1, "lists an address twice"),
        ("a:1", 0, 0, "-w must be at least 1, got 0"),
    ],
)
def test_bad_cluster_arguments_say_what_is_wrong(
    addresses: str | None, process_id: int | None, workers: int, message: str
) -> None:
    with pytest.raises(ClusterError, match=re.escape(message)):
        parse_cluster(addresses, process_id, workers)


def test_each_process_creates_only_its_own_recovery_partition(tmp_path: Path) -> None:
    for i in range(2):
        assert recovery_config(tmp_path / f"host{i}", process_id=i, processes=2) is not None
    for i in range(2):
        names = sorted(p.name for p in (tmp_path / f"host{i}").iterdir())
        assert names == [f"part-{i}.sqlite3"]
    again = recovery_config(tmp_path / "host1", process_id=1, processes=2)  # resumes as it is
    assert again is not None
    assert sorted(p.name for p in (tmp_path / "host1").iterdir()) == ["part-1.sqlite3"]
    assert recovery_config(None) is None
    with pytest.raises(ValueError, match=re.escape("process_id must be 0..1, got 2")):
        recovery_config(tmp_path / "x", process_id=2, processes=2)


def test_run_refuses_half_a_cluster_with_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gtvision.cli", "run", "motion", "-a", "127.0.0.1:1;127.0.0.1:2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"GTV_RTSP_URLS": "rtsp://127.0.0.1:1/x", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "give this process's index with -i" in proc.stderr


def test_threads_setting_caps_torch_and_opencv() -> None:
    code = (
        "from gtvision.cluster import limit_threads; import cv2\n"
        "limit_threads(1)\n"
        "import torch\n"
        "print(torch.get_num_threads(), cv2.getNumThreads())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["1", "1"]
