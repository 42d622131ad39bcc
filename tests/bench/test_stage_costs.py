"""The CPU-floor bench's arithmetic and photo selection (the measurement itself is run by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.stage_costs import Costs, ceilings, percentile, photos_in, report


def test_percentile_is_the_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.95) == 5.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([], 0.5) == 0.0


def test_ceilings_follow_from_the_floor_and_the_cores() -> None:
    assert ceilings(250.0, 2) == (8.0, 125.0)
    assert ceilings(100.0, 4) == (40.0, 25.0)
    with pytest.raises(ValueError, match="positive"):
        ceilings(0.0, 2)


def test_timed_records_the_cpu_a_step_spends_and_returns_its_result() -> None:
    costs = Costs()

    def work() -> int:
        return sum(i * i for i in range(300_000))

    assert costs.timed("busy", work) == work()
    costs.timed("busy", lambda: None)
    assert len(costs.steps["busy"]) == 2
    assert costs.steps["busy"][0] > 0.0
    assert all(value >= 0.0 for value in costs.steps["busy"])


def test_report_sums_the_step_means_and_states_the_ceilings() -> None:
    costs = Costs(
        steps={"extract": [100.0, 120.0], "verify": [30.0, 50.0]}, candidates=[10, 14], keypoints=[1000, 1400]
    )
    text = report(costs, 2, "title")
    lines = text.splitlines()
    assert lines[0] == "title"
    assert any(line.startswith("extract") and "110.0" in line for line in lines)
    assert any(line.startswith("sum") and line.rstrip().endswith("150.0") for line in lines)
    assert "1200 query keypoints, 12.0 candidates verified" in text
    assert "ceiling on 2 cores: 13.3 photos/s at most; 75 ms for one photo at best" in text


def test_photos_are_spread_over_the_folder_and_other_files_skipped(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"p{i:02d}.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a photo")
    chosen = photos_in(tmp_path, 3)
    assert [p.name for p in chosen] == ["p00.jpg", "p03.jpg", "p06.jpg"]
    assert len(photos_in(tmp_path, 50)) == 10


def test_a_folder_without_photos_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a photo")
    with pytest.raises(SystemExit, match="no photos"):
        photos_in(tmp_path, 5)
