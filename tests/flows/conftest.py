"""Fixtures of the flow tests: a video built from the ALPR dev photos."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DEV_DATA


@dataclass(frozen=True)
class PhotoVideo:
    """A video showing ``plates[i]`` from ``i * period_s`` for ``show_s`` seconds."""

    path: Path
    plates: tuple[str, ...]
    show_s: float
    period_s: float
    fps: int


def ground_truth(data: Path = DEV_DATA) -> list[tuple[Path, str]]:
    """``(photo, plate)`` pairs from the OpenALPR-format ``NAME.txt`` files."""
    pairs = []
    for txt in sorted(data.glob("*.txt")):
        fields = txt.read_text("utf-8").strip().split("\t")
        pairs.append((data / fields[0], fields[5]))
    return pairs


def build_photo_video(
    photos: list[Path],
    out: Path,
    *,
    show_s: float = 2.0,
    gap_s: float = 1.0,
    fps: int = 10,
    size: int = 1280,
    pan_px: int = 64,
) -> None:
    """Each photo letterboxed on a ``size`` square, slowly panned, then ``gap_s`` of black."""
    view = size - pan_px
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    graph, parts = [], []
    for i, photo in enumerate(photos):
        args += ["-loop", "1", "-framerate", str(fps), "-t", str(show_s), "-i", str(photo)]
        speed = pan_px / show_s
        graph.append(
            f"[{i}:v]scale={size}:{size}:force_original_aspect_ratio=decrease,"
            f"pad={size}:{size}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,"
            f"crop=w={view}:h={view}:x='t*{speed:.3f}':y='t*{speed / 2:.3f}'[p{i}]"
        )
        graph.append(f"color=c=black:s={view}x{view}:r={fps}:d={gap_s},format=yuv420p[b{i}]")
        parts.append(f"[p{i}][b{i}]")
    graph.append("".join(parts) + f"concat=n={2 * len(photos)}:v=1:a=0[out]")
    args += ["-filter_complex", ";".join(graph), "-map", "[out]", "-c:v", "libx264"]
    args += ["-preset", "ultrafast", "-crf", "16", "-r", str(fps), str(out)]
    subprocess.run(args, check=True, timeout=600)


@pytest.fixture(scope="session")
def alpr_dev_video(tmp_path_factory: pytest.TempPathFactory) -> PhotoVideo:
    """All dev photos, 2 s each with a slow pan at 10 fps, 1 s of black between them."""
    pairs = ground_truth()
    if len(pairs) < 50:
        pytest.fail(f"expected the ALPR dev photos in {DEV_DATA}, found {len(pairs)}")
    out = tmp_path_factory.mktemp("lpr_video") / "alpr_dev.mp4"
    build_photo_video([p for p, _ in pairs], out, show_s=2.0, gap_s=1.0, fps=10)
    return PhotoVideo(path=out, plates=tuple(t for _, t in pairs), show_s=2.0, period_s=3.0, fps=10)
