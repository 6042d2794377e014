"""Synthetic test videos made with ffmpeg's lavfi (used by tests and ``bench/``).

``make_video`` renders a grey textured scene and appends filter clauses (a lavfi filter graph),
e.g. a box moving between ``t=a`` and ``t=b``::

    moving_box(a=2, b=5)          # an overlay enabled in [a, b] with x growing with t
    "noise=alls=8:allf=t"          # temporal sensor noise
    brightness_step(at=4)          # global brightness jump (eq) from t=4 on
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gtvision.sources.synthetic import SampleCar

SCENE = "drawgrid=w=80:h=60:t=2:c=white@0.4,drawbox=x=iw/4:y=ih/4:w=iw/6:h=ih/5:c=0x203040:t=fill"


def moving_box(a: float, b: float, *, speed: float = 200.0, size: int = 120) -> str:
    """A white box crossing the picture at ``speed`` px/s, visible for ``a <= t <= b``."""
    return (
        f"[v];color=c=white:s={size}x{size}[box];[v][box]overlay=x='40+{speed}*(t-{a})':"
        f"y=H/2-{size // 2}:shortest=1:enable='between(t,{a},{b})'"
    )


def brightness_step(at: float, amount: float = 0.2) -> str:
    """Every pixel ``amount`` brighter from ``t = at`` on (lights switched on)."""
    return f"eq=brightness={amount}:enable='gte(t,{at})'"


def make_video(
    path: Path,
    *,
    duration: float = 6.0,
    size: tuple[int, int] = (640, 360),
    fps: int = 15,
    filters: Sequence[str] = (),
    bitrate: str = "2M",
    gop: int = 30,
    creation_time: str | None = None,
    bframes: int | None = None,
) -> Path:
    """Render an H.264 MP4 of the base scene plus ``filters``; return ``path``."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        msg = "ffmpeg is not installed (apt-get install -y ffmpeg)"
        raise FileNotFoundError(msg)
    w, h = size
    chain = ",".join([SCENE, *filters, "format=yuv420p"]).replace(",[v];", "[v];")
    cmd = [
        ffmpeg, "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"color=c=0x607080:s={w}x{h}:r={fps}:d={duration},{chain}",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate,
        "-maxrate", bitrate, "-bufsize", bitrate, "-g", str(gop),
    ]  # fmt: skip
    if bframes is not None:
        cmd += ["-bf", str(bframes)]
    if creation_time is not None:
        cmd += ["-metadata", f"creation_time={creation_time}"]
    cmd.append(str(path))
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return path


def street_video(
    path: Path,
    cars: Sequence[SampleCar],
    *,
    duration: float,
    size: tuple[int, int] = (640, 360),
    fps: int = 10,
) -> Path:
    """The synthetic street (:mod:`gtvision.sources.synthetic`) with ``cars``, resized to ``size``.

    H.264 without B-frames, one keyframe per second; for scoring flows on rendered plates.
    """
    import av
    import cv2
    import numpy as np

    from gtvision.sources.synthetic import render_frame

    schedule = tuple(cars)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {
            "preset": "superfast",
            "crf": "20",
            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0",
        }
        for index in range(round(duration * fps)):
            rgb = render_frame(index / fps, schedule)
            small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
