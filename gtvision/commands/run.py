"""``gtvision run FLOW``: run a flow over the configured cameras.

Cameras are the enabled rows of the ``cameras`` table (re-read every ``--poll-s`` seconds, so
cameras added or removed through the API start or stop within seconds) plus ``GTV_RTSP_URLS``.
Bytewax's scaling and recovery options pass through: ``-w`` workers per process, ``-i``/``-a``
for a cluster of processes (:mod:`gtvision.cluster`; cameras are split over every worker of the
cluster), ``-r``/``-s``/``-b`` for recovery (one partition per process, in its own directory).
Events go to the Postgres sink (events table, outbox, object store, live feed) when
``GTV_DATABASE_URL`` is set, else (or with ``--jsonl``) to JSON lines.

SIGINT/SIGTERM stop it cleanly (:mod:`gtvision.stopping`): cameras close, open incidents and
passes are emitted, clips and the open recording segment are finished; exit 0. A second signal
aborts. In a cluster, signal every process (a supervisor stopping the deployment does).
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from gtvision.cluster import ClusterError, add_cluster_arguments, limit_threads, parse_cluster
from gtvision.commands.flowargs import add_param_arguments
from gtvision.config import ConfigError, load_settings


def _run(args: argparse.Namespace) -> int:
    from bytewax.outputs import Sink

    from gtvision.events import EventBase
    from gtvision.flows.context import (
        FlowContext,
        FlowNotFoundError,
        load_flow,
        recovery_config,
        run_dataflow,
    )
    from gtvision.flows.jsonl import JsonlSink
    from gtvision.flows.params import ParamsError, flow_params
    from gtvision.sources.cameras import CameraDirectory, DbCameras, env_cameras
    from gtvision.sources.rtsp import RtspSource
    from gtvision.stopping import GracefulStop, exit_now

    settings = load_settings()
    try:
        builder = load_flow(args.flow)
        params = flow_params(builder, args.param, args.params)
    except (FlowNotFoundError, ParamsError) as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    extra = env_cameras(settings.rtsp_urls, settings.analysis_fps)
    directory: CameraDirectory = extra
    if settings.database_url:
        directory = DbCameras(settings.database_url, extra.specs, allow=settings.camera_allow_cidrs)
    elif not settings.rtsp_urls:
        msg = "invalid configuration: GTV_DATABASE_URL='' and GTV_RTSP_URLS='': no cameras to read"
        raise ConfigError(msg)
    try:
        cluster = parse_cluster(args.addresses, args.process_id, args.workers_per_process)
    except ClusterError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    limit_threads(settings.threads)
    if cluster.processes > 1 and settings.record_spool_dir is None:
        # one spool per process (a spool belongs to one process): part of the cluster's layout
        spool = settings.data_dir / "spool" / f"recordings-{cluster.process_id}"
        settings = settings.model_copy(update={"record_spool_dir": spool})
    stopping = GracefulStop()
    source = RtspSource(
        directory,
        shards=cluster.workers,
        poll_s=args.poll_s,
        reconnect_cap_s=settings.reconnect_cap_s,
        stop=stopping.event,
    )
    sink: Sink[EventBase]
    if args.jsonl or not settings.database_url:
        sink = JsonlSink(args.jsonl or "-")
    else:
        from gtvision.sinks.postgres import EventSink

        sink = EventSink.from_settings(settings)
    ctx = FlowContext(
        source=source,
        sink=sink,
        settings=settings,
        replay=False,
        name=f"run_{args.flow}".replace(":", "_").replace(".", "_"),
        motion_settings=source.registry.motion_settings,
        params=params,
    )
    recovery = recovery_config(
        args.recovery_directory,
        timedelta(seconds=args.backup_interval),
        process_id=cluster.process_id,
        processes=cluster.processes,
    )
    from gtvision import metrics

    metrics.serve_http(args.metrics_port or settings.metrics_port, settings.http_host, "run")
    with stopping:
        error = run_dataflow(
            builder,
            ctx,
            cluster,
            snapshot_s=args.snapshot_interval or settings.snapshot_interval_s,
            recovery=recovery,
            verbose=args.verbose,
        )
    if error is not None:
        print(f"gtvision: {error}", file=sys.stderr)
        return 1
    if stopping.event.is_set():
        logging.getLogger(__name__).info("flow stopped cleanly")
        exit_now(0)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``run``."""
    p = sub.add_parser("run", help="run a flow over the configured cameras")
    p.add_argument("flow", help="motion, lpr or MODULE:ATTR")
    p.add_argument("-w", "--workers-per-process", type=int, default=1, help="Bytewax workers")
    add_cluster_arguments(p)
    p.add_argument("-r", "--recovery-directory", type=Path, default=None, help="recovery dir")
    p.add_argument(
        "-s",
        "--snapshot-interval",
        type=float,
        default=None,
        help="seconds between snapshots (default GTV_SNAPSHOT_INTERVAL_S)",
    )
    p.add_argument(
        "-b", "--backup-interval", type=float, default=0.0, help="seconds to keep old snapshots"
    )
    p.add_argument("--poll-s", type=float, default=2.0, help="camera table poll period (s)")
    p.add_argument("--jsonl", default="", metavar="OUT", help="write events as JSON lines")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on GTV_HTTP_HOST:PORT (default GTV_METRICS_PORT)",
    )
    add_param_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="full traces of flow errors")
    p.set_defaults(func=_run)
