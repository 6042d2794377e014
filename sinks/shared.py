"""One object per process shared by the sink partitions of its workers.

The continuous recorder and the clip service work on the process's packet rings
(:data:`gtvision.sinks.clips.RINGS`), so a process needs one of each, however many Bytewax
workers (sink partitions) it runs. :class:`PerProcess` makes the object on the first
``acquire`` and closes it when the last user releases it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """The shared ``T`` of this process: made by its first user, closed by its last."""

    def __init__(self, close: Callable[[T], None]) -> None:
        self._close = close
        self._lock = threading.Lock()
        self._value: T | None = None
        self._users = 0

    def acquire(self, make: Callable[[], T]) -> tuple[T, Callable[[], None]]:
        """The shared value (made now if there is none) and this user's release."""
        with self._lock:
            if self._value is None:
                self._value = make()
            self._users += 1
            value = self._value
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._users -= 1
                last = self._value if self._users == 0 else None
                if last is not None:
                    self._value = None
            if last is not None:
                self._close(last)

        return value, release
