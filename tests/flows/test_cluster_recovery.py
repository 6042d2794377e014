"""Kill -9 in a 2-process cluster: the supervisor restarts the cluster, nothing lost or doubled.

Bytewax's failure model: when one process of a cluster dies the others lose their connection
to it and stop (a panic in the communication thread, exit 1); the supervisor (compose/k8s
restart policy, here this test) starts every process again with the same arguments, and the
cluster resumes from its last consistent snapshot. Each process keeps its own recovery
partition in its own directory (``part-<i>`` of 2: a host's partition stays on that host).

Input: four recorded cameras (8 s each) replayed in real time (``gtvision replay --realtime``,
so the kills land mid-stream) with the motion flow, 0.5 s snapshots. Three SIGKILLs of a random
process at random times (``GTV_TEST_KILL_SEED``). The events of all executions (each process's
JSON lines, de-duplicated by id as every gtvision sink does) must be exactly the events of an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from gtvision.sources.testvideo import make_video, moving_box

from .cluster_util import GTV, LocalCluster, clean_env

SEED = int(os.environ.get("GTV_TEST_KILL_SEED", "14"))


@pytest.fixture(scope="module")
def cameras(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("kill")
    return [
        make_video(
            root / f"cam{i}.mp4",
            duration=8,
            size=(320, 180),
            filters=[
                moving_box(0.5 + 0.4 * i, 2.5, size=40),
                moving_box(4.5 + 0.3 * i, 6.5, size=40),
            ],
        )
        for i in range(4)
    ]


def _ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_three_kills_lose_and_double_nothing(cameras: list[Path], tmp_path: Path) -> None:
    files = [str(c) for c in cameras]
    ref = tmp_path / "uninterrupted.jsonl"
    done = subprocess.run(
        [*GTV, "replay", *files, "--flow", "motion", "-w", "2", "-q", "--jsonl", str(ref)],
        env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    want = _ids(ref)
    assert len(want) >= 8

    outs = [tmp_path / f"host{i}" / "events.jsonl" for i in range(2)]
    recovery = [tmp_path / f"host{i}" / "recovery" for i in range(2)]
    cluster = LocalCluster(
        ["replay", *files, "--flow", "motion", "--realtime", "-s", "0.5", "-q"],
        2,
        tmp_path / "logs",
        args={i: ["--jsonl", str(outs[i]), "-r", str(recovery[i])] for i in range(2)},
        env={i: clean_env() for i in range(2)},
    )
    rng = random.Random(SEED)
    survivors: list[list[int]] = []
    cluster.start()
    try:
        for _ in range(3):
            time.sleep(rng.uniform(3.0, 4.5))  # connected and mid-stream (startup ~2 s)
            victim = rng.randrange(2)
            cluster.kill(victim)
            survivors.append(cluster.wait(5))  # the other one stops by itself, or is killed
            cluster.start()  # the supervisor restarts the whole cluster
        codes = cluster.wait(90)
    finally:
        cluster.stop()
    logs = [cluster.log(i) for i in range(2)]
    assert codes == [0, 0], (codes, logs)
    got = [_ids(out) for out in outs]
    every = got[0] + got[1]
    assert len(every) == len(set(every)), "an event came out twice"
    assert sorted(every) == sorted(want), (
        f"lost {sorted(set(want) - set(every))}, extra {sorted(set(every) - set(want))}"
    )
    assert all(0 not in s for s in survivors), survivors  # nobody finished alone
    for i in range(2):  # each host holds only its own recovery partition
        assert sorted(p.name for p in recovery[i].glob("part-*.sqlite3")) == [f"part-{i}.sqlite3"]
