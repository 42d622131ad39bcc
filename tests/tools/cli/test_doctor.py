"""``artwork-matcher index doctor`` on a real (small) snapshot: Markdown, JSON, the contact sheet, report.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from services.collection.report_file import read_report
from tests.services.fakes import FakeEmbedder, encode, textured
from tools.cli.build import build_collection
from tools.cli.main import main


@pytest.fixture
def snapshot(tmp_path) -> Path:
    """Five artworks: one picture catalogued twice (one copy re-encoded smaller), two others, and a tiny plain one
    without a title."""
    source = tmp_path / "source"
    source.mkdir()
    picture = textured(40, (640, 480))
    (source / "twin-a.jpg").write_bytes(encode(picture))
    (source / "twin-b.jpg").write_bytes(encode(picture.resize((576, 432)), quality=85))
    (source / "other.jpg").write_bytes(encode(textured(41, (640, 480))))
    (source / "third.png").write_bytes(encode(textured(42, (480, 640)), "PNG"))
    (source / "plain.jpg").write_bytes(encode(Image.new("RGB", (200, 150), (180, 170, 160))))
    catalogue = tmp_path / "objects.csv"
    catalogue.write_text(
        "object_id,title,artist\ntwin-a,Twin,Ann\ntwin-b,Twin again,Ann\nother,Other,Bo\nthird,Third,Cy\nplain,,\n"
    )
    folder = tmp_path / "snapshot"
    build_collection(source, folder, FakeEmbedder(), catalogue=catalogue)
    return folder


def test_doctor_reports_the_twins_and_the_weak_plain_reference(snapshot, tmp_path, capsys):
    out = tmp_path / "report"

    code = main(["index", "doctor", "--snapshot", str(snapshot), "--out", str(out)])

    assert code == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Collection report") and "| near_duplicate | twin-a | twin-b |" in markdown
    report = json.loads((out / "report.json").read_text())
    assert [(p["flag"], p["a"], p["b"]) for p in report["pairs"]] == [("near_duplicate", "twin-a", "twin-b")]
    flags = {a["object_id"]: a["flags"] for a in report["artworks"]}
    assert flags["plain"] == ["few_keypoints", "too_small", "missing_title", "missing_artist"]
    assert "other" not in flags and "third" not in flags
    assert (out / "report.md").read_text() == markdown
    with Image.open(out / "pairs.jpg") as sheet:
        assert sheet.height >= 200 and sheet.width > 400
    saved = read_report(snapshot)
    assert saved is not None and saved.objects == 5 and saved.pairs[0].a == "twin-a"


def test_doctor_prints_json_when_asked(snapshot, capsys):
    assert main(["index", "doctor", "--snapshot", str(snapshot), "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["counts"]["near_duplicate"] == 2


def test_doctor_without_a_snapshot_exits_2_saying_how_to_make_one(tmp_path, capsys):
    assert main(["index", "doctor", "--snapshot", str(tmp_path / "none")]) == 2

    assert "index build" in capsys.readouterr().err


def test_a_build_that_changed_the_snapshot_refreshes_its_report_with_the_near_duplicate_pairs(snapshot, tmp_path):
    from tools.cli.build import BuildReport, refresh_report

    assert read_report(snapshot) is None  # build_collection alone writes none
    made = refresh_report(snapshot, BuildReport(unchanged=5))  # no report yet: made even though nothing changed

    assert made is not None and read_report(snapshot) == made
    assert made.near_duplicate_partners() == {"twin-a": frozenset({"twin-b"}), "twin-b": frozenset({"twin-a"})}
    assert refresh_report(snapshot, BuildReport(unchanged=5)) is None  # unchanged: left as it was
    again = refresh_report(snapshot, BuildReport(removed=["gone"]))
    assert again is not None and again.pairs == made.pairs
    assert refresh_report(tmp_path / "no-snapshot", BuildReport(added=["x"])) is None
