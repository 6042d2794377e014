"""Which cameras a deployment reads: the ``cameras`` table and ``GTV_RTSP_URLS``.

A :class:`CameraDirectory` returns the current camera set; the RTSP source polls it (every
``poll_s``) so cameras added, removed or edited through the API reach a running flow within
seconds. :class:`CameraRegistry` keeps the latest :class:`CameraSpec` of each camera for the
operators of this process (motion settings, masks, analysis rate).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import ValidationError

from gtvision.operators.motion import MotionSettings

log = logging.getLogger(__name__)
ENV_CAMERA_BASE_ID = 1_000_000
_SELECT = (
    "SELECT id, city_id, name, stream_url, analysis_fps, keyframes_only, motion_enabled, "
    "motion_settings, masks FROM cameras WHERE enabled ORDER BY id"
)


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One camera to read and how to analyse it."""

    camera_id: int
    city_id: int
    name: str
    url: str
    analysis_fps: float = 5.0
    keyframes_only: bool = False
    motion: MotionSettings = field(default_factory=MotionSettings)
    motion_enabled: bool = True
    #: networks the URL's address must be in, checked at every connect
    #: (``GTV_CAMERA_ALLOW_CIDRS`` for cameras of the table); ``None``: not checked
    allow: tuple[str, ...] | None = None


class CameraDirectory(Protocol):
    """Source of the current camera set (raises when it cannot be read right now)."""

    def cameras(self) -> list[CameraSpec]:
        """Every camera that should be read now."""
        ...


@dataclass(frozen=True)
class StaticCameras:
    """A fixed list (``GTV_RTSP_URLS``, tests)."""

    specs: tuple[CameraSpec, ...]

    def cameras(self) -> list[CameraSpec]:
        """The fixed list."""
        return list(self.specs)


def env_cameras(urls: Sequence[str], analysis_fps: float = 5.0) -> StaticCameras:
    """Cameras of ``GTV_RTSP_URLS``: ids ``1000001, 1000002, …`` in city 0, named ``env-N``."""
    return StaticCameras(
        tuple(
            CameraSpec(
                camera_id=ENV_CAMERA_BASE_ID + i,
                city_id=0,
                name=f"env-{i}",
                url=url,
                analysis_fps=analysis_fps,
            )
            for i, url in enumerate(urls, start=1)
        )
    )


def spec_from_row(row: Sequence[Any]) -> CameraSpec:
    """A spec from a ``cameras`` row (``_SELECT`` column order); bad motion JSON → defaults."""
    cam_id, city_id, name, url, fps, kf_only, motion_on, settings, masks = row
    try:
        motion = MotionSettings.model_validate(
            {**(settings or {}), "masks": masks or [], "enabled": bool(motion_on)}
        )
    except ValidationError as err:
        log.error("camera %s: invalid motion settings or masks, using defaults: %s", cam_id, err)
        motion = MotionSettings(enabled=bool(motion_on))
    return CameraSpec(
        camera_id=int(cam_id),
        city_id=int(city_id),
        name=str(name),
        url=str(url),
        analysis_fps=float(fps),
        keyframes_only=bool(kf_only),
        motion=motion,
        motion_enabled=bool(motion_on),
    )


class DbCameras:
    """Enabled cameras of the ``cameras`` table, plus fixed extra cameras.

    Table cameras carry ``allow`` (``GTV_CAMERA_ALLOW_CIDRS``): their URLs were written through
    the API, so the reader checks their address at every connect. The extra cameras
    (``GTV_RTSP_URLS``) are the operator's own configuration and keep theirs.
    """

    def __init__(
        self, dsn: str, extra: Sequence[CameraSpec] = (), *, allow: Sequence[str] | None = None
    ) -> None:
        self._dsn = dsn
        self._extra = list(extra)
        self._allow = None if allow is None else tuple(allow)

    def cameras(self) -> list[CameraSpec]:
        """Query the table (a short-lived connection: one query every poll)."""
        import psycopg

        with psycopg.connect(self._dsn, connect_timeout=3) as conn:
            rows = conn.execute(_SELECT).fetchall()
        specs = [spec_from_row(r) for r in rows]
        if self._allow is not None:
            specs = [replace(s, allow=self._allow) for s in specs]
        return specs + self._extra


class CameraRegistry:
    """Latest spec of every camera read by this process (thread-safe, read by operators)."""

    def __init__(self) -> None:
        self._specs: dict[int, CameraSpec] = {}
        self._lock = threading.Lock()

    def update(self, specs: Sequence[CameraSpec]) -> None:
        """Add or replace specs."""
        with self._lock:
            for spec in specs:
                self._specs[spec.camera_id] = spec

    def remove(self, camera_id: int) -> None:
        """Forget a camera."""
        with self._lock:
            self._specs.pop(camera_id, None)

    def get(self, camera_id: int) -> CameraSpec | None:
        """The camera's spec, if known."""
        return self._specs.get(camera_id)

    def motion_settings(self, camera_id: int) -> MotionSettings:
        """Motion settings of ``camera_id`` (defaults for unknown cameras)."""
        spec = self._specs.get(camera_id)
        return spec.motion if spec is not None else _DEFAULT_MOTION


_DEFAULT_MOTION = MotionSettings()


def find_camera(dsn: str, name: str, city_id: int | None = None) -> CameraSpec:
    """The configured camera called ``name`` (in ``city_id`` when names repeat across cities)."""
    import psycopg

    sql = _SELECT.replace(" WHERE enabled ", " WHERE name = %s ")
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        rows = conn.execute(sql, (name,)).fetchall()
    specs = [spec_from_row(r) for r in rows]
    if city_id is not None:
        specs = [s for s in specs if s.city_id == city_id]
    if not specs:
        msg = f"no camera named {name!r}" + (f" in city {city_id}" if city_id is not None else "")
        raise LookupError(msg)
    if len(specs) > 1:
        cities = ", ".join(str(s.city_id) for s in specs)
        msg = f"camera name {name!r} exists in several cities ({cities}): pass --city-id"
        raise LookupError(msg)
    return specs[0]
