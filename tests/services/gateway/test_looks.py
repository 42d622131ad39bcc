"""The closer look at located paintings: which are looked at, what is asked, how results join the answer."""

from __future__ import annotations

import msgspec

from services.common import errors
from services.common.schemas import LocatedPainting, MatchResult
from services.decision.rule import Candidate
from services.gateway.looks import PaintingLooks, quad_area, unexplained
from tests.services.gateway.backends import Backends, error, rejected, verified
from tests.services.gateway.test_pipeline import _catalogue, identify

BIG = [0.05, 0.05, 0.7, 0.9]
"""A painting filling over half of the photo."""
SMALL = [0.75, 0.3, 0.9, 0.45]
"""A small painting (2.25 % of the photo)."""
OTHER_SMALL = [0.75, 0.6, 0.9, 0.75]


def located(box: list[float]) -> LocatedPainting:
    x0, y0, x1, y1 = box
    return LocatedPainting(corners=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]], box=box, score=0.9)


def test_quad_area_is_the_share_of_the_photo():
    assert abs(quad_area(located(SMALL)) - 0.0225) < 1e-9


def test_only_small_paintings_no_verified_box_covers_are_looked_at():
    covered = Candidate("seen", 0.5, geometric=_result(verified("seen", box=[0.74, 0.29, 0.91, 0.46])))
    paintings = [located(BIG), located(SMALL), located(OTHER_SMALL)]

    chosen = unexplained(paintings, [covered], PaintingLooks(looks=3, max_area=0.35))

    assert chosen == [2]  # BIG is too large, SMALL is covered by the verified box


def test_a_box_inside_a_recognised_painting_is_not_looked_at():
    seen = Candidate("seen", 0.5, geometric=_result(verified("seen", box=[0.1, 0.1, 0.6, 0.8])))
    detail = [0.2, 0.3, 0.3, 0.4]  # a figure of the recognised painting, too small to be the same painting

    assert unexplained([located(detail), located(SMALL)], [seen], PaintingLooks(looks=2)) == [1]


def test_at_most_looks_paintings_are_looked_at():
    paintings = [located(SMALL), located(OTHER_SMALL)]

    assert unexplained(paintings, [], PaintingLooks(looks=1)) == [0]
    assert unexplained(paintings, [], PaintingLooks(looks=0)) == []


def test_a_painting_verified_on_its_crop_joins_the_answer_with_its_box():
    box_in_photo = [0.76, 0.31, 0.89, 0.44]
    backends = Backends(
        hits=[("big", 0.8), ("x", 0.5)],
        objects=_catalogue("big", "x", "small"),
        geometric={"big": verified("big", inliers=120, box=[0.05, 0.05, 0.7, 0.9])},
        paintings=[BIG, SMALL],
        look_votes=[("small", 30), ("x", 3)],
        looks={"small": verified("small", inliers=40, box=box_in_photo)},
        scores={"small": 0.42},
    )

    answer = identify(backends)

    assert [m.object_id for m in answer.matches] == ["big", "small"]
    small = answer.matches[1]
    assert small.query_box == box_in_photo and small.similarity_score == 0.42 and small.name == "Title small"
    assert answer.matches[0].query_box == [0.05, 0.05, 0.7, 0.9]
    asked = backends.body_of("geometric", "POST", "/match/paintings")
    assert [p["corners"][0] for p in asked["paintings"]] == [[0.75, 0.3]] and asked["shortlist"] == 4
    assert backends.body_of("search", "POST", "/search")["include"] == ["small"]  # scored for the decision
    assert [p.box for p in answer.debug.paintings] == [BIG, SMALL] and answer.debug.looked_closer == [1]
    row = next(r for r in answer.debug.candidates if r.object_id == "small")
    assert row.painting == 1 and row.votes == 30 and row.verified and row.embedding_rank == 0


def test_a_candidate_that_failed_on_the_whole_photo_is_tried_on_the_painting_it_was_placed_on():
    weak = rejected("weak", "too_few_inliers") | {"inliers": 8, "query_box": [0.76, 0.31, 0.88, 0.44]}
    backends = Backends(
        hits=[("weak", 0.6)],
        objects=_catalogue("weak"),
        geometric={"weak": weak},
        paintings=[SMALL],
        looks={"weak": verified("weak", inliers=30, box=[0.76, 0.31, 0.89, 0.44])},
    )

    answer = identify(backends)

    assert backends.body_of("geometric", "POST", "/match/paintings")["paintings"][0]["reference_ids"] == ["weak"]
    assert [m.object_id for m in answer.matches] == ["weak"]
    assert answer.debug.candidates[0].painting == 0 and answer.debug.candidates[0].inliers == 30
    assert backends.service_calls("search") == [("POST", "/search")]  # nothing new to score


def test_nothing_is_looked_at_when_every_painting_is_explained_or_the_looks_are_off():
    backends = Backends(
        hits=[("big", 0.8)],
        objects=_catalogue("big"),
        geometric={"big": verified("big", box=BIG)},
        paintings=[BIG, SMALL],
    )

    identify(backends, looks=PaintingLooks(looks=0))
    assert ("POST", "/match/paintings") not in backends.service_calls("geometric")
    assert backends.body_of("geometric", "POST", "/extract")["paintings"] is False

    backends.paintings = [BIG]
    answer = identify(backends)
    assert ("POST", "/match/paintings") not in backends.service_calls("geometric")
    assert answer.debug.looked_closer == [] and len(answer.debug.paintings) == 1


def test_a_failed_closer_look_keeps_the_whole_photo_answer():
    backends = Backends(
        hits=[("big", 0.8)],
        objects=_catalogue("big"),
        geometric={"big": verified("big", box=BIG)},
        paintings=[BIG, SMALL],
        fail={"geometric /match/paintings": error(502, "backend_error")},
    )

    answer = identify(backends)

    assert [m.object_id for m in answer.matches] == ["big"] and not answer.degraded
    assert answer.debug.looked_closer == []


def test_a_client_error_of_the_closer_look_is_not_hidden():
    backends = Backends(
        hits=[("big", 0.8)],
        objects=_catalogue("big"),
        paintings=[SMALL],
        fail={"geometric /match/paintings": error(422, "validation_error")},
    )

    try:
        identify(backends)
    except errors.ServiceError as exc:
        assert exc.status == 422
    else:
        raise AssertionError("a 422 of /match/paintings must surface")


def _result(raw: dict) -> MatchResult:
    return msgspec.convert(raw, MatchResult)


def test_a_painting_a_failed_check_placed_a_candidate_on_is_looked_at_first():
    weak = rejected("weak", "too_few_inliers") | {"inliers": 8, "query_box": [0.76, 0.61, 0.88, 0.74]}
    candidates = [Candidate("weak", 0.4, geometric=_result(weak))]
    paintings = [located(SMALL), located(OTHER_SMALL)]

    assert unexplained(paintings, candidates, PaintingLooks(looks=1)) == [1]
    assert unexplained(paintings, candidates, PaintingLooks(looks=2)) == [1, 0]
