"""One still picture of a camera (``GET /cameras/{id}/snapshot``): what zones are drawn on.

The stream is opened the way the live relay opens it (:meth:`CameraFeed.open_container`: the
address is resolved and checked against ``GTV_CAMERA_ALLOW_CIDRS`` and the checked address is
used), the first picture the decoder gives (from the first keyframe on) is taken, scaled to at
most :data:`MAX_WIDTH` pixels wide and encoded as JPEG, and the stream is closed. Blocking:
call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.web.livefeed import CameraFeed

MAX_WIDTH = 1280
WITHIN_S = 12.0  # a camera with a long GOP sends its next keyframe within this
JPEG_QUALITY = 85


class NoPicture(Exception):
    """The stream opened but gave no picture within :data:`WITHIN_S`."""


def grab(source: str | Path, allow: Sequence[str] | None) -> bytes:
    """A JPEG of the first picture of ``source`` (raises ``UnsafeUrl``, PyAV errors, NoPicture)."""
    container = CameraFeed.open_container(source, None if isinstance(source, Path) else allow)
    try:
        began = time.monotonic()
        for packet in container.demux(container.streams.video[0]):
            for frame in packet.decode():
                return encode(frame.to_ndarray(format="bgr24"))
            if time.monotonic() - began > WITHIN_S:
                break
    finally:
        container.close()
    msg = f"no picture within {WITHIN_S:.0f} s"
    raise NoPicture(msg)


def encode(picture: NDArray[np.uint8]) -> bytes:
    """``picture`` (BGR) as JPEG, at most :data:`MAX_WIDTH` wide."""
    height, width = picture.shape[:2]
    if width > MAX_WIDTH:
        size = (MAX_WIDTH, round(height * MAX_WIDTH / width))
        picture = np.asarray(cv2.resize(picture, size, interpolation=cv2.INTER_AREA), np.uint8)
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        msg = "the picture could not be encoded as JPEG"
        raise NoPicture(msg)
    return bytes(data)
