"""Answers as ``evaluate`` collects and saves them: a near-duplicate partner is kept apart from the matches."""

from __future__ import annotations

import json

from services.common.schemas import IdentifyDebug, IdentifyResponse, Match, Timing, VerificationMethod
from services.decision.metrics import LabelledPhoto
from tools.cli.collect import answer_record, from_record, to_answer


def match(object_id: str, confidence: float, **flags) -> Match:
    return Match(
        object_id=object_id,
        name="",
        artist="",
        year="",
        confidence=confidence,
        similarity_score=0.9,
        geometric_score=0.5,
        verification_method=VerificationMethod.GEOMETRIC,
        image_url=f"/objects/{object_id}/image",
        **flags,
    )


def test_a_near_duplicate_partner_is_recorded_apart_from_the_matches_and_read_back():
    matches = [match("A", 0.9, near_duplicates=["B"]), match("B", 0.8, near_duplicate_of="A"), match("C", 0.7)]
    body = IdentifyResponse(
        success=True,
        match=matches[0],
        matches=matches,
        alternatives=None,
        message=None,
        timing=Timing(embedding_ms=1.0, search_ms=1.0, geometric_ms=1.0, total_ms=3.0),
        debug=IdentifyDebug(regions=1, candidates=[], threshold=0.0),
        geometric_skipped=False,
        geometric_skip_reason=None,
        degraded=False,
        degradation_reason=None,
    )

    answer = to_answer(body, 5.0)

    assert answer.matches == (("A", 0.9), ("C", 0.7))
    assert answer.near_duplicates == (("A", "B"),)
    photo = LabelledPhoto("p.jpg", frozenset({"B"}), frozenset({"B"}))
    record = json.loads(json.dumps(answer_record(photo, answer)))
    assert record["near_duplicates"] == [["A", "B"]]
    assert from_record(record) == (photo, answer)
    del record["near_duplicates"]  # a report of an older version
    assert from_record(record)[1].near_duplicates == ()
