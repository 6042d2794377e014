"""Capped exponential backoff with jitter, shared by the Postgres sink and the outbox relay."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """``next()`` returns ``base, 2·base, 4·base … cap`` seconds (±20 % jitter); ``reset()``."""

    base_s: float = 0.2
    cap_s: float = 30.0
    attempt: int = 0

    def next(self) -> float:
        """Delay before the next attempt."""
        delay = min(self.cap_s, self.base_s * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        jitter: float = random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not crypto)
        return float(delay * jitter)

    def reset(self) -> None:
        """Start again from ``base_s`` after a success."""
        self.attempt = 0
