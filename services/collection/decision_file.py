"""The snapshot's ``decision.json``: the decision parameters ``calibrate`` fitted, as a raw JSON object.

This module owns the file (where it is, how it is read and written, atomically); what the mapping means belongs to
the decision package, which turns it into parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.collection.layout import Snapshot
from services.common.atomic import atomic_write_bytes


class DecisionFileError(ValueError):
    """``decision.json`` exists but is not a JSON object; the message names the file."""


def read_decision(snapshot: Path) -> dict[str, Any] | None:
    """The mapping in ``<snapshot>/decision.json``, or None when the snapshot has none (never calibrated).

    Raises:
        DecisionFileError: the file is unreadable, not JSON, or not a JSON object.
    """
    path = Snapshot(Path(snapshot)).decision_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DecisionFileError(f"{path}: unreadable ({exc})") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecisionFileError(f"{path}: not JSON ({exc}); run `artwork-matcher calibrate` again") from exc
    if not isinstance(raw, dict):
        raise DecisionFileError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    return raw


def write_decision(snapshot: Path, mapping: Mapping[str, Any]) -> Path:
    """Replace ``<snapshot>/decision.json`` atomically with ``mapping`` (indented, keys sorted); returns its path."""
    path = Snapshot(Path(snapshot)).decision_file
    atomic_write_bytes(path, json.dumps(dict(mapping), indent=2, sort_keys=True).encode("utf-8"))
    return path
