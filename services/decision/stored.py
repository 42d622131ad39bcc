"""The decision parameters a snapshot holds: read at the gateway's start-up, written by ``calibrate``.

The file itself (where it lives, atomic replacement) belongs to the collection package
(:mod:`services.collection.decision_file`); this module turns its mapping into :class:`DecisionParams` and back.
"""

from __future__ import annotations

from pathlib import Path

from services.collection.decision_file import read_decision, write_decision
from services.decision.rule import DecisionParams


def load_params(snapshot: Path) -> DecisionParams:
    """The parameters fitted for ``snapshot``, or the defaults when it was never calibrated.

    Raises:
        ValueError: the file is not a JSON object of decision parameters; the message names the file.
    """
    raw = read_decision(snapshot)
    if raw is None:
        return DecisionParams()
    try:
        return DecisionParams.from_mapping(raw)
    except ValueError as exc:
        raise ValueError(f"{snapshot}: decision.json: {exc}; run `artwork-matcher calibrate` again") from exc


def save_params(snapshot: Path, params: DecisionParams) -> Path:
    """Store ``params`` as the snapshot's decision (replacing the file atomically); returns the file's path."""
    return write_decision(snapshot, params.to_mapping())
