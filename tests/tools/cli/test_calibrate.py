"""``calibrate --responses``: evaluate reports read back into typed evidence, older reports included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.common.schemas import CandidateEvidence
from services.decision.evidence import candidate_of
from services.decision.fitting import redecide
from services.decision.rule import DecisionParams, geometric_confidence
from tools.cli.calibrate import read_responses
from tools.cli.collect import answer_record, from_record


def _checked(object_id: str, similarity: float, inliers: int) -> dict[str, Any]:
    """A row as gateways before the typed evidence wrote it: no ``score``, geometric keys only when checked."""
    return {
        "object_id": object_id,
        "similarity": similarity,
        "embedding_rank": 1,
        "votes": 0,
        "inliers": inliers,
        "good_matches": inliers * 2,
        "inlier_ratio": 0.5,
        "spread": 0.3,
        "interior_inliers": inliers,
        "fine": False,
        "verified": inliers >= 8,
        "reason": None,
        "query_box": None,
    }


def _report(tmp_path: Path, folder: str, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / f"{folder}.json"
    path.write_text(json.dumps({"meta": {"photo_folder": f"../data/{folder}/pictures"}, "answers": {"full": records}}))
    return path


def _record(name: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    return {"photo": name, "shown": ["a"], "expected": ["a"], "matches": [["a", 0.9]], "candidates": candidates}


def test_responses_of_several_sets_are_read_together_and_named_by_their_folder(tmp_path: Path) -> None:
    def report(folder: str, names: list[str]) -> Path:
        return _report(tmp_path, folder, [_record(n, [_checked("a", 0.8, 40)]) for n in names])

    photos, answers, sets = read_responses([report("museum-a", ["x__1", "x__2"]), report("museum-b", ["y__1"])])

    assert [p.name for p in photos] == ["x__1", "x__2", "y__1"] and len(answers) == 3
    assert sets == {"x__1": "museum-a", "x__2": "museum-a", "y__1": "museum-b"}
    with pytest.raises(ValueError, match="two response files"):
        read_responses([report("museum-a", ["x__1"]), report("museum-c", ["x__1"])])


def test_an_older_report_is_read_into_typed_evidence_and_redecided(tmp_path: Path) -> None:
    rows = [_checked("a", 0.9, 60), _checked("b", 0.8, 3), {"object_id": "c", "similarity": 0.7}]
    path = _report(tmp_path, "museum-a", [_record("x__1", rows)])

    _, [answer], _ = read_responses([path])
    [full] = redecide([answer.candidates], DecisionParams(), use_geometric=True)

    assert all(isinstance(r, CandidateEvidence) for r in answer.candidates)
    assert answer.candidates[1].checked and not answer.candidates[2].checked
    assert answer.candidates[0].score is None  # not sent by older gateways; the decision does not read it
    [(object_id, confidence)] = full.matches
    rebuilt = candidate_of(answer.candidates[0]).geometric
    assert object_id == "a" and rebuilt is not None and rebuilt.inliers == 60
    assert confidence == pytest.approx(geometric_confidence(rebuilt, 0.9, DecisionParams()))


def test_a_saved_answer_reads_back_as_the_same_answer() -> None:
    photo, answer = from_record(_record("x__1", [_checked("a", 0.9, 60), {"object_id": "c", "similarity": 0.7}]))

    record = answer_record(photo, answer)

    assert from_record(json.loads(json.dumps(record))) == (photo, answer)


def test_a_report_row_that_breaks_the_contract_is_refused(tmp_path: Path) -> None:
    path = _report(tmp_path, "museum-a", [_record("x__1", [{"object_id": "a", "similarity": "high"}])])

    with pytest.raises(ValueError, match="similarity"):
        read_responses([path])
