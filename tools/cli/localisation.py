"""How well the painting localiser finds the paintings of labelled photos, measured without box labels.

The photo sets label which artworks a photo shows, not where. Where a labelled painting is can still be known: when
its reference verified (on the whole photo or on a located painting's rectified crop), the homography projects the
reference's outline into the photo (``query_box``). So:

- a labelled painting is **placed** when its reference verified with a box in the photo;
- a placed painting is **found** when one of the localiser's boxes is the same painting as that box: the smaller
  box has at least half of its area inside the larger and is at least a quarter of its size
  (:func:`services.common.boxes.same_painting`: a reference cropped with or without its frame still matches a box
  around a heavy frame, a box around the whole wall does not);
- a localiser box is **unexplained** when no verified box of any artwork explains it
  (:func:`services.common.boxes.explained_by`: the same painting, or a box within it, a part of it). That counts
  every false box (a caption, a door, a display case) but also every real painting the collection does not hold or
  the labels leave out, so it is an upper bound of the false boxes;
- **looked closer**: located paintings rectified and verified on their own because no verified box covered them;
  **recovered**: labelled paintings that verified only that way.

Paintings that never verified cannot be placed, so found / placed measures the localiser where the truth is known;
placed / labelled says how much of the truth that is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.common.boxes import explained_by, same_painting
from services.decision.metrics import Answer, LabelledPhoto

COLUMNS = ("photos", "labelled", "placed", "found", "boxes", "unexplained", "looked closer", "recovered")


def photo_counts(photo: LabelledPhoto, answer: Answer) -> dict[str, int]:
    """One photo's counts (see the module docstring)."""
    verified = [r for r in answer.candidates if r.verified and r.query_box is not None]
    placed = [r for r in verified if r.object_id in photo.expected]
    boxes = list(answer.paintings)
    return {
        "photos": 1,
        "labelled": len(photo.expected),
        "placed": len(placed),
        "found": sum(any(same_painting(r.query_box or [], b) for b in boxes) for r in placed),
        "boxes": len(boxes),
        "unexplained": sum(not any(explained_by(b, r.query_box or []) for r in verified) for b in boxes),
        "looked closer": len(answer.looked_closer),
        "recovered": sum(r.painting is not None for r in placed),
    }


def localiser_summary(photos: Sequence[LabelledPhoto], answers: Sequence[Answer]) -> dict[str, dict[str, int]]:
    """Counts per photo group and over all photos (``all``), groups sorted by name; photos whose request failed are
    left out."""
    groups: dict[str, dict[str, int]] = {}
    for photo, answer in zip(photos, answers, strict=True):
        if answer.error is not None:
            continue
        counts = photo_counts(photo, answer)
        for name in (photo.group, "all"):
            total = groups.setdefault(name, dict.fromkeys(COLUMNS, 0))
            for key, value in counts.items():
                total[key] += value
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0])))


def markdown(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The summary as a Markdown table with found / placed, and a blank line."""
    lines = ["| group | " + " | ".join(COLUMNS) + " | found / placed |", "|" + "---|" * (len(COLUMNS) + 2)]
    for name, counts in summary.items():
        rate = f"{100 * counts['found'] / counts['placed']:.1f} %" if counts["placed"] else "–"
        lines.append(f"| {name} | " + " | ".join(str(counts[c]) for c in COLUMNS) + f" | {rate} |")
    return [*lines, ""]
