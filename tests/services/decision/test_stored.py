"""The decision parameters a snapshot holds: defaults when never calibrated, a round trip, clear errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from services.decision.rule import DecisionParams
from services.decision.stored import load_params, save_params


def test_a_snapshot_never_calibrated_gets_the_defaults(tmp_path: Path) -> None:
    assert load_params(tmp_path) == DecisionParams()


def test_saved_parameters_are_loaded_back(tmp_path: Path) -> None:
    fitted = dataclasses.replace(DecisionParams(), threshold=0.8, geo_weights=(1.0, 2.0, 3.0, 4.0), fitted_on={"n": 3})

    path = save_params(tmp_path, fitted)

    assert path == tmp_path / "decision.json"
    assert json.loads(path.read_text())["threshold"] == 0.8
    assert load_params(tmp_path) == fitted


def test_a_file_written_before_the_decision_package_is_still_read(tmp_path: Path) -> None:
    # what ``calibrate`` wrote before: the dataclass's fields as JSON, indented, keys sorted
    legacy = {"threshold": 0.74, "min_inliers": 14, "geo_weights": [2.0, 0.0, 0.5, 1.0], "fitted_on": {"photos": 9}}
    (tmp_path / "decision.json").write_text(json.dumps(legacy, indent=2, sort_keys=True))

    params = load_params(tmp_path)

    assert params.threshold == 0.74 and params.min_inliers == 14 and params.geo_weights == (2.0, 0.0, 0.5, 1.0)
    assert params.emb_weights == DecisionParams().emb_weights


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"treshold": 0.9}', "treshold"), ('{"geo_weights": ["a", 1, 2, 3]}', "decision.json"), ("[1]", "JSON object")],
)
def test_a_bad_file_is_refused_with_a_message_naming_it(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "decision.json").write_text(text)

    with pytest.raises(ValueError, match=message):
        load_params(tmp_path)
