"""Where the collection snapshot lives, one documented default for every command and service."""

from __future__ import annotations

import os
from pathlib import Path

SEARCH_FILE = "search.npz"
"""Vectors, ids and catalogue metadata (written by the search service and ``index build``)."""
FEATURES_FILE = "features.npz"
"""Reference local features (written by the geometric service and ``index build``)."""
IMAGES_DIR = "images"
"""Reference images, one file per object, served by the gateway."""
CALIBRATION_FILE = "decision.json"
"""Decision parameters fitted by ``calibrate`` (optional)."""


def default_snapshot_dir() -> Path:
    """``$ARTWORK_MATCHER_SNAPSHOT``, else ``$XDG_DATA_HOME/artwork-matcher/snapshot``
    (``~/.local/share/artwork-matcher/snapshot``)."""
    explicit = os.environ.get("ARTWORK_MATCHER_SNAPSHOT")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "artwork-matcher" / "snapshot"
