"""A value reloaded from a database in a background thread, for operators of a running flow.

The first ``get()`` loads synchronously; later calls return the current value at once and, every
``refresh_s`` seconds, start one background reload. A failed reload is logged and the last good
value stays in use (``initial`` until a load succeeds), so a database restart never stops a flow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import psycopg

log = logging.getLogger(__name__)
T = TypeVar("T")


class Reloading(Generic[T]):
    """``load()``'s latest result, refreshed every ``refresh_s`` seconds off the caller's thread."""

    def __init__(
        self,
        load: Callable[[], T],
        initial: T,
        refresh_s: float,
        what: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._value = initial
        self.refresh_s = refresh_s
        self.what = what
        self.monotonic = monotonic
        self._loaded_at: float | None = None
        self._lock = threading.Lock()
        self._loading = False

    def refresh(self) -> None:
        """Reload now (blocking); keep the previous value if the load fails."""
        try:
            fresh: T | None = self._load()
        except (psycopg.Error, OSError) as err:
            log.warning("reloading %s failed, keeping the previous value: %s", self.what, err)
            fresh = None
        with self._lock:
            if fresh is not None:
                self._value = fresh
            self._loaded_at = self.monotonic()
            self._loading = False

    def get(self) -> T:
        """The current value (first call loads; stale values trigger a background reload)."""
        if self._loaded_at is None:
            self.refresh()
        elif self.monotonic() - self._loaded_at >= self.refresh_s:
            with self._lock:
                start = not self._loading
                self._loading = True
            if start:
                name = f"reload-{self.what}"
                threading.Thread(target=self.refresh, name=name, daemon=True).start()
        return self._value
