"""bench/images/run.py: which photos, what counts as right, when a run passed."""

from __future__ import annotations

import pytest

from bench.images import run
from bench.images.run import RunReport, ServiceCheck


def test_photo_sample_is_seeded_sorted_and_never_larger_than_the_labels() -> None:
    labels = {f"p{i:02}.jpg": frozenset() for i in range(40)}
    first = run.pick_photos(labels, 10, seed=0)
    assert first == run.pick_photos(labels, 10, seed=0) == sorted(first)
    assert len(set(first)) == 10 and set(first) <= set(labels)
    assert run.pick_photos(labels, 10, seed=1) != first
    assert run.pick_photos({"a.jpg": frozenset()}, 10, seed=0) == ["a.jpg"]


def test_an_answer_is_right_when_it_names_a_shown_artwork_or_no_match_for_none() -> None:
    two = frozenset({"a", "b"})
    assert run.is_right(two, "b") and run.is_right(two, "a")
    assert not run.is_right(two, "c") and not run.is_right(two, None)
    assert run.is_right(frozenset(), None) and not run.is_right(frozenset(), "a")
    assert run.answered({"match": {"object_id": "a"}}) == "a"
    assert run.answered({"match": None, "matches": []}) is None


def _passing_report() -> RunReport:
    report = RunReport(backends="healthy")
    for service in run.START_ORDER:
        report.checks[service] = ServiceCheck(service, healthy_s=3.0, healthcheck_rc=0, uid=1000)
    report.answers = [(f"p{i}.jpg", frozenset({"a"}), "a" if i < 9 else "b", 300.0) for i in range(10)]
    return report


def test_run_passes_with_every_check_green_and_enough_right_answers() -> None:
    report = _passing_report()
    assert report.right() == 9 and report.passed(min_right=9)
    assert not report.passed(min_right=10)
    assert "9/10 photos right" in report.summary() and "WRONG  p9.jpg: b (labelled a)" in report.summary()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda r: setattr(r.checks["search"], "uid", 0),
        lambda r: setattr(r.checks["gateway"], "healthcheck_rc", 1),
        lambda r: setattr(r.checks["embeddings"], "healthy_s", None),
        lambda r: r.checks.pop("geometric"),
        lambda r: setattr(r, "backends", "degraded"),
    ],
)
def test_run_fails_when_a_container_check_fails(spoil: object) -> None:
    report = _passing_report()
    spoil(report)  # type: ignore[operator]
    assert not report.passed(min_right=0)


def test_a_subset_run_passes_on_its_container_checks_alone_and_says_no_photos_were_identified() -> None:
    report = RunReport(services=("search", "gateway"))
    assert not report.whole_stack and not report.passed(min_right=9)  # nothing checked yet
    for service in report.services:
        report.checks[service] = ServiceCheck(service, healthy_s=2.0, healthcheck_rc=0, uid=1000)
    assert report.passed(min_right=9)
    assert "no photos identified" in report.summary()
    report.checks["search"].uid = 0
    assert not report.passed(min_right=0)
