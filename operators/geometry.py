"""Zones and lines of a camera picture (``cameras.zones``), in normalised coordinates.

One validated value object per concept:

* :class:`Zone`: a named polygon, ``{"kind": "zone", "name": "gate", "points": [[x, y], …]}``
  with 3..64 points, each coordinate in 0..1 (``[0, 0]`` top left, ``[1, 1]`` bottom right of the
  picture, whatever its resolution), and a non-zero area;
* :class:`Line`: a named, **directed** segment, ``{"kind": "line", "name": "entrance",
  "points": [[x1, y1], [x2, y2]]}``. Crossing it is ``in`` or ``out``: standing on the first
  point and looking at the second, ``in`` is a crossing from the right-hand side to the
  left-hand side, ``out`` the other way (supervision's ``LineZone`` convention);
* :data:`ZoneList`: what ``cameras.zones`` holds, names unique per camera.

The cameras API validates ``zones`` with :data:`ZONE_LIST`; flows read them from the table
(:meth:`gtvision.flows.context.FlowContext.zones`) or take them as parameters.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

Point = tuple[float, float]
_NAME = r"^[A-Za-z0-9_.\- ]{1,64}$"


def _unit(points: tuple[Point, ...]) -> tuple[Point, ...]:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            msg = f"coordinates are normalised to 0..1 (fraction of width/height), got {[x, y]}"
            raise ValueError(msg)
    return points


class Zone(BaseModel):
    """A named polygon of the picture."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["zone"] = "zone"
    name: str = Field(pattern=_NAME)
    points: tuple[Point, ...] = Field(min_length=3, max_length=64)

    @field_validator("points")
    @classmethod
    def _polygon(cls, value: tuple[Point, ...]) -> tuple[Point, ...]:
        _unit(value)
        xs, ys = np.array([p[0] for p in value]), np.array([p[1] for p in value])
        area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
        if area < 1e-6:
            msg = f"a zone polygon needs a non-zero area, got points {[list(p) for p in value]}"
            raise ValueError(msg)
        return value

    def pixels(self, width: int, height: int) -> NDArray[np.int64]:
        """The polygon in pixels of a ``width``×``height`` picture."""
        return np.array([[round(x * width), round(y * height)] for x, y in self.points], np.int64)


class Line(BaseModel):
    """A named, directed segment of the picture (first point → second point)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["line"] = "line"
    name: str = Field(pattern=_NAME)
    points: tuple[Point, Point]

    @field_validator("points")
    @classmethod
    def _segment(cls, value: tuple[Point, Point]) -> tuple[Point, Point]:
        _unit(value)
        (x1, y1), (x2, y2) = value
        if abs(x1 - x2) < 1e-6 and abs(y1 - y2) < 1e-6:
            msg = f"a line needs two different points, got {[list(p) for p in value]}"
            raise ValueError(msg)
        return value

    def pixels(self, width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Start and end in pixels of a ``width``×``height`` picture."""
        (x1, y1), (x2, y2) = self.points
        return (x1 * width, y1 * height), (x2 * width, y2 * height)


Shape = Annotated[Zone | Line, Field(discriminator="kind")]


def _unique(shapes: list[Zone | Line]) -> list[Zone | Line]:
    names = [s.name for s in shapes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        msg = f"zone and line names must be unique per camera, repeated: {dup}"
        raise ValueError(msg)
    return shapes


ZoneList = Annotated[list[Shape], Field(max_length=32), AfterValidator(_unique)]
ZONE_LIST: TypeAdapter[list[Zone | Line]] = TypeAdapter(ZoneList)


def zones_of(shapes: list[Zone | Line]) -> list[Zone]:
    """The polygons of ``shapes``."""
    return [s for s in shapes if isinstance(s, Zone)]


def lines_of(shapes: list[Zone | Line]) -> list[Line]:
    """The lines of ``shapes``."""
    return [s for s in shapes if isinstance(s, Line)]


def _side(line: Line, x: float, y: float) -> float:
    (ax, ay), (bx, by) = line.points
    return (bx - ax) * (y - ay) - (by - ay) * (x - ax)  # > 0: right-hand side (y points down)


def crossing(line: Line, start: Point, end: Point) -> Literal["in", "out"] | None:
    """How the segment ``start → end`` (normalised) crosses ``line``, if it does."""
    s0, s1 = _side(line, *start), _side(line, *end)
    if s0 == 0 or s1 == 0 or (s0 > 0) == (s1 > 0):
        return None
    (ax, ay), (bx, by) = line.points
    t0, t1 = _cross_side(start, end, (ax, ay)), _cross_side(start, end, (bx, by))
    if t0 != 0 and t1 != 0 and (t0 > 0) == (t1 > 0):
        return None  # crosses the line's extension, not the segment
    return "in" if s0 > 0 else "out"


def _cross_side(start: Point, end: Point, p: Point) -> float:
    return (end[0] - start[0]) * (p[1] - start[1]) - (end[1] - start[1]) * (p[0] - start[0])
