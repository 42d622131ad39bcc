"""``artwork-matcher calibrate``: fit the decision parameters on labelled photos and store them with the snapshot.

The gateway reads ``<snapshot>/decision.json`` at start-up; restart it (or the stack) after calibrating.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.collection.layout import default_snapshot_dir
from services.common.schemas import CandidateEvidence
from services.decision.fitting import FitSettings, cross_validate, fit_params, measure, open_set_copies
from services.decision.metrics import Answer, LabelledPhoto
from services.decision.reliability import reliability
from services.decision.rule import DecisionParams
from services.decision.stored import load_params, save_params
from tools.cli import report
from tools.cli.collect import (
    add_data_options,
    collect,
    from_record,
    gateway,
    gateway_info,
    load_set,
    prepare_snapshot,
    workdir,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``calibrate``."""
    cal = sub.add_parser("calibrate", help="fit the decision on labelled photos, store it in the snapshot")
    add_data_options(cal)
    cal.add_argument(
        "--responses",
        type=Path,
        action="append",
        help="reuse the full-mode answers of an evaluate report.json; repeat to fit on several labelled sets together "
        "(the two-fold check then also reports each set on its own)",
    )
    cal.add_argument("--target-precision", type=float, default=0.99, help="precision the threshold must reach")
    cal.add_argument("--floor", type=float, default=0.5, help="lowest allowed threshold")
    cal.add_argument("--l2", type=float, default=1.0, help="logistic penalty on standardised weights")
    cal.add_argument("--min-inliers", type=int, default=None, help="fewest inliers of a geometric answer")
    cal.add_argument("--folds", type=int, default=1, help="2: fit on each half, measure on the other, both ways")
    cal.add_argument("--seed", type=int, default=0, help="seed of the fold split")
    cal.add_argument(
        "--no-open-set", action="store_true", help="fit without the simulated open-set copies of the photos"
    )
    cal.add_argument("--out", type=Path, default=None, help="folder for calibration.md and calibration.json")
    cal.add_argument("--dry-run", action="store_true", help="fit and report, do not write decision.json")
    cal.set_defaults(func=run_calibrate)


def read_responses(files: Sequence[Path]) -> tuple[list[LabelledPhoto], list[Answer], dict[str, str]]:
    """Photos and full-mode answers of evaluate reports, and which set (named after its photo folder's parent,
    e.g. ``museum-dev``) each photo comes from."""
    photos: list[LabelledPhoto] = []
    answers: list[Answer] = []
    sets: dict[str, str] = {}
    for path in files:
        result = json.loads(path.read_text())
        folder = Path(str(result.get("meta", {}).get("photo_folder") or path.parent))
        name = folder.parent.name if folder.name == "pictures" else folder.name
        for photo, answer in (from_record(r) for r in result["answers"]["full"]):
            if photo.name in sets:
                raise ValueError(f"{path}: photo {photo.name} is in two response files")
            photos.append(photo)
            answers.append(answer)
            sets[photo.name] = name
    return photos, answers, sets


def _gather(args: argparse.Namespace) -> tuple[list[LabelledPhoto], list[Answer], Path, dict[str, str]]:
    """Photos and their full-mode answers, the snapshot the fitted decision belongs to, and each photo's set."""
    if args.responses:
        photos, answers, sets = read_responses(args.responses)
        return photos, answers, args.snapshot or default_snapshot_dir(), sets
    dataset, photos, _ = load_set(args)
    with workdir(args.workdir) as work:
        snapshot = args.snapshot or (work / "snapshot" if args.workdir else default_snapshot_dir())
        if not args.url:
            prepare_snapshot(dataset, snapshot, work, frozenset())
        with gateway(args.url, None if args.url else snapshot, work / "logs") as url:
            if args.url and args.snapshot is None:
                snapshot = Path(gateway_info(url).get("settings", {}).get("snapshot_dir") or snapshot)
            answers = collect(url, dataset.photos, photos, geometric=True, k=args.k, desc="calibrate")
    return photos, answers, snapshot, {}


def _usable(
    photos: Sequence[LabelledPhoto], answers: Sequence[Answer]
) -> tuple[list[LabelledPhoto], list[list[CandidateEvidence]]]:
    """The photos whose answer neither failed nor was degraded, and their candidate rows."""
    keep = [(p, a) for p, a in zip(photos, answers, strict=True) if a.error is None and not a.degraded]
    if len(keep) < len(photos):
        print(f"warning: {len(photos) - len(keep)} photos failed or were degraded; fitted without them")
    return [p for p, _ in keep], [list(a.candidates) for _, a in keep]


