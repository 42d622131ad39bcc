"""Shared test set-up: quiet loggers, the dev data location, one numeric thread."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Tracebacks the asyncio logger prints at interpreter exit would land after pytest's summary line.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)
logging.getLogger("httpx").setLevel(logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
MUSEUM_DEV = REPO.parent / "shared" / "data" / "museum-dev"


@pytest.fixture(scope="session")
def museum_dev() -> Path:
    """The real museum photos (read in place, never copied into the repository)."""
    if not (MUSEUM_DEV / "labels.csv").exists():
        pytest.fail(f"the museum-dev data set is missing at {MUSEUM_DEV}; CI provides it beside the repository")
    return MUSEUM_DEV
