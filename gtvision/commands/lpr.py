"""``gtvision lpr read IMAGE...`` and ``gtvision lpr eval DIR``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gtvision.config import load_settings

if TYPE_CHECKING:
    from gtvision.operators.lpr import PlateReader


def _reader(args: argparse.Namespace) -> PlateReader | None:
    from gtvision.models.store import ModelError
    from gtvision.operators.lpr import PlateReader, ReaderConfig

    settings = load_settings()
    models_dir = Path(args.model_dir) if args.model_dir else settings.models_path
    device = args.device or settings.device
    config = ReaderConfig.from_settings(settings)  # ConfigError on a bad GTV_PLATE_FORMATS
    try:
        return PlateReader.load(models_dir, device=device, backend=args.backend, config=config)
    except ModelError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return None


def _read(args: argparse.Namespace) -> int:
    from gtvision.operators.lpr import load_image

    reader = _reader(args)
    if reader is None:
        return 1
    status = 0
    for name in args.images:
        image = load_image(name)
        if image is None:
            print(f"gtvision: cannot read image {name}", file=sys.stderr)
            status = 1
            continue
        start = time.perf_counter()
        readings = reader.read(image)
        ms = (time.perf_counter() - start) * 1000
        plates = [
            {
                "text": r.text,
                "confidence": round(r.confidence, 4),
                "box": [round(v, 1) for v in r.box.as_list()],
                "candidates": [c.model_dump(mode="json") for c in r.candidates],
            }
            for r in readings
        ]
        print(json.dumps({"image": name, "plates": plates, "ms": round(ms)}), flush=True)
    return status


def _eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gtvision.operators.lpr.augment import parse_augmentations
    from gtvision.operators.lpr.evaluation import evaluate, load_truths

    directory = Path(args.dir)
    try:
        kinds = parse_augmentations(args.augment) if args.augment is not None else ()
        if args.folds < 1:
            msg = f"--folds must be at least 1, got {args.folds}"
            raise ValueError(msg)
        truths = load_truths(directory) if directory.is_dir() else []
    except ValueError as err:
        print(f"gtvision: {err}", file=sys.stderr)
        return 1
    if not truths:
        print(f"gtvision: no ground-truth *.txt files in {directory}", file=sys.stderr)
        return 1
    reader = _reader(args)
    if reader is None:
        return 1
    with tqdm(total=len(truths) * (1 + len(kinds)), unit="img", file=sys.stderr) as bar:

        def tick(_: object) -> None:
            bar.update()

        try:
            report = evaluate(
                reader, truths, tick, folds=args.folds, augmentations=kinds, seed=args.seed
            )
        except ValueError as err:
            bar.close()
            print(f"gtvision: {err}", file=sys.stderr)
            return 1
    print("\n".join(report.lines()))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default="", help="override GTV_MODEL_DIR")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="", help="override GTV_DEVICE")
    parser.add_argument(
        "--backend",
        choices=["auto", "pt", "onnx", "ort"],
        default="auto",
        help="detector runtime (auto: ONNX Runtime when the model is exported)",
    )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``lpr read`` and ``lpr eval``."""
    parser = sub.add_parser("lpr", help="licence-plate recognition")
    cmds = parser.add_subparsers(dest="lpr_command", metavar="ACTION", required=True)
    read = cmds.add_parser("read", help="read plates in images: one JSON line per image")
    read.add_argument("images", nargs="+", metavar="IMAGE")
    _common(read)
    read.set_defaults(func=_read)
    ev = cmds.add_parser("eval", help="accuracy on an OpenALPR-format benchmark directory")
    ev.add_argument("dir", metavar="DIR")
    ev.add_argument(
        "--folds", type=int, default=3, help="images go to fold (index mod K); default 3"
    )
    ev.add_argument(
        "--augment",
        nargs="?",
        const="all",
        default=None,
        metavar="KINDS",
        help="also read seeded degraded copies: 'all' (default) or a comma list of "
        "scale, blur, jpeg, lowlight, rotate, perspective",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of the augmented copies")
    _common(ev)
    ev.set_defaults(func=_eval)
