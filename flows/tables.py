"""What flows read from the database while they run: city time zones and camera zones/lines.

Each table is a :class:`~gtvision.operators.refresh.Reloading` value: loaded on first use,
reloaded in the background every ``GTV_HOTLIST_REFRESH_S`` seconds, the last good value kept
while the database is away. Without ``GTV_DATABASE_URL`` (replays) defaults apply.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from gtvision.config import Settings
from gtvision.operators.geometry import ZONE_LIST, Line, Zone
from gtvision.operators.refresh import Reloading

log = logging.getLogger(__name__)
_CITY_ZONES = "SELECT id, timezone FROM cities"
_CAMERA_ZONES = "SELECT id, zones FROM cameras"


def _zone(name: str, default: ZoneInfo, city_id: int) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("city %s: unknown time zone %r, using %s", city_id, name, default.key)
        return default


class CityTimeZones:
    """The IANA time zone of each city (``cities.timezone``; ``GTV_TIMEZONE`` otherwise)."""

    def __init__(self, settings: Settings) -> None:
        self.default = ZoneInfo(settings.timezone)
        dsn = settings.database_url
        self._zones: Reloading[dict[int, ZoneInfo]] | None = None
        if dsn:
            self._zones = Reloading(
                lambda: self._load(dsn), {}, settings.hotlist_refresh_s, "city time zones"
            )

    def _load(self, dsn: str) -> dict[int, ZoneInfo]:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=5) as conn:
            rows = conn.execute(_CITY_ZONES).fetchall()
        return {int(cid): _zone(str(name), self.default, int(cid)) for cid, name in rows}

    def __call__(self, city_id: int) -> ZoneInfo:
        """The time zone of ``city_id``."""
        known = self._zones.get() if self._zones is not None else {}
        return known.get(city_id, self.default)


def _shapes(camera_id: int, raw: object) -> tuple[Zone | Line, ...]:
    try:
        return tuple(ZONE_LIST.validate_python(raw or []))
    except ValidationError as err:
        log.error("camera %s: invalid zones, ignoring them: %s", camera_id, err)
        return ()


class CameraZones:
    """Zones and lines of each camera (``cameras.zones``; none for unknown cameras)."""

    def __init__(self, settings: Settings) -> None:
        dsn = settings.database_url
        self._zones: Reloading[dict[int, tuple[Zone | Line, ...]]] | None = None
        if dsn:
            self._zones = Reloading(
                lambda: self._load(dsn), {}, settings.hotlist_refresh_s, "camera zones"
            )

    @staticmethod
    def _load(dsn: str) -> dict[int, tuple[Zone | Line, ...]]:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=5) as conn:
            rows = conn.execute(_CAMERA_ZONES).fetchall()
        return {int(cid): _shapes(int(cid), raw) for cid, raw in rows}

    def __call__(self, camera_id: int) -> tuple[Zone | Line, ...]:
        """The zones and lines of ``camera_id``."""
        known = self._zones.get() if self._zones is not None else {}
        return known.get(camera_id, ())
