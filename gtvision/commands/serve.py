"""``gtvision serve``: the web API under uvicorn.

The server runs with the C allocator (``PYTHONMALLOC=malloc``; the command re-executes itself
once to set it): memory freed when thousands of SSE clients disconnect then goes back to the
OS (the SSE hub calls ``malloc_trim``), whereas pymalloc arenas stay fragmented and resident.

With several workers, ``/metrics`` sums them through prometheus-client's multiprocess mode:
before uvicorn starts them, this command empties ``PROMETHEUS_MULTIPROC_DIR`` (default
``<tmp>/gtvision-serve-<port>-metrics``) and sets it for the workers. It must happen before
anything imports ``prometheus_client`` in a process that serves.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from gtvision.config import load_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # gtvision.metrics reads it (not imported here)


def metrics_dir(port: int, workers: int) -> Path | None:
    """Empty the multiprocess metrics directory of this server and export it to the workers.

    ``None`` (single-process metrics) with one worker, unless ``PROMETHEUS_MULTIPROC_DIR`` is set.
    """
    given = os.environ.get(MULTIPROC_ENV, "")
    if workers <= 1 and not given:
        return None
    directory = Path(given or Path(tempfile.gettempdir()) / f"gtvision-serve-{port}-metrics")
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.db"):  # an earlier run's counters must not add up with ours
        old.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    host = args.host or settings.http_host
    port = args.port or settings.http_port
    workers = args.workers or settings.web_workers
    if "PYTHONMALLOC" not in os.environ:
        argv = [sys.executable, "-m", "gtvision.cli", "serve", "--host", host]
        argv += ["--port", str(port), "--workers", str(workers)]
        if args.access_log:
            argv.append("--access-log")
        os.execve(sys.executable, argv, {**os.environ, "PYTHONMALLOC": "malloc"})  # noqa: S606
    metrics_dir(port, workers)  # before the imports below pull in prometheus_client
    import uvicorn

    from gtvision import logs
    from gtvision.web.clientip import server_options
    from gtvision.web.state import jwt_secret

    jwt_secret(settings)  # fail fast, and create the demo secret once before workers start
    uvicorn.run(
        "gtvision.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=logs.uvicorn_config(settings.log_level, settings.log_format, settings.log_file),
        access_log=args.access_log,
        **server_options(),
    )
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve``."""
    parser = sub.add_parser("serve", help="run the web API (uvicorn)")
    parser.add_argument("--host", default="", help="override GTV_HTTP_HOST")
    parser.add_argument("--port", type=int, default=0, help="override GTV_HTTP_PORT")
    parser.add_argument("--workers", type=int, default=0, help="override GTV_WEB_WORKERS")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.set_defaults(func=_serve)
