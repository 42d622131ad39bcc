"""Where the parts of a collection snapshot live: one directory, the same names for every command and service.

A snapshot directory holds::

    search.npz      vectors, ids, catalogue metadata and the model stamp (search service, ``index build``)
    features.npz    reference local features (geometric service, ``index build``)
    images/         reference images, one ``<object_id><suffix>`` file each (gateway, ``index build``)
    decision.json   decision parameters fitted by ``calibrate`` (optional; the gateway reads it at start-up)
    report.json     the last collection report of ``index doctor`` or ``index build`` (optional; the curator page
                    shows it, ``/identify`` reads its near-duplicate pairs at start-up)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SEARCH_FILE = "search.npz"
"""Vectors, ids, catalogue metadata and the model stamp (see :mod:`services.collection.vector_file`)."""
FEATURES_FILE = "features.npz"
"""Reference local features (see :mod:`services.collection.features`)."""
IMAGES_DIR = "images"
"""Reference images, one file per object (see :mod:`services.collection.images`)."""
DECISION_FILE = "decision.json"
"""Decision parameters fitted by ``calibrate`` (see :mod:`services.collection.decision_file`)."""
REPORT_FILE = "report.json"
"""The last collection report of ``index doctor`` or ``index build`` (see :mod:`services.collection.report_file`)."""
SNAPSHOT_ENV = "ARTWORK_MATCHER_SNAPSHOT"
"""Environment variable naming the default snapshot directory."""


def default_snapshot_dir() -> Path:
    """``$ARTWORK_MATCHER_SNAPSHOT``, else ``$XDG_DATA_HOME/artwork-matcher/snapshot``
    (``~/.local/share/artwork-matcher/snapshot``)."""
    explicit = os.environ.get(SNAPSHOT_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "artwork-matcher" / "snapshot"


@dataclass(frozen=True)
class Snapshot:
    """The paths of one snapshot directory (nothing is read or created by building one)."""

    root: Path

    @property
    def search_file(self) -> Path:
        """The vector index file."""
        return self.root / SEARCH_FILE

    @property
    def features_file(self) -> Path:
        """The reference feature file."""
        return self.root / FEATURES_FILE

    @property
    def images_dir(self) -> Path:
        """The folder of reference images."""
        return self.root / IMAGES_DIR

    @property
    def decision_file(self) -> Path:
        """The calibrated decision parameters."""
        return self.root / DECISION_FILE

    @property
    def report_file(self) -> Path:
        """The last collection report (``index doctor``, ``index build``)."""
        return self.root / REPORT_FILE
