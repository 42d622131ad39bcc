"""The evaluation report's plots: drawn for every outcome, also when nothing was answered."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tools.cli.report import plot_precision_coverage

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sweep_point(threshold: float, coverage: float | None, precision: float | None) -> dict[str, float | None]:
    return {"threshold": threshold, "coverage": coverage, "precision": precision}


@pytest.mark.parametrize(
    "sweep, operating",
    [
        pytest.param(
            [sweep_point(0.1, 0.9, 0.97), sweep_point(0.5, 0.8, 1.0), sweep_point(0.9, 0.0, None)],
            sweep_point(0.5, 0.8, 1.0),
            id="answers",
        ),
        # every photo answered "no match": no threshold has a precision, the operating point covers nothing
        pytest.param([sweep_point(t, 0.0, None) for t in (0.1, 0.5, 0.9)], sweep_point(0.5, 0.0, None), id="none"),
        pytest.param([], sweep_point(0.5, None, None), id="no photos"),
    ],
)
def test_the_precision_coverage_plot_is_drawn_for_every_outcome(tmp_path: Path, sweep, operating) -> None:
    path = tmp_path / "precision_coverage.png"

    plot_precision_coverage(path, sweep, operating)

    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(path) as image:
        assert image.size[0] > 100 and image.size[1] > 100
