"""Writing evaluation and calibration reports: Markdown for people, JSON for tools, PNG plots."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.cli import localisation

LOCALISER_NOTE = (
    "Labelled paintings placed (their reference verified, so its outline in the photo is known), found (a box of "
    "the localiser is the same painting: the smaller box half inside the larger, at least a quarter its size), the "
    "localiser's boxes and those that no verified artwork explains, as the same painting or a part of it (false "
    "boxes, or paintings the collection or the labels do not hold), located paintings looked at closer (rectified "
    "and verified alone) and labelled paintings recovered that way."
)
RATE_NAMES = {
    "top1": "top-1 (photos showing a collection artwork)",
    "no_match": 'correct "no match" (photos showing none)',
    "no_match_excluded": 'correct "no match" (photos showing only left-out artworks)',
    "precision": "precision of answers given",
    "complete": "complete answers (multi-artwork photos)",
    "mrr": "MRR of the candidate list",
    "hit@1": "Hit@1",
    "hit@3": "Hit@3",
    "hit@5": "Hit@5",
    "hit@10": "Hit@10",
}
_COUNTS = {
    "top1": ("top1_right", "collection"),
    "no_match": ("none_right", "none"),
    "no_match_excluded": ("excluded_right", "excluded"),
    "precision": ("answered_right", "answered"),
    "complete": ("multi_complete", "multi"),
}


def pct(value: float | None) -> str:
    """A rate as a percentage with one decimal, ``–`` when undefined."""
    return "–" if value is None else f"{100 * value:.1f} %"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table and a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _headline(summary: Mapping[str, Any]) -> list[str]:
    rates, counts = summary["rates"], summary["counts"]
    rows = []
    for key, name in RATE_NAMES.items():
        if key in _COUNTS:
            num, den = _COUNTS[key]
            rows.append([name, pct(rates[key]), f"{counts[num]}/{counts[den]}"])
        elif key == "mrr":
            rows.append([name, "–" if rates[key] is None else f"{rates[key]:.3f}", ""])
        else:
            rows.append([name, pct(rates[key]), ""])
    rows.append(["wrong artworks named (any position)", str(counts["wrong_named"]), ""])
    rows.append(["request errors", str(counts["errors"]), ""])
    return table(["metric", "value", "count"], rows)


def _groups(groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    keys = ("top1", "no_match", "no_match_excluded", "precision", "complete", "mrr", "hit@1", "hit@10")
    header = ["group", "photos", *keys]
    rows = []
    for name, g in groups.items():
        cells = [
            f"{g['rates'][k]:.3f}" if k == "mrr" and g["rates"][k] is not None else pct(g["rates"][k]) for k in keys
        ]
        rows.append([name, g["counts"]["photos"], *cells])
    return table(header, rows)


def _stages(groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not groups:
        return ["No photo shows a collection artwork.", ""]
    header = ["group", "paintings", "embedding", "voted", "shortlisted", "verified", "answered", "lost where"]
    rows = []
    for name, g in groups.items():
        lost = ", ".join(f"{reason} {n}" for reason, n in sorted(g["missed"].items(), key=lambda kv: -kv[1]))
        rows.append([name, *(g[k] for k in header[1:-1]), lost or "–"])
    return table(header, rows)


def _latency(stages: Mapping[str, Mapping[str, float]]) -> list[str]:
    rows = [[stage, *(f"{v[q]:.0f}" for q in ("p50", "p95", "p99", "mean"))] for stage, v in stages.items()]
    return table(["stage (ms)", "p50", "p95", "p99", "mean"], rows)


def reliability_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The reliability rows (see :func:`services.decision.reliability.reliability`) as a Markdown table."""
    out = []
    for r in rows:
        mean = "–" if r["mean_confidence"] is None else f"{r['mean_confidence']:.2f}"
        out.append(
            [f"{r['lo']:.1f}–{r['hi']:.1f}", r["answers"], r["right"], pct(r["share_right"]), mean, pct(r["at_least"])]
        )
    header = ["confidence", "answers", "right", "share right", "mean confidence", "share right at ≥ lower edge"]
    return table(header, out)


def _evidence(row: Mapping[str, Any] | None) -> str:
    if not row:
        return "not in candidates"
    keys = ("rank", "similarity", "inliers", "good_matches", "inlier_ratio", "spread", "verified", "reason")
    return ", ".join(f"{k}={row[k]}" for k in keys if k in row and row[k] is not None)


def _failures(items: Sequence[Mapping[str, Any]]) -> list[str]:
    if not items:
        return ["No failures.", ""]
    rows = []
    for f in items:
        answered = f.get("answered", "")
        answered = ", ".join(answered) if isinstance(answered, list) else answered
        conf = f"{f['confidence']:.3f}" if "confidence" in f else ""
        detail = f.get("message") or (f"missing {', '.join(f['missing'])}" if "missing" in f else "")
        wrong = _evidence(f.get("wrong_evidence")) if "wrong_evidence" in f else ""
        right = _evidence(f.get("expected_evidence")) if "expected_evidence" in f else ""
        if "missing_evidence" in f:
            right = "; ".join(_evidence(e) for e in f["missing_evidence"])
        rows.append(
            [f["photo"], f["failure"], ", ".join(f["expected"]) or "none", answered, conf, wrong, right, detail]
        )
    header = [
        "photo",
        "failure",
        "expected",
        "answered",
        "confidence",
        "wrong artwork's evidence",
        "expected's evidence",
        "",
    ]
    return table(header, rows)


