"""Tracks of plate boxes: a plate is followed by what it reads, not only by where its box is.

Box-overlap trackers (ByteTrack) need boxes that overlap from one analysed frame to the next.
A plate box is small and, at the analysis rate (5 fps), moves more than its own height between
frames as the vehicle comes closer: its IoU with the previous box is often near 0 and the
tracker never confirms the track. But a plate carries its identity. Per camera, a read joins
the open track whose text is within ``max_distance`` of its own (OCR-confusion-aware distance,
``O``/``0`` costs 0.5) -- or whose last box overlaps it (IoU >= ``join_iou``) within
``iou_window_s``, which keeps a badly misread frame on its track -- the rule that groups reads
into vehicle passes (:mod:`gtvision.operators.passes`, same :class:`PassConfig` values). A
track takes each read of a frame at most once (two plates in one frame are two vehicles); a
track not read for ``gap_s`` of event time is closed. Each track keeps its most confident read
as its text.

The state is plain data (a recovery snapshot); ids count up per camera from 1, so the same
frames give the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gtvision.events import Box
from gtvision.operators.lpr.ocrdist import ocr_distance
from gtvision.operators.passes import PassConfig, join_key


@dataclass(slots=True)
class PlateTrack:
    """One open track: where and when it was last read, and its most confident text."""

    track_id: int
    last_s: float
    box: Box
    text: str
    score: float
    last_text: str = ""


@dataclass(slots=True)
class PlateTracks:
    """The open plate tracks of one camera."""

    next_id: int = 1
    open: dict[int, PlateTrack] = field(default_factory=dict)

    def update(
        self,
        ts_s: float,
        boxes: tuple[Box, ...],
        texts: tuple[str, ...],
        scores: tuple[float, ...],
        config: PassConfig,
    ) -> tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...]]:
        """Track one frame's reads: their track ids, the tracks' texts, the tracks held.

        ``held``: open tracks not read in this frame (a missed read; still in view).
        """
        self.open = {k: t for k, t in self.open.items() if ts_s - t.last_s <= config.gap_s}
        scores = scores or tuple(0.0 for _ in boxes)
        found: list[PlateTrack | None] = [None] * len(boxes)
        taken: set[int] = set()
        for i in sorted(range(len(boxes)), key=lambda k: (-scores[k], k)):  # surest reads first
            match = found[i] = self._match(ts_s, boxes[i], texts[i], taken, config)
            if match is not None:
                taken.add(match.track_id)
        ids = [0] * len(boxes)
        for i, track in enumerate(found):  # new tracks numbered in the frame's order
            box, text, score = boxes[i], texts[i], scores[i]
            if track is None:
                track = PlateTrack(self.next_id, ts_s, box, text, score, text)
                self.open[track.track_id] = track
                self.next_id += 1
                taken.add(track.track_id)
            elif score > track.score:
                track.text, track.score = text, score
            track.last_s, track.box, track.last_text = ts_s, box, text
            ids[i] = track.track_id
        held = tuple(sorted(set(self.open) - taken))
        return tuple(ids), tuple(self.open[t].text for t in ids), held

    def _match(
        self, ts_s: float, box: Box, text: str, taken: set[int], config: PassConfig
    ) -> PlateTrack | None:
        best: tuple[float, float, PlateTrack] | None = None
        for track in self.open.values():
            if track.track_id in taken:
                continue
            dist = min(ocr_distance(text, track.text), ocr_distance(text, track.last_text))
            iou = box.iou(track.box)
            key = join_key(dist, iou, ts_s - track.last_s <= config.iou_window_s, config)
            if key is None:
                continue
            if best is None or key < best[:2]:
                best = (*key, track)
        return best[2] if best is not None else None
