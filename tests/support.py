"""Helpers shared by test modules (not fixtures: those live in conftest files)."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

HELD_OUT = "mcv_bbdd_00163"
"""An artwork left out of the built collection, added through the admin API by a test."""
API_KEY = "integration-test-key"
SMALL_COLLECTION = 20
"""Artworks in the small snapshot that fault and data-safety tests each copy and serve with their own stack."""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_labels(root: Path) -> dict[str, list[str]]:
    """Photo name → object ids it shows (empty: none of the collection)."""
    with open(root / "labels.csv", newline="") as handle:
        return {
            row["picture_image_path"]: [p.rsplit(".", 1)[0] for p in row["painting_image_paths"].split(";") if p]
            for row in csv.DictReader(handle)
        }
