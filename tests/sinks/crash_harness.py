"""Kill-and-resume harness shared by the crash test and ``bench/crash_recovery.py``.

A reference run of a flow (``file_flow_main.py``) goes uninterrupted into one database; the same
flow is SIGKILLed at random points (each after a random number of stored events) and resumed
from its Bytewax recovery directory into a second database, then run to the end.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from bytewax.recovery import init_db_dir

from gtvision.sinks.feed import stream_key

DRIVER = Path(__file__).with_name("file_flow_main.py")
Row = tuple[object, ...]


@dataclass
class CrashResult:
    """Rows of both runs and what happened in between."""

    expected: list[Row]
    got: list[Row]
    killed_at: list[int]
    stream_entries: int

    @property
    def lost(self) -> set[object]:
        """Event ids of the reference missing after the crashes."""
        return {r[0] for r in self.expected} - {r[0] for r in self.got}

    @property
    def extra(self) -> set[object]:
        """Event ids that only the crashed run has."""
        return {r[0] for r in self.got} - {r[0] for r in self.expected}

    @property
    def differing(self) -> int:
        """Same id, different row."""
        ref = {r[0]: r for r in self.expected}
        return sum(1 for r in self.got if r[0] in ref and ref[r[0]] != r)

    def summary(self) -> str:
        """One line of figures."""
        return (
            f"reference={len(self.expected)} events; killed after {self.killed_at} stored; "
            f"final={len(self.got)} lost={len(self.lost)} extra={len(self.extra)} "
            f"differing={self.differing} stream_entries={self.stream_entries}"
        )


def rows(dsn: str) -> list[Row]:
    """The events table, ordered by id."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT id, type, city_id, camera_id, ts, plate, payload FROM events ORDER BY id"
        ).fetchall()


def count(dsn: str) -> int:
    """Rows in the events table."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def start(
    flow: str, path: Path, dsn: str, rec: Path, redis_url: str, prefix: str, snapshot_s: float
) -> subprocess.Popen[str]:
    """Start the driver."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    args = [flow, str(path), dsn, str(rec), str(snapshot_s), redis_url, prefix]
    return subprocess.Popen(
        [sys.executable, str(DRIVER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> None:
    out, _ = proc.communicate(timeout=600)
    if proc.returncode != 0:
        msg = f"flow run failed with exit code {proc.returncode}: {out[-3000:]}"
        raise RuntimeError(msg)


def run_scenario(
    flow: str,
    path: Path,
    ref_dsn: str,
    crash_dsn: str,
    workdir: Path,
    redis_url: str,
    prefix: str,
    *,
    kills: int = 3,
    snapshot_s: float = 0.3,
    rng: random.Random | None = None,
) -> CrashResult:
    """Reference run, ``kills`` SIGKILLs at random points with resumes, final run; compare."""
    rng = rng or random.Random()
    ref_rec, crash_rec = workdir / "rec_ref", workdir / "rec_crash"
    for rec in (ref_rec, crash_rec):
        rec.mkdir()
        init_db_dir(rec, 1)
    _finish(start(flow, path, ref_dsn, ref_rec, redis_url, prefix + "ref:", snapshot_s))
    expected = rows(ref_dsn)
    if len(expected) < kills + 2:
        msg = f"the reference run stored only {len(expected)} events: too few to crash in"
        raise RuntimeError(msg)
    # leave the tail: the run must still be going when it is killed
    last = max(kills + 1, len(expected) - max(2, len(expected) // 10))
    targets = sorted(rng.sample(range(1, last), kills))
    killed_at: list[int] = []
    for target in targets:
        # each kill lands after new events were stored by this run (not during its start-up)
        target = min(max(target, count(crash_dsn) + rng.randint(2, 8)), last)
        proc = start(flow, path, crash_dsn, crash_rec, redis_url, prefix + "crash:", snapshot_s)
        deadline = time.monotonic() + 300
        while count(crash_dsn) < target and proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                msg = f"the flow made no progress towards {target} events"
                raise RuntimeError(msg)
            time.sleep(rng.uniform(0.01, 0.1))
        if proc.poll() is not None:
            msg = f"the flow ended (code {proc.returncode}) before it could be killed"
            raise RuntimeError(msg)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at.append(count(crash_dsn))
    _finish(start(flow, path, crash_dsn, crash_rec, redis_url, prefix + "crash:", snapshot_s))
    got = rows(crash_dsn)
    client = redis.Redis.from_url(redis_url)
    cities = {int(str(r[2])) for r in got}
    entries = sum(int(client.xlen(stream_key(prefix + "crash:", c))) for c in cities)
    client.close()
    return CrashResult(expected, got, killed_at, entries)
