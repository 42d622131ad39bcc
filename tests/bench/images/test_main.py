"""bench/images/__main__.py: command-line options."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.images.__main__ import parse_args


def test_defaults_identify_ten_photos_and_need_nine_right() -> None:
    args = parse_args([])
    assert (args.photos, args.min_right, args.no_run) == (10, 9, False)
    assert args.services == ["gateway", "search", "geometric", "embeddings"]
    assert args.workdir == Path("/var/tmp/artwork-matcher-images")


@pytest.mark.parametrize(("photos", "needed"), [(1, 1), (5, 5), (20, 18), (25, 23)])
def test_default_bar_is_ninety_percent_rounded_up(photos: int, needed: int) -> None:
    assert parse_args(["--photos", str(photos)]).min_right == needed


@pytest.mark.parametrize(
    "argv",
    [
        ["--photos", "0"],
        ["--photos", "5", "--min-right", "6"],
        ["--min-right", "-1"],
        ["--services", "nope", "--no-run"],
        ["--ca-bundle", "/does/not/exist"],
    ],
)
def test_refuses_inconsistent_options(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_a_subset_of_images_may_be_built_and_run() -> None:
    assert parse_args(["--services", "gateway", "search", "--no-run"]).services == ["gateway", "search"]
    assert parse_args(["--services", "search"]).no_run is False
