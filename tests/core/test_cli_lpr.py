from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gtvision.config import load_settings
from gtvision.models.store import pull
from tests.conftest import DEV_DATA

DATA = DEV_DATA


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    path = load_settings().models_path
    pull(path)
    return {**os.environ, "GTV_MODEL_DIR": str(path)}


# reading must never touch the network: run it in a network namespace without interfaces
# when we are allowed to create one
JAIL = ["unshare", "-n"] if shutil.which("unshare") and os.geteuid() == 0 else []


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JAIL, sys.executable, "-m", "gtvision.cli", "lpr", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )


def test_lpr_read_prints_one_json_line_per_image(env: dict[str, str], tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, dtype=np.uint8))
    images = [str(DATA / "JSG9648.jpg"), str(blank), str(DATA / "HPM9362.jpg")]
    proc = _run(env, "read", *images)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3
    docs = [json.loads(line) for line in lines]
    assert [d["image"] for d in docs] == images
    assert set(docs[0]) == {"image", "plates", "ms"}
    assert docs[1]["plates"] == []
    assert docs[0]["plates"][0]["text"] == "JSG9648"
    assert docs[2]["plates"][0]["text"] == "HPM9362"
    for doc in docs:
        assert isinstance(doc["ms"], int)
        assert doc["ms"] >= 0
        confs = [p["confidence"] for p in doc["plates"]]
        assert confs == sorted(confs, reverse=True)
        for plate in doc["plates"]:
            assert set(plate) == {"text", "confidence", "box", "candidates"}
            assert 0.0 <= plate["confidence"] <= 1.0
            x1, y1, x2, y2 = plate["box"]
            assert x1 < x2
            assert y1 < y2
            assert plate["candidates"][0]["text"] == plate["text"]
            assert {"text", "confidence", "char_confidences"} <= set(plate["candidates"][0])


def test_lpr_read_missing_image(env: dict[str, str]) -> None:
    proc = _run(env, "read", "/nonexistent/x.jpg")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "gtvision: cannot read image /nonexistent/x.jpg"


def test_lpr_eval_on_a_small_benchmark(env: dict[str, str], tmp_path: Path) -> None:
    for name in ("HPM9362", "MXQ1601"):
        (tmp_path / f"{name}.jpg").symlink_to(DATA / f"{name}.jpg")
        truth = (DATA / f"{name}.txt").read_text()
        # a wrong label on purpose: HPM9362's plate labelled HPN9362
        fields = truth.rstrip("\n").split("\t")
        fields[5] = fields[5].replace("HPM9362", "HPN9362")
        (tmp_path / f"{name}.txt").write_text("\t".join(fields) + "\n")
    proc = _run(env, "eval", str(tmp_path), "--folds", "2", "--augment", "jpeg")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "images: 2, folds: 2" in out
    table = {line.split()[0]: line.split() for line in out.splitlines()[2:5]}
    # set, exact, (hits/n), fold1, fold2, mean, worst, recall: HPM9362 (wrong label) is fold 1
    assert table["original"][1:] == ["50.0%", "(1/2)", "0.0%", "100.0%", "50.0%", "0.0%", "100.0%"]
    assert table["jpeg"][2] == "(1/2)"
    assert table["augmented"][2] == "(1/2)"
    assert "confusions (original): N→M ×1" in out
    assert "wrong: original: HPM9362.jpg: HPN9362 read HPM9362" in out
    assert "wrong: jpeg: HPM9362.jpg: HPN9362 read HPM9362 [quality=" in out
    assert "ms/image:" in out
    assert "4/4" in proc.stderr  # the progress bar counts the copies


def test_lpr_eval_bad_benchmarks_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / "GONE.txt").write_text("GONE.jpg\t1\t2\t30\t10\tABC1234\n")
    proc = _run(env, "eval", str(missing))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"gtvision: cannot read image {missing}/GONE.jpg"
    assert "Traceback" not in proc.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "X.txt").write_text("X.jpg\tleft\t2\t30\t10\tABC1234\n")
    proc = _run(env, "eval", str(bad))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gtvision: ")
    assert "expected numbers in 'file x y w h PLATE'" in last
    assert "Traceback" not in proc.stderr


def test_lpr_eval_bad_options_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    for args, expected in (
        (["--augment", "fog"], "unknown augmentation(s) ['fog']"),
        (["--folds", "0"], "--folds must be at least 1, got 0"),
    ):
        proc = _run(env, "eval", str(tmp_path), *args)
        assert proc.returncode == 1
        assert expected in proc.stderr.strip().splitlines()[-1]


def test_lpr_eval_empty_dir(env: dict[str, str], tmp_path: Path) -> None:
    proc = _run(env, "eval", str(tmp_path))
    assert proc.returncode == 1
    assert "no ground-truth" in proc.stderr
