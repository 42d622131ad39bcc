"""``artwork-matcher evaluate``: measure recognition quality on labelled photos.

It sends every photo once to a gateway's ``POST /identify`` (real HTTP, multipart, one at a time) with threshold 0,
so that any threshold can be applied offline afterwards (see :mod:`services.decision.metrics`). Without ``--url`` it
builds a snapshot of the collection and starts the four services on free local ports itself (:mod:`tools.cli.collect`,
shared with ``calibrate``).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from services.decision.metrics import (
    Answer,
    LabelledPhoto,
    Summary,
    by_group,
    failures,
    flagged_pairs,
    latency,
    stage_breakdown,
    summarise,
)
from services.decision.reliability import point_at, precision_coverage, reliability, top_answers
from tools.cli import report
from tools.cli.collect import (
    add_data_options,
    answer_record,
    collect,
    gateway,
    gateway_info,
    load_set,
    prepare_snapshot,
    workdir,
)
from tools.cli.localisation import localiser_summary

MODES = ("full", "embedding_only")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``evaluate``."""
    evaluate = sub.add_parser("evaluate", help="measure recognition quality on a labelled photo set")
    add_data_options(evaluate)
    evaluate.add_argument("--out", type=Path, required=True, help="report folder (report.md, report.json, plots/)")
    evaluate.add_argument("--modes", default="full,embedding_only", help=f"comma-separated, of {', '.join(MODES)}")
    evaluate.add_argument("--threshold", type=float, default=None, help="operating threshold (default: the gateway's)")
    evaluate.add_argument("--exclude-fraction", type=float, default=0.0, help="share of artworks left out of the index")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the left-out artworks")
    evaluate.set_defaults(func=run_evaluate)


def summary_dict(summary: Summary) -> dict[str, Any]:
    """Counts and rates of a summary, JSON-ready."""
    counts = asdict(summary)
    counts["hits"] = {str(k): v for k, v in summary.hits.items()}
    return {"counts": counts, "rates": summary.rates()}


def mode_result(photos: Sequence[LabelledPhoto], answers: Sequence[Answer], threshold: float) -> dict[str, Any]:
    """Every metric of one mode at ``threshold``, JSON-ready."""
    tops = top_answers(photos, answers)
    collection = sum(p.kind == "collection" for p in photos)
    negatives = [a.named(0.0) for p, a in zip(photos, answers, strict=True) if p.kind != "collection"]
    return {
        "threshold": threshold,
        "overall": summary_dict(summarise(photos, answers, threshold)),
        "groups": {g: summary_dict(s) for g, s in by_group(photos, answers, threshold).items()},
        "stages": stage_breakdown(photos, answers, threshold),
        "localiser": localiser_summary(photos, answers),
        "latency": latency(answers),
        "failures": failures(photos, answers, threshold),
        "near_duplicates": flagged_pairs(photos, answers, threshold),
        "sweep": [asdict(p) for p in precision_coverage(photos, answers)],
        "operating_point": asdict(point_at(tops, collection, threshold)),
        "reliability": reliability(tops),
        "scores": {
            "right": [c for c, r, k in tops if k == "collection" and r],
            "wrong": [c for c, r, k in tops if k == "collection" and not r],
            "no-match photos": [n[0][1] if n else 0.0 for n in negatives],
        },
        "degraded": sum(a.degraded for a in answers),
    }


def write_evaluation(out: Path, result: dict[str, Any]) -> None:
    """``report.md``, ``report.json`` and ``plots/*.png`` in ``out``."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for mode, r in result["modes"].items():
        report.plot_precision_coverage(plots / f"precision_coverage_{mode}.png", r["sweep"], r["operating_point"])
        report.plot_scores(plots / f"scores_{mode}.png", r["scores"], r["threshold"])
    report.write_json(out / "report.json", result)
    (out / "report.md").write_text(report.markdown(result))


def _usage_error(args: argparse.Namespace, modes: list[str]) -> str | None:
    if not modes or set(modes) - set(MODES):
        return f"--modes takes {', '.join(MODES)}"
    if args.exclude_fraction and args.url:
        return "--exclude-fraction builds its own index; leave out --url"
    return None


def run_evaluate(args: argparse.Namespace) -> int:
    """The ``evaluate`` command."""
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    problem = _usage_error(args, modes)
    if problem is None:
        try:
            dataset, photos, excluded = load_set(args, args.exclude_fraction, args.seed)
        except (FileNotFoundError, ValueError) as exc:
            problem = str(exc)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with workdir(args.workdir) as work:
        snapshot = None
        if not args.url:
            snapshot = prepare_snapshot(dataset, args.snapshot or work / "snapshot", work, excluded)
        with gateway(args.url, snapshot, work / "logs") as url:
            info = gateway_info(url)
            decision = info["decision"]
            thresholds = {
                "full": float(decision["threshold"]),
                "embedding_only": float(decision.get("embedding_threshold", decision["threshold"])),
            }
            if args.threshold is not None:
                thresholds = dict.fromkeys(thresholds, args.threshold)
            answers = {m: collect(url, dataset.photos, photos, geometric=m == "full", k=args.k, desc=m) for m in modes}
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "photos": len(photos),
        "photo_folder": str(dataset.photos),
        "gateway": args.url or f"local stack on {snapshot}",
        "gateway_version": info.get("version"),
        "decision_fitted_on": (info.get("decision") or {}).get("fitted_on"),
        "threshold": thresholds["full"],
        "embedding_threshold": thresholds["embedding_only"],
        "k": args.k or "the gateway's default",
        "exclude_fraction": args.exclude_fraction,
        "seed": args.seed,
        "photos_made_no_match": sum(p.kind == "excluded" for p in photos),
        "relabel": str(args.relabel) if args.relabel is not None else None,
        "excluded": sorted(excluded),
    }
    result = {
        "meta": meta,
        "modes": {m: mode_result(photos, answers[m], thresholds[m]) for m in modes},
        "answers": {m: [answer_record(p, a) for p, a in zip(photos, answers[m], strict=True)] for m in modes},
    }
    write_evaluation(args.out, result)
    print_summary(result)
    print(f"report: {args.out / 'report.md'}")
    return 0


def print_summary(result: dict[str, Any]) -> None:
    """One line per mode: the headline rates and the request latency."""
    for mode, r in result["modes"].items():
        rates = r["overall"]["rates"]
        total = r["latency"].get("request_ms", {})
        line = ", ".join(f"{k} {report.pct(rates[k])}" for k in ("top1", "no_match", "no_match_excluded", "precision"))
        print(
            f"{mode}: {line}, complete {report.pct(rates['complete'])}, MRR {rates['mrr'] or 0:.3f}, "
            f"request p50 {total.get('p50', 0):.0f} ms p95 {total.get('p95', 0):.0f} ms"
        )