NEAR_DUPLICATE_NOTE = (
    "Photos answered with a near-duplicate pair: two references of the same picture (the collection report's pairs) "
    "that the photo could not tell apart, answered together, the better one first. A pair is one declared ambiguity, "
    "not two claims: top-1 and precision count it right when the labelled artwork is the first or its flagged "
    "partner (and then it is no wrong artwork named); the partner itself is never counted as an artwork named."
)


def _near_duplicates(items: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [f"### Near-duplicate pairs answered ({len(items)})", "", NEAR_DUPLICATE_NOTE, ""]
    rows = [
        [f["photo"], ", ".join(f["expected"]) or "none", f["answered"], f["partner"], "yes" if f["right"] else "no"]
        for f in items
    ]
    return lines + (table(["photo", "expected", "answered", "partner", "right"], rows) if rows else [])


def markdown(result: Mapping[str, Any]) -> str:
    """The evaluation report as Markdown."""
    meta = result["meta"]
    lines = ["# Recognition quality", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items() if k != "excluded"]
    lines += [f"- artworks left out of the index: {len(meta.get('excluded', []))}", ""]
    for mode, r in result["modes"].items():
        op = r["operating_point"]
        lines += [f"## Mode `{mode}` at threshold {r['threshold']:.3f}", ""]
        lines += [f"Answers without geometric verification although asked for: {r['degraded']}.", ""]
        lines += _headline(r["overall"])
        lines += ["### Per photo group", "", *_groups(r["groups"])]
        if "stages" in r:
            lines += ["### Where labelled paintings were found and lost", ""]
            lines += [
                "Per labelled painting: among the embedding's candidates, voted for by the local features, on the "
                "shortlist (either), verified geometrically, answered; and for those not answered, the stage that "
                "lost them.",
                "",
                *_stages(r["stages"]),
            ]
        if r.get("localiser"):
            lines += ["### Painting localiser", "", LOCALISER_NOTE, "", *localisation.markdown(r["localiser"])]
        lines += ["### Latency", "", *_latency(r["latency"])]
        lines += ["### Precision versus coverage", ""]
        lines += [f"Operating point: coverage {pct(op['coverage'])}, precision {pct(op['precision'])}.", ""]
        lines += [f"![precision versus coverage](plots/precision_coverage_{mode}.png)", ""]
        lines += [f"![score distributions](plots/scores_{mode}.png)", ""]
        lines += ["### Reliability (best answer of every photo, threshold 0)", "", *reliability_table(r["reliability"])]
        lines += _near_duplicates(r.get("near_duplicates", []))
        lines += [f"### Failures ({len(r['failures'])})", "", *_failures(r["failures"])]
    return "\n".join(lines)


FOLD_KEYS = ("top1", "no_match", "no_match_excluded", "precision", "complete")


def folds_markdown(folds: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fitted-fold versus held-out-fold rates side by side, per fold and mode; with two folds also each half
    measured under its own fit and under the other half's (the same photos, so the gap is the overfitting alone).
    """
    rows = []
    for f in folds:
        for mode in f["fitted"]:
            for key in FOLD_KEYS:
                a, b = f["fitted"][mode][key], f["held_out"][mode][key]
                rows.append([f["fold"], f"{f['threshold']:.3f}", mode, RATE_NAMES[key], pct(a), pct(b), _gap(a, b)])
    lines = table(["fitted on fold", "threshold", "mode", "metric", "fitted fold", "held-out fold", "points"], rows)
    if len(folds) != 2:
        return lines
    rows = []
    for half in (0, 1):
        own, other = folds[half]["fitted"], folds[1 - half]["held_out"]
        for mode in own:
            for key in FOLD_KEYS:
                a, b = own[mode][key], other[mode][key]
                rows.append([half, mode, RATE_NAMES[key], pct(a), pct(b), _gap(a, b)])
    header = ["photos of fold", "mode", "metric", "fitted on them", "fitted on the other fold", "points"]
    return [*lines, "Each half under its own fit and under the other half's:", "", *table(header, rows)]


def _gap(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{100 * (b - a):+.1f}"


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON (sets and tuples as lists)."""
    path.write_text(
        json.dumps(data, indent=1, default=lambda o: sorted(o) if isinstance(o, set | frozenset) else str(o))
    )


def plot_precision_coverage(path: Path, sweep: Sequence[Mapping[str, Any]], operating: Mapping[str, Any]) -> None:
    """Precision versus coverage as the threshold moves, the operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    # a threshold (or a photo set) with no answer has no precision: nothing to draw for it
    points = [
        (p["coverage"], p["precision"]) for p in sweep if p["coverage"] is not None and p["precision"] is not None
    ]
    if points:
        ax.plot([c for c, _ in points], [p for _, p in points], marker=".", label="threshold sweep")
    if operating.get("coverage") is not None and operating.get("precision") is not None:
        ax.scatter([operating["coverage"]], [operating["precision"]], color="red", zorder=3, s=60)
        ax.annotate(f"threshold {operating['threshold']:.2f}", (operating["coverage"], operating["precision"]))
    low = min([p for _, p in points] + [0.95]) - 0.01
    ax.set(xlabel="coverage (share of collection photos answered)", ylabel="precision of answers", xlim=(0, 1.02))
    ax.set_ylim(low, 1.005)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scores(path: Path, groups: Mapping[str, Sequence[float]], threshold: float) -> None:
    """Histograms of the best answer's confidence per outcome (right, wrong, no-match photos)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    bins = [i / 20 for i in range(21)]
    for name, values in groups.items():
        if values:
            ax.hist(values, bins=bins, alpha=0.55, label=f"{name} ({len(values)})")
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set(xlabel="confidence of the best answer (0: none)", ylabel="photos", yscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
