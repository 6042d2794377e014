"""What flows read from the database while they run: city time zones (and camera zones).

Each table is a :class:`~gtvision.operators.refresh.Reloading` value: loaded on first use,
reloaded in the background every ``GTV_HOTLIST_REFRESH_S`` seconds, the last good value kept
while the database is away. Without ``GTV_DATABASE_URL`` (replays) defaults apply.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gtvision.config import Settings
from gtvision.operators.refresh import Reloading

log = logging.getLogger(__name__)
_CITY_ZONES = "SELECT id, timezone FROM cities"


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
