"""``artwork-matcher index doctor``: the collection report of a snapshot, as Markdown, JSON and a contact sheet.

The analysis is the collection package's (:mod:`services.collection.doctor`); this module words it for people and
draws the flagged pairs side by side. The report is also saved in the snapshot (``report.json``), where the gateway
serves it to the curator page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import msgspec
from PIL import Image, ImageDraw

from services.collection.images import ImageStore
from services.collection.layout import Snapshot, default_snapshot_dir
from services.collection.report_file import CollectionReport, Flag, PairFinding, Thresholds

_FLAG_WORDS = {
    Flag.NEAR_DUPLICATE: "Near-duplicate references",
    Flag.CONFUSABLE: "Confusable artworks (embeddings very close)",
    Flag.FEW_KEYPOINTS: "Too few keypoints to verify",
    Flag.TOO_SMALL: "Reference image too small",
    Flag.NO_FEATURES: "No reference features",
    Flag.NO_IMAGE: "No reference image",
    Flag.MISSING_TITLE: "Missing title",
    Flag.MISSING_ARTIST: "Missing artist",
}
"""A heading for each flag."""

THUMB = 200
"""Longest side, in pixels, of a contact sheet's thumbnail."""


def add_index_parser(index_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``index doctor`` under the ``index`` command."""
    doctor = index_sub.add_parser(
        "doctor", help="report what will make photos hard to answer: near-duplicates, confusable or weak references"
    )
    doctor.add_argument(
        "--snapshot", type=Path, default=None, help=f"snapshot directory (default {default_snapshot_dir()})"
    )
    doctor.add_argument(
        "--out", type=Path, default=None, help="folder for report.md, report.json and pairs.jpg (default: none)"
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON instead of Markdown")
    defaults = Thresholds()
    doctor.add_argument("--confusable", type=float, default=defaults.confusable_similarity, help="cosine similarity")
    doctor.add_argument("--min-keypoints", type=int, default=defaults.min_keypoints)
    doctor.add_argument("--min-side", type=int, default=defaults.min_side, help="pixels, shorter side")
    doctor.add_argument("--neighbours", type=int, default=defaults.neighbours, help="checked per artwork")
    doctor.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """Examine the snapshot, print the report, save it (snapshot and ``--out``); exit 2 without a snapshot."""
    from services.collection.doctor import examine_snapshot
    from services.collection.report_file import write_report
    from services.common.runtime import limit_threads

    limit_threads(2)
    snapshot = Path(args.snapshot or default_snapshot_dir())
    if args.neighbours < 1 or args.min_keypoints < 0 or args.min_side < 0 or not 0.0 < args.confusable <= 1.0:
        print("error: --neighbours must be ≥ 1, --confusable in (0, 1], minimums ≥ 0", file=sys.stderr)
        return 2
    thresholds = Thresholds(
        neighbours=args.neighbours,
        confusable_similarity=args.confusable,
        min_keypoints=args.min_keypoints,
        min_side=args.min_side,
    )
    try:
        report = examine_snapshot(snapshot, thresholds)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_report(snapshot, report)
    markdown = to_markdown(report)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.md").write_text(markdown, encoding="utf-8")
        (args.out / "report.json").write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2))
        contact_sheet(report, ImageStore(Snapshot(snapshot).images_dir)).save(args.out / "pairs.jpg", quality=88)
    text = msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n" if args.json else markdown
    (stdout or sys.stdout).write(text)
    return 0


def to_markdown(report: CollectionReport) -> str:
    """The report for people: counts, the flagged pairs, then every flagged artwork under each flag."""
    t = report.thresholds
    lines = [
        "# Collection report",
        "",
        f"{report.objects} artworks, examined {report.generated_at} in {report.seconds:.1f} s. "
        f"Thresholds: confusable at cosine ≥ {t.confusable_similarity}, fewer than {t.min_keypoints} keypoints, "
        f"shorter side under {t.min_side} px, {t.neighbours} nearest neighbours checked for near-duplicates.",
        "",
        "| flag | artworks |",
        "|---|---|",
        *(f"| {_FLAG_WORDS[flag]} | {report.counts.get(flag.value, 0)} |" for flag in Flag),
    ]
    if report.pairs:
        lines += ["", "## Pairs", "", "| kind | artwork | artwork | similarity | inliers |", "|---|---|---|---|---|"]
        lines += [f"| {p.flag.value} | {p.a} | {p.b} | {p.similarity:.3f} | {p.inliers} |" for p in report.pairs]
    for flag in Flag:
        if flag in (Flag.NEAR_DUPLICATE, Flag.CONFUSABLE):
            continue
        flagged = [a for a in report.artworks if flag in a.flags]
        if flagged:
            lines += ["", f"## {_FLAG_WORDS[flag]} ({len(flagged)})", ""]
            lines += [f"- `{a.object_id}` {a.title or '(untitled)'}: {a.details.get(flag.value, '')}" for a in flagged]
    if not report.artworks:
        lines += ["", "Nothing to report: every artwork looks easy to find."]
    return "\n".join(lines) + "\n"


def contact_sheet(report: CollectionReport, images: ImageStore, *, thumb: int = THUMB) -> Image.Image:
    """The flagged pairs side by side, one row each (kind, ids, similarity and inliers written above)."""
    rows = report.pairs or []
    label = 28
    width, row_height = 2 * thumb + 30, thumb + label + 12
    sheet = Image.new("RGB", (width, max(1, len(rows)) * row_height), "white")
    draw = ImageDraw.Draw(sheet)
    if not rows:
        draw.text((10, 10), "no flagged pairs", fill="black")
    for r, pair in enumerate(rows):
        top = r * row_height
        draw.text((10, top + 4), _pair_label(pair), fill="darkred" if pair.flag is Flag.NEAR_DUPLICATE else "black")
        for c, object_id in enumerate((pair.a, pair.b)):
            left = 10 + c * (thumb + 10)
            draw.text((left, top + 16), object_id, fill="black")
            picture = _thumbnail(images, object_id, thumb)
            if picture is not None:
                sheet.paste(picture, (left + (thumb - picture.width) // 2, top + label))
    return sheet


def _pair_label(pair: PairFinding) -> str:
    return f"{pair.flag.value}  similarity {pair.similarity:.3f}  inliers {pair.inliers}"


def _thumbnail(images: ImageStore, object_id: str, size: int) -> Image.Image | None:
    path = images.find(object_id)
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            picture = image.convert("RGB")
    except OSError:
        return None
    picture.thumbnail((size, size))
    return picture
