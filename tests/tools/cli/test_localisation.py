"""The localiser's measure without box labels: placed, found, unexplained boxes, closer looks, recovered."""

from __future__ import annotations

from services.common.schemas import CandidateEvidence
from services.decision.metrics import Answer, LabelledPhoto
from tools.cli import report
from tools.cli.collect import answer_record, from_record
from tools.cli.localisation import localiser_summary, markdown, photo_counts, same_painting

LEFT = [0.1, 0.1, 0.4, 0.6]
RIGHT = [0.6, 0.2, 0.8, 0.45]


def row(object_id: str, box: list[float] | None, *, verified: bool = True, painting: int | None = None):
    return CandidateEvidence(object_id, 0.5, verified=verified, inliers=30, query_box=box, painting=painting)


def test_same_painting_needs_each_box_to_hold_half_of_the_other():
    framed = [0.08, 0.08, 0.42, 0.62]  # the localiser's box around the frame of a reference cropped without it

    assert same_painting(LEFT, framed) and same_painting(framed, LEFT)
    assert not same_painting(LEFT, [0.1, 0.1, 0.9, 0.9])  # a box around the whole wall holds LEFT, not vice versa
    assert not same_painting(LEFT, RIGHT)


def test_a_photo_counts_placed_found_unexplained_and_recovered_paintings():
    photo = LabelledPhoto("g__1.jpg", frozenset({"a", "b", "c"}), frozenset({"a", "b", "c"}))
    answer = Answer(
        candidates=(
            row("a", [0.11, 0.12, 0.41, 0.58]),  # placed, and the localiser found it
            row("b", RIGHT, painting=1),  # placed by a closer look at the localiser's second box
            row("c", None, verified=False),  # never verified: cannot be placed
            row("x", [0.0, 0.7, 0.1, 0.8]),  # an unlabelled painting that verified where the localiser saw nothing
        ),
        paintings=(tuple(LEFT), tuple(RIGHT), (0.5, 0.7, 0.55, 0.8)),
        looked_closer=(1,),
    )

    assert photo_counts(photo, answer) == {
        "photos": 1,
        "labelled": 3,
        "placed": 2,
        "found": 2,
        "boxes": 3,
        "unexplained": 1,
        "looked closer": 1,
        "recovered": 1,
    }


def test_the_summary_adds_up_per_group_and_overall_and_skips_failed_requests():
    photos = [
        LabelledPhoto("g__1.jpg", frozenset({"a"}), frozenset({"a"})),
        LabelledPhoto("h__1.jpg", frozenset({"b"}), frozenset({"b"})),
        LabelledPhoto("h__2.jpg", frozenset(), frozenset()),
    ]
    answers = [
        Answer(candidates=(row("a", LEFT),), paintings=(tuple(LEFT),)),
        Answer(candidates=(row("b", RIGHT),), paintings=()),
        Answer(error="ReadTimeout: slow"),
    ]

    summary = localiser_summary(photos, answers)

    assert list(summary) == ["g", "h", "all"]
    assert (summary["all"]["photos"], summary["all"]["placed"], summary["all"]["found"]) == (2, 2, 1)
    text = "\n".join(markdown(summary))
    assert "| all | 2 | 2 | 2 | 1 | 1 | 0 | 0 | 0 | 50.0 % |" in text and "| g |" in text


def test_saved_answers_keep_the_located_paintings():
    photo = LabelledPhoto("g__1.jpg", frozenset({"a"}), frozenset({"a"}))
    answer = Answer(candidates=(row("a", LEFT, painting=0),), paintings=(tuple(LEFT),), looked_closer=(0,))

    _, again = from_record(answer_record(photo, answer))

    assert again.paintings == answer.paintings and again.looked_closer == (0,)
    assert again.candidates[0].painting == 0
    older = answer_record(photo, answer)
    del older["paintings"], older["looked_closer"]
    assert from_record(older)[1].paintings == ()


def test_the_report_has_a_localiser_section():
    photos = [LabelledPhoto("g__1.jpg", frozenset({"a"}), frozenset({"a"}))]
    summary = localiser_summary(photos, [Answer(candidates=(row("a", LEFT),), paintings=(tuple(LEFT),))])

    lines = report.localisation.markdown(summary)

    assert lines[0].startswith("| group | photos | labelled | placed | found |") and "100.0 %" in lines[2]
