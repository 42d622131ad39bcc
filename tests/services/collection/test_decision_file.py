"""The snapshot's decision.json: a raw JSON object, read when present, replaced atomically."""

from __future__ import annotations

import json

import pytest

from services.collection.decision_file import DecisionFileError, read_decision, write_decision


def test_a_snapshot_never_calibrated_has_no_decision(tmp_path):
    assert read_decision(tmp_path) is None
    assert read_decision(tmp_path / "absent") is None


def test_a_written_decision_reads_back_and_is_stable_text(tmp_path):
    mapping = {"threshold": 0.42, "geo_weights": [1.0, 2.0], "fitted_on": {"photos": 12}}

    path = write_decision(tmp_path / "snapshot", mapping)

    assert path == tmp_path / "snapshot" / "decision.json"
    assert read_decision(tmp_path / "snapshot") == mapping
    assert path.read_text() == json.dumps(mapping, indent=2, sort_keys=True)
    assert [p.name for p in path.parent.iterdir()] == ["decision.json"]  # no temporary file left


def test_a_rewrite_replaces_the_whole_file(tmp_path):
    write_decision(tmp_path, {"threshold": 0.5, "old_key": 1})
    write_decision(tmp_path, {"threshold": 0.6})

    assert read_decision(tmp_path) == {"threshold": 0.6}


@pytest.mark.parametrize(("text", "message"), [("{not json", "not JSON"), ("[1, 2]", "expected a JSON object")])
def test_a_broken_file_is_an_error_naming_it(tmp_path, text, message):
    (tmp_path / "decision.json").write_text(text)

    with pytest.raises(DecisionFileError, match=message) as caught:
        read_decision(tmp_path)
    assert "decision.json" in str(caught.value)