def run_calibrate(args: argparse.Namespace) -> int:
    """The ``calibrate`` command."""
    try:
        photos, answers, snapshot, sets = _gather(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    photos, evidence = _usable(photos, answers)
    settings = FitSettings(args.target_precision, args.floor, args.l2, args.min_inliers)
    base = DecisionParams()
    open_set = not args.no_open_set
    folds = (
        cross_validate(
            photos, evidence, base, settings, folds=args.folds, seed=args.seed, open_set=open_set, sets=sets or None
        )
        if args.folds >= 2
        else []
    )
    all_p, all_e = list(photos), list(evidence)
    if open_set:
        extra_p, extra_e = open_set_copies(photos, evidence)
        all_p, all_e = all_p + extra_p, all_e + extra_e
    fitted_on = {
        "photos": len(photos),
        "sets": {name: sum(1 for p in photos if sets.get(p.name) == name) for name in sorted(set(sets.values()))},
        "open_set_copies": len(all_p) - len(photos),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "target_precision": args.target_precision,
    }
    params = fit_params(all_p, all_e, base, settings, fitted_on)
    previous = load_params(snapshot)
    result = {
        "params": params.to_mapping(),
        "before": measure(all_p, all_e, previous),
        "after": measure(all_p, all_e, params),
        "folds": folds,
    }
    _print(result, params)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report.write_json(args.out / "calibration.json", result)
        (args.out / "calibration.md").write_text(calibration_markdown(result))
    if not args.dry_run:
        snapshot.mkdir(parents=True, exist_ok=True)
        print(f"wrote {save_params(snapshot, params)}; restart the gateway to use it")
    return 0


def calibration_markdown(result: dict[str, Any]) -> str:
    """The calibration report: parameters, before/after on all photos (in-sample), two-fold honesty."""
    lines = ["# Decision calibration", "", "```json", json.dumps(result["params"], indent=2), "```", ""]
    keys = ("top1", "no_match", "no_match_excluded", "precision", "complete")
    rows = []
    for mode in result["after"]:
        for key in keys:
            before, after = result["before"][mode][key], result["after"][mode][key]
            rows.append([mode, report.RATE_NAMES[key], report.pct(before), report.pct(after)])
    lines += ["## All photos (fitted on them: in-sample)", ""]
    lines += report.table(["mode", "metric", "previous parameters", "fitted parameters"], rows)
    if result["folds"]:
        lines += ["## Two-fold: fitted on one half, measured on the other", "", *report.folds_markdown(result["folds"])]
        lines += _per_set(result["folds"])
        pooled = [tuple(t) for f in result["folds"] for t in f["held_out_answers"]]
        lines += ["## Reliability of held-out answers (full mode, pooled over the folds)", ""]
        lines += report.reliability_table(reliability(pooled))
    lines += ['"no match (left-out artworks)" counts the simulated open-set copies of the photos.', ""]
    return "\n".join(lines)


def _per_set(folds: Sequence[dict[str, Any]]) -> list[str]:
    """Held-out rates of each labelled set on its own, per fold (full mode)."""
    rows = []
    for fold in folds:
        for name, rates in (fold.get("held_out_by_set") or {}).items():
            cells = [report.pct(rates["full"][key]) for key in report.FOLD_KEYS]
            rows.append([fold["fold"], name, rates["photos"], *cells])
    if not rows:
        return []
    header = ["fold", "set", "held-out photos", *(report.RATE_NAMES[k] for k in report.FOLD_KEYS)]
    return ["## Held out, each set on its own (full mode)", "", *report.table(header, rows)]


def _print(result: dict[str, Any], params: DecisionParams) -> None:
    per_mode = {k: params.fitted_on.get(f"threshold_{k}") for k in ("full", "embedding_only")}
    print(
        f"threshold {params.threshold:.3f}, embedding_threshold {params.cut(False):.3f} (per mode {per_mode}),"
        f" min_inliers {params.min_inliers}"
    )
    print(f"geo_weights {[round(w, 3) for w in params.geo_weights]} bias {params.geo_bias:.3f}")
    print(f"emb_weights {[round(w, 3) for w in params.emb_weights]} bias {params.emb_bias:.3f}")
    print(f"unverified_weights {[round(w, 3) for w in params.unverified_weights]} bias {params.unverified_bias:.3f}")
    for fold in result["folds"]:
        for mode in fold["fitted"]:
            cells = []
            for key in ("top1", "no_match", "no_match_excluded", "precision", "complete"):
                a, b = fold["fitted"][mode][key], fold["held_out"][mode][key]
                cells.append(f"{key} {report.pct(a)} / {report.pct(b)}")
            print(f"fold {fold['fold']} {mode} (fitted / held out): " + ", ".join(cells))
        for name, rates in (fold.get("held_out_by_set") or {}).items():
            cells = [f"{key} {report.pct(rates['full'][key])}" for key in report.FOLD_KEYS]
            print(f"fold {fold['fold']} held out, {name} only ({rates['photos']} photos): " + ", ".join(cells))
