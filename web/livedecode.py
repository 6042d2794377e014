"""The live relay's fallback for viewers without H.264: decode here, let aiortc encode (VP8).

Every current browser accepts H.264, so most viewers get the camera's packets passed through
(:class:`~gtvision.web.livefeed.PacketTrack`). An offer without a usable H.264 format, or a
camera in another codec (H.265), gets this track instead: the feed's packets decoded in a worker
thread, each such viewer with its own decoder and (in its RTP sender) encoder.
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.codeccontext import VideoCodecContext

from gtvision.web.livefeed import CameraFeed, PacketTrack


class DecodedTrack(MediaStreamTrack):
    """Fallback for a viewer without H.264: the feed decoded here, encoded by its sender (VP8)."""

    kind = "video"

    def __init__(self, feed: CameraFeed) -> None:
        super().__init__()
        self._source = PacketTrack(feed)
        decoder = av.CodecContext.create(feed.codec, "r")
        assert isinstance(decoder, VideoCodecContext), feed.codec
        self._decoder = decoder
        if feed.extradata:
            self._decoder.extradata = feed.extradata
        self._time_base = feed.time_base
        self._frames: list[av.VideoFrame] = []

    def _decode(self, packet: av.Packet[Any]) -> list[av.VideoFrame]:
        frames: list[av.VideoFrame] = []
        for frame in self._decoder.decode(packet):
            frame.time_base = self._time_base
            frames.append(frame)
        return frames

    async def recv(self) -> av.VideoFrame:
        """The next decoded frame (decoding runs in a worker thread)."""
        loop = asyncio.get_running_loop()
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            packet = await self._source.recv()
            try:
                self._frames = await loop.run_in_executor(None, self._decode, packet)
            except av.FFmpegError:  # a damaged packet: skip it, the next keyframe repairs
                continue
        return self._frames.pop(0)

    def stop(self) -> None:
        """The viewer left."""
        super().stop()
        self._source.stop()
