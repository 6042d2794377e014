"""``gtvision replay VIDEO… --flow NAME``: backtest a flow on recordings of one or more cameras.

* ``gtvision replay a.mp4``: one camera (``--camera NAME`` or ``--camera-id``);
* ``gtvision replay a.mp4 b.mp4 DIR/``: one camera per file (a directory's video files in name
  order), camera ids ``--camera-id``, ``+1``, …;
* ``gtvision replay --manifest replay.toml``: per camera a name or id, a file or ``s3://`` key and
  the time of its first frame (:mod:`gtvision.sources.multifile`).

Each camera is its own source partition (``-w`` workers share them; ``-i``/``-a`` spread them
over a cluster of processes given the same files, each writing the events of its own workers to
its own ``--jsonl``). Events go to ``--jsonl`` (default stdout) sorted by event time, each id
once, so the output is the same bytes on every run (``--stream`` writes them as they come
instead); per-camera progress bars and the motion-gate figures go to stderr. Times are
deterministic: the entry's ``start``, else ``--start``, else the file's ``creation_time``, else
1970-01-01T00:00:00Z, plus the frame's PTS.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gtvision.cluster import ClusterError, add_cluster_arguments, limit_threads, parse_cluster
from gtvision.commands.flowargs import add_param_arguments
from gtvision.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from gtvision.operators.motion import MotionSettings
    from gtvision.sources.multifile import ReplayEntry


class UsageError(ValueError):
    """Arguments that cannot be replayed (exit 2, one line)."""


def _start(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        msg = f"--start expects an ISO time like 2024-05-01T12:00:00Z, got {text!r}"
        raise ConfigError(msg) from None
    if value.tzinfo is None:
        msg = f"--start needs a time zone (e.g. a trailing Z), got {text!r}"
        raise ConfigError(msg)
    return value


def _frame_count(location: str) -> int:
    if location.startswith("s3://"):
        return 0
    import av

    try:
        with av.open(location) as container:
            return int(container.streams.video[0].frames or 0)
    except (OSError, ValueError, IndexError):
        return 0


@dataclass(frozen=True)
class CameraPlan:
    """One camera of the replay, resolved: ids, file, analysis settings, first-frame time."""

    label: str
    file: str
    city_id: int
    camera_id: int
    fps: float
    keyframes_only: bool
    motion: MotionSettings
    start: datetime | None


def _entries(args: argparse.Namespace) -> list[ReplayEntry]:
    from gtvision.sources.multifile import ReplayEntry, load_manifest, video_files

    if args.manifest is not None:
        if args.videos:
            msg = "give either video files or --manifest, not both"
            raise UsageError(msg)
        if not args.manifest.is_file():
            msg = f"manifest not found: {str(args.manifest)!r}"
            raise UsageError(msg)
        return load_manifest(args.manifest)
    if not args.videos:
        msg = "nothing to replay: give video files, a directory or --manifest"
        raise UsageError(msg)
    files = video_files(args.videos)
    if len(files) > 1 and args.camera:
        msg = "--camera names one camera: replay several cameras with --manifest"
        raise UsageError(msg)
    if len(files) == 1:
        return [ReplayEntry(camera=args.camera or args.camera_id, file=files[0])]
    return [ReplayEntry(camera=args.camera_id + i, file=f) for i, f in enumerate(files)]


def _plan(entry: ReplayEntry, args: argparse.Namespace, settings: Settings) -> CameraPlan:
    from gtvision.operators.motion import MotionSettings
    from gtvision.sources.cameras import find_camera

    if not entry.file.startswith("s3://") and not Path(entry.file).is_file():
        msg = f"video file not found: {entry.file!r}"
        raise UsageError(msg)
    start = entry.start or _start(args.start)
    fps = settings.analysis_fps if args.fps is None else args.fps
    city = entry.city_id if entry.city_id is not None else args.city_id
    if isinstance(entry.camera, int):
        label = f"camera {entry.camera}"
        return CameraPlan(
            label, entry.file, city, entry.camera, fps, args.keyframes_only, MotionSettings(), start
        )
    if not settings.database_url:
        msg = (
            f"invalid configuration: GTV_DATABASE_URL='': camera {entry.camera!r} is looked "
            "up there"
        )
        raise ConfigError(msg)
    try:
        spec = find_camera(settings.database_url, entry.camera, city or None)
    except LookupError as err:
        raise UsageError(str(err)) from None
    return CameraPlan(
        entry.camera,
        entry.file,
        spec.city_id,
        spec.camera_id,
        spec.analysis_fps if args.fps is None else args.fps,
        args.keyframes_only or spec.keyframes_only,
        spec.motion,
        start,
    )


def _resuming(directory: Path | None) -> bool:
    return directory is not None and directory.is_dir() and any(directory.iterdir())


def _replay(args: argparse.Namespace, plans: list[CameraPlan] | None = None) -> int:
    """Replay what ``args`` name (``plans``: the cameras already resolved, as ``eval`` has)."""
    from tqdm import tqdm

    from gtvision.flows.context import (
        FlowContext,
        FlowNotFoundError,
        load_flow,
        recovery_config,
        run_dataflow,
    )
    from gtvision.flows.jsonl import JsonlSink
    from gtvision.flows.params import ParamsError, flow_params
    from gtvision.operators.motion import MotionSettings
    from gtvision.sources.file import FileSource
    from gtvision.sources.multifile import FileSources, ManifestError

    settings = load_settings()
    try:
        cluster = parse_cluster(args.addresses, args.process_id, args.workers)
        builder = load_flow(args.flow)
        params = flow_params(builder, args.param, args.params)
        if plans is None:
            plans = [_plan(entry, args, settings) for entry in _entries(args)]
    except (ClusterError, FlowNotFoundError, ParamsError, ManifestError, UsageError) as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    limit_threads(settings.threads)
    show = sys.stderr.isatty() and not args.quiet
    bars = [
        tqdm(
            total=(_frame_count(p.file) or None) if show else None,
            desc=p.label,
            unit="frame",
            file=sys.stderr,
            disable=not show,
            position=i,
        )
        for i, p in enumerate(plans)
    ]

    def progress_of(bar: Any) -> Any:
        return lambda done, _total: bar.update(done - bar.n)

    files = [
        FileSource(
            p.file,
            city_id=p.city_id,
            camera_id=p.camera_id,
            analysis_fps=p.fps,
            keyframes_only=p.keyframes_only,
            start=p.start,
            realtime=args.realtime,
            progress=progress_of(bar) if show else None,
            settings=settings,
        )
        for p, bar in zip(plans, bars, strict=True)
    ]
    try:
        source = files[0] if len(files) == 1 else FileSources(files)
    except ValueError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    motions = {p.camera_id: p.motion for p in plans}
    default_motion = MotionSettings()
    sink = JsonlSink(args.jsonl, ordered=not args.stream, resume=_resuming(args.recovery_directory))
    ctx = FlowContext(
        source=source,
        sink=sink,
        settings=settings,
        replay=True,
        name=f"replay_{args.flow}".replace(":", "_").replace(".", "_"),
        motion_settings=lambda cam: motions.get(cam, default_motion),
        params=params,
    )
    recovery = recovery_config(
        args.recovery_directory, process_id=cluster.process_id, processes=cluster.processes
    )
    try:
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
            names = ", ".join(repr(p.file) for p in plans)
            print(f"gtvision: replay of {names} failed", file=sys.stderr)
            return 1
    finally:
        for bar in bars:
            bar.close()
        sink.close()
    sink.finish()
    stats = ctx.gate_stats
    if not args.quiet:
        print(
            f"replay: {sink.count} events from {len(plans)} camera(s); motion gate passed "
            f"{stats.total - stats.total_skipped} of {stats.total} analysed frames, "
            f"skipped {stats.skip_rate():.1%}",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``replay``."""
    p = sub.add_parser("replay", help="run a flow over recorded videos, events as JSON lines")
    add_replay_arguments(p)
    p.add_argument("--jsonl", default="-", metavar="OUT", help="events file, - for stdout")
    p.add_argument(
        "--stream", action="store_true", help="write events as they come (not sorted by time)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_replay)


def add_replay_arguments(p: argparse.ArgumentParser) -> None:
    """What to replay and how (shared by ``replay`` and ``eval``)."""
    p.add_argument(
        "videos",
        nargs="*",
        metavar="VIDEO",
        help="video files, directories of videos or s3://BUCKET/KEY (one camera each)",
    )
    p.add_argument("--manifest", type=Path, default=None, help="TOML/CSV: camera,file,start")
    p.add_argument("--flow", default="motion", help="motion, lpr or MODULE:ATTR (default motion)")
    p.add_argument("--camera", default="", help="replay as this configured camera (by name)")
    p.add_argument("--city-id", type=int, default=0, help="city id of the events (default 0)")
    p.add_argument(
        "--camera-id", type=int, default=0, help="camera id (of the first file; default 0)"
    )
    p.add_argument("--realtime", action="store_true", help="pace frames at their capture rate")
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="analysis rate cap (default GTV_ANALYSIS_FPS, 0=all)",
    )
    p.add_argument("--keyframes-only", action="store_true", help="decode keyframes only")
    p.add_argument("--start", default=None, help="ISO time of the first frame (default: metadata)")
    p.add_argument("-w", "--workers", type=int, default=1, help="Bytewax workers (default 1)")
    add_cluster_arguments(p)
    p.add_argument(
        "-r",
        "--recovery-directory",
        type=Path,
        default=None,
        help="Bytewax recovery directory: an interrupted replay resumes at its next frame",
    )
    p.add_argument(
        "-s",
        "--snapshot-interval",
        type=float,
        default=None,
        help="seconds between snapshots (default GTV_SNAPSHOT_INTERVAL_S)",
    )
    add_param_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="full traces of flow errors")
