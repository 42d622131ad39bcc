"""The collection report's analysis: pairs found among embedding neighbours, single-artwork flags, the report file."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import numpy as np
import pytest

from services.collection.doctor import CollectionContents, examine, nearest_neighbours
from services.collection.features import FeatureSet
from services.collection.report_file import Flag, ReportFileError, Thresholds, read_report, write_report
from services.common.schemas import ObjectMetadata

NOW = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def features(count: int, tag: int = 0) -> FeatureSet:
    """``count`` keypoints whose first descriptor byte is ``tag``: the scripted verifier's notion of a picture."""
    descriptors = np.zeros((count, 128), np.uint8)
    descriptors[:, 0] = tag
    return FeatureSet(np.zeros((count, 2), np.float32), descriptors, 640, 480)


def same_picture(query: FeatureSet, reference: FeatureSet) -> tuple[bool, int]:
    """An oracle verifier: two feature sets verify when they carry the same tag."""
    same = len(query) and len(reference) and query.descriptors[0, 0] == reference.descriptors[0, 0]
    return bool(same), 300 if same else 4


def test_nearest_neighbours_agree_with_brute_force_and_never_name_the_row_itself():
    vectors = unit(np.random.default_rng(0).normal(size=(2100, 16)))  # more rows than one block

    indices, scores = nearest_neighbours(vectors, 3)

    full = vectors @ vectors.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1)[:, :3]
    assert (indices == expected).all()
    assert np.allclose(scores, np.take_along_axis(full, expected, axis=1))
    assert not (indices == np.arange(len(vectors))[:, None]).any()


def test_neighbours_of_a_tiny_collection_are_padded():
    indices, scores = nearest_neighbours(unit(np.eye(2, dtype=np.float32)), 5)

    assert indices.tolist() == [[1], [0]] and scores.shape == (2, 1)
    assert nearest_neighbours(unit(np.ones((1, 4), np.float32)), 5)[0].shape == (1, 0)


def collection() -> CollectionContents:
    """dup-a/dup-b: one picture twice; look-1/look-2: close embeddings, different pictures; far: unlike any; flat:
    few keypoints, small image, no catalogue entry; bare: no features, no image."""
    rng = np.random.default_rng(1)
    base, other = rng.normal(size=16), rng.normal(size=16)
    rows = np.stack(
        [base, base + 0.05 * rng.normal(size=16), other, other + 0.3 * rng.normal(size=16)]
        + [rng.normal(size=16) for _ in range(3)]
    )
    ids = ["dup-a", "dup-b", "look-1", "look-2", "far", "flat", "bare"]
    meta = {i: ObjectMetadata(object_id=i, title=f"Title {i}", artist="Someone") for i in ids if i != "flat"}
    meta["bare"] = ObjectMetadata(object_id="bare", title="Bare")
    feats = {
        "dup-a": features(500, 1),
        "dup-b": features(480, 1),
        "look-1": features(500, 2),
        "look-2": features(500, 3),
        "far": features(500, 4),
        "flat": features(40, 5),
    }
    sizes = {i: (800, 600) for i in ids} | {"flat": (300, 120), "bare": None}
    return CollectionContents(ids, unit(rows), meta, feats, sizes)


def test_examine_flags_each_kind_once_with_the_artworks_it_concerns():
    contents = collection()
    similarity = float(contents.vectors[2] @ contents.vectors[3])
    thresholds = Thresholds(confusable_similarity=round(similarity - 0.01, 3))

    report = examine(contents, same_picture, thresholds, now=NOW)

    pairs = [(p.flag, p.a, p.b) for p in report.pairs]
    assert pairs == [(Flag.NEAR_DUPLICATE, "dup-a", "dup-b"), (Flag.CONFUSABLE, "look-1", "look-2")]
    assert report.pairs[0].inliers == 300
    flags = {a.object_id: a.flags for a in report.artworks}
    assert flags == {
        "dup-a": [Flag.NEAR_DUPLICATE],
        "dup-b": [Flag.NEAR_DUPLICATE],
        "look-1": [Flag.CONFUSABLE],
        "look-2": [Flag.CONFUSABLE],
        "flat": [Flag.FEW_KEYPOINTS, Flag.TOO_SMALL, Flag.MISSING_TITLE, Flag.MISSING_ARTIST],
        "bare": [Flag.NO_FEATURES, Flag.NO_IMAGE, Flag.MISSING_ARTIST],
    }
    by_id = {a.object_id: a for a in report.artworks}
    assert by_id["dup-a"].related == ["dup-b"] and "dup-b" in by_id["dup-a"].details["near_duplicate"]
    assert "40 reference keypoints" in by_id["flat"].details["few_keypoints"]
    assert "300 × 120 px" in by_id["flat"].details["too_small"]
    assert report.counts == {
        "near_duplicate": 2,
        "confusable": 2,
        "few_keypoints": 1,
        "too_small": 1,
        "no_features": 1,
        "no_image": 1,
        "missing_title": 1,
        "missing_artist": 2,
    }
    assert report.objects == 7 and report.generated_at == "2026-12-04T05:00:00+00:00"


def test_a_close_pair_below_the_confusable_line_and_unverified_is_not_reported():
    contents = collection()

    report = examine(contents, same_picture, Thresholds(confusable_similarity=0.999), now=NOW)

    assert [(p.flag, p.a, p.b) for p in report.pairs] == [(Flag.NEAR_DUPLICATE, "dup-a", "dup-b")]


def test_contents_refuse_vectors_that_do_not_match_the_ids():
    with pytest.raises(ValueError, match="one row per id"):
        CollectionContents(["a", "b"], unit(np.ones((3, 4), np.float32)), {}, {}, {})


def test_the_report_file_round_trips_and_a_broken_one_says_how_to_fix_it(tmp_path):
    report = examine(collection(), same_picture, now=NOW)

    assert read_report(tmp_path) is None
    path = write_report(tmp_path, report)
    assert path == tmp_path / "report.json"
    assert read_report(tmp_path) == report
    assert msgspec.json.decode(path.read_bytes())["pairs"][0]["flag"] == "near_duplicate"
    path.write_text('{"objects": "many"}')
    with pytest.raises(ReportFileError, match="index doctor"):
        read_report(tmp_path)
