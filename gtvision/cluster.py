"""The Bytewax cluster a ``gtvision run``/``replay`` process belongs to (``-i``, ``-a``, ``-w``).

A cluster is ``P`` processes (``-a "host0:port;host1:port"``, the same list for every process,
``-i`` this process's index in it) of ``W`` workers each (``-w``): one dataflow over ``P × W``
workers. Bytewax assigns each source partition to one worker of the cluster, so live cameras are
split over ``P × W`` shards (:class:`~gtvision.sources.rtsp.RtspSource`) and every camera is read
by exactly one worker.

Recovery: each process keeps its own recovery partition (``part-<i>.sqlite3`` of ``P``) in its
own ``-r`` directory, so in a multi-host cluster each host's partition lives on that host's disk;
together the processes hold all ``P`` partitions, which is what Bytewax needs to resume
(:func:`gtvision.flows.context.recovery_config`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class ClusterError(ValueError):
    """Cluster arguments that cannot form a cluster (says which value is wrong)."""


@dataclass(frozen=True)
class Cluster:
    """Where a process stands in its cluster."""

    addresses: tuple[str, ...] = ()
    process_id: int = 0
    workers_per_process: int = 1

    @property
    def processes(self) -> int:
        """Number of processes (1 without ``-a``)."""
        return max(1, len(self.addresses))

    @property
    def workers(self) -> int:
        """Workers of the whole cluster."""
        return self.processes * self.workers_per_process

    def bytewax_args(self) -> dict[str, Any]:
        """Keyword arguments of ``bytewax.run.cli_main``."""
        return {
            "workers_per_process": self.workers_per_process,
            "process_id": self.process_id if self.addresses else None,
            "addresses": list(self.addresses) or None,
        }


def parse_cluster(addresses: str | None, process_id: int | None, workers: int) -> Cluster:
    """A :class:`Cluster` from ``-a``, ``-i`` and ``-w`` (checked)."""
    if workers < 1:
        msg = f"-w must be at least 1, got {workers}"
        raise ClusterError(msg)
    listed = tuple(a.strip() for a in (addresses or "").split(";") if a.strip())
    bad = [a for a in listed if not _ADDRESS.match(a)]
    if bad:
        msg = f"-a expects 'host:port;host:port;…', got {bad[0]!r} in {addresses!r}"
        raise ClusterError(msg)
    if len(set(listed)) != len(listed):
        msg = f"-a lists an address twice: {addresses!r}"
        raise ClusterError(msg)
    if not listed:
        if process_id not in (None, 0):
            msg = f"-i {process_id} without -a: give every process's host:port with -a"
            raise ClusterError(msg)
        return Cluster(workers_per_process=workers)
    if process_id is None:
        msg = f"-a lists {len(listed)} processes: give this process's index with -i"
        raise ClusterError(msg)
    if not 0 <= process_id < len(listed):
        n = len(listed)
        msg = f"-i must be 0..{n - 1} for the {n} addresses of -a, got {process_id}"
        raise ClusterError(msg)
    return Cluster(addresses=listed, process_id=process_id, workers_per_process=workers)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``-i`` and ``-a`` (``-w`` is each command's own)."""
    parser.add_argument(
        "-i", "--process-id", type=int, default=None, help="this process's index in -a"
    )
    parser.add_argument(
        "-a",
        "--addresses",
        default=None,
        help="host:port of every process of the cluster, ';'-separated (one argument)",
    )


def limit_threads(threads: int) -> None:
    """Cap the compute threads of this process (``GTV_THREADS``; 0 keeps the defaults).

    Torch (the plate detector) sizes its pool from ``OMP_NUM_THREADS`` when it is first
    imported, which a flow does lazily on its first plate read; OpenCV is told directly. With
    one flow process per core, 1 avoids several processes each running a pool as large as the
    machine.
    """
    if threads <= 0:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
