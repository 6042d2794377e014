"""``gtvision replay VIDEO --flow NAME``: backtest a flow on a recorded video.

Events go to ``--jsonl`` (default stdout) as one ``event.to_json()`` line each; a progress bar
and the motion-gate figures go to stderr. Times are deterministic (``--start``, else the file's
``creation_time``, else 1970-01-01T00:00:00Z plus the frame's PTS), so two replays of the same
file give the same events with the same ids.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gtvision.config import ConfigError, load_settings


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


def _replay(args: argparse.Namespace) -> int:
    from bytewax.run import cli_main
    from tqdm import tqdm

    from gtvision.flows.context import FlowContext, FlowNotFoundError, load_flow, recovery_config
    from gtvision.flows.errors import QuietRustPanics, flow_error
    from gtvision.flows.jsonl import JsonlSink
    from gtvision.operators.motion import MotionSettings
    from gtvision.sources.cameras import find_camera
    from gtvision.sources.file import FileSource

    settings = load_settings()
    try:
        builder = load_flow(args.flow)
    except FlowNotFoundError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 2
    if not args.video.startswith("s3://") and not Path(args.video).is_file():
        print(f"gtvision: video file not found: {args.video!r}", file=sys.stderr)
        return 2
    city_id, camera_id, fps = args.city_id, args.camera_id, settings.analysis_fps
    keyframes_only, motion = args.keyframes_only, MotionSettings()
    if args.camera:
        if not settings.database_url:
            msg = "invalid configuration: GTV_DATABASE_URL='': --camera looks cameras up there"
            raise ConfigError(msg)
        try:
            spec = find_camera(settings.database_url, args.camera, args.city_id or None)
        except LookupError as err:
            print(f"gtvision: {err}", file=sys.stderr)
            return 2
        city_id, camera_id, fps, motion = (
            spec.city_id,
            spec.camera_id,
            spec.analysis_fps,
            spec.motion,
        )
        keyframes_only = keyframes_only or spec.keyframes_only
    if args.fps is not None:
        fps = args.fps
    show = sys.stderr.isatty() and not args.quiet
    bar = tqdm(
        total=(_frame_count(args.video) or None) if show else None,
        unit="frame",
        file=sys.stderr,
        disable=not show,
    )

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    source = FileSource(
        args.video,
        city_id=city_id,
        camera_id=camera_id,
        analysis_fps=fps,
        keyframes_only=keyframes_only,
        start=_start(args.start),
        realtime=args.realtime,
        progress=progress if show else None,
        settings=settings,
    )
    sink = JsonlSink(args.jsonl)
    ctx = FlowContext(
        source=source,
        sink=sink,
        settings=settings,
        replay=True,
        name=f"replay_{args.flow}".replace(":", "_").replace(".", "_"),
        motion_settings=lambda _cam: motion,
    )
    recovery = recovery_config(args.recovery_directory)
    try:
        with QuietRustPanics(args.verbose):
            cli_main(
                builder(ctx),
                workers_per_process=1,
                epoch_interval=timedelta(
                    seconds=args.snapshot_interval or settings.snapshot_interval_s
                ),
                recovery_config=recovery,
            )
    except Exception as err:  # Bytewax wraps the step's error: report the user's exception
        print(f"gtvision: {flow_error(err, verbose=args.verbose)}", file=sys.stderr)
        print(f"gtvision: replay of {args.video!r} failed", file=sys.stderr)
        return 1
    finally:
        bar.close()
        sink.close()
    stats = ctx.gate_stats
    if not args.quiet:
        print(
            f"replay: {sink.count} events; motion gate passed {stats.total - stats.total_skipped}"
            f" of {stats.total} analysed frames, skipped {stats.skip_rate():.1%}",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``replay``."""
    p = sub.add_parser("replay", help="run a flow over a recorded video, events as JSON lines")
    p.add_argument("video", help="video file path or s3://BUCKET/KEY (GTV_S3_* credentials)")
    p.add_argument("--flow", default="motion", help="motion, lpr or MODULE:ATTR (default motion)")
    p.add_argument("--camera", default="", help="replay as this configured camera (by name)")
    p.add_argument("--city-id", type=int, default=0, help="city id of the events (default 0)")
    p.add_argument("--camera-id", type=int, default=0, help="camera id of the events (default 0)")
    p.add_argument("--realtime", action="store_true", help="pace frames at their capture rate")
    p.add_argument("--jsonl", default="-", metavar="OUT", help="events file, - for stdout")
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="analysis rate cap (default GTV_ANALYSIS_FPS, 0=all)",
    )
    p.add_argument("--keyframes-only", action="store_true", help="decode keyframes only")
    p.add_argument("--start", default=None, help="ISO time of the first frame (default: metadata)")
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("-v", "--verbose", action="store_true", help="full traces of flow errors")
    p.set_defaults(func=_replay)
