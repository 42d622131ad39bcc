"""``evaluate`` and ``calibrate`` end to end over real HTTP against an in-process gateway with scripted backends.

Each photo is a flat colour whose red channel names it; the fake backends read it back and answer from a script,
so the right numbers of the report are known by hand (see ``SCRIPT``).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn
from PIL import Image

from services.common.schemas import MatchResult, SearchHit
from services.decision.rule import DecisionParams
from services.decision.stored import load_params
from services.gateway.app import create_app
from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient
from services.gateway.settings import GatewaySettings
from tests.support import free_port
from tools.cli.dataset import Dataset, link_collection
from tools.cli.main import main

# photo name, shown artworks, search hits (object, similarity), inliers of verified candidates (others fail)
SCRIPT: list[tuple[str, list[str], list[tuple[str, float]], dict[str, int]]] = [
    ("s__0.jpg", ["A"], [("A", 0.9), ("B", 0.5)], {"A": 40}),  # right
    ("s__1.jpg", ["B"], [("C", 0.8), ("B", 0.7)], {"C": 30}),  # wrong answer C; B at rank 2
    ("s__2.jpg", ["A", "D"], [("D", 0.85), ("A", 0.8)], {"D": 50, "A": 45}),  # complete
    ("t__0.jpg", ["E"], [("F", 0.6), ("E", 0.55)], {}),  # missed; E at rank 2
    ("nonart__0.jpg", [], [("A", 0.3)], {}),  # right "no match"
    ("nonart__1.jpg", [], [("B", 0.4)], {"B": 20}),  # false alarm
]
# verified answers get sigmoid(2) = 0.88; embedding-only: sigmoid(10 · similarity − 7), e.g. 0.6 → 0.27
PARAMS = DecisionParams(
    threshold=0.5, geo_weights=(0.0, 0.0, 0.0, 0.0), geo_bias=2.0, emb_weights=(10.0, 0.0), emb_bias=-7.0
)


def _index(image_b64: str) -> int:
    image = Image.open(io.BytesIO(base64.b64decode(image_b64))).convert("RGB")
    return round((image.resize((1, 1)).getpixel((0, 0))[0] - 20) / 40)  # type: ignore[index]


def _backends(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content) if request.content else {}
    path = request.url.path
    if path == "/embed":
        n, i = len(body["regions"]), _index(body["image"])
        vectors = [[1.0 if j == i else 0.0 for j in range(8)] for _ in range(n)]
        return httpx.Response(200, json={"embeddings": vectors, "dimension": 8, "model": "fake", "per_image": n,
                                         "processing_time_ms": 1.0})  # fmt: skip
    if path == "/search":
        i = body["vectors"][0].index(1.0)
        hits = [SearchHit(o, s, r) for r, (o, s) in enumerate(SCRIPT[i][2], start=1)]
        payload = {"results": [hits] * len(body["vectors"]), "index_size": 6, "processing_time_ms": 1.0}
        return httpx.Response(200, content=msgspec.json.encode(payload))
    if path == "/extract":
        features = {"keypoints": "", "descriptors": "", "count": 0, "width": _index(body["image"]) + 1, "height": 1}
        return httpx.Response(200, json={"features": features, "processing_time_ms": 1.0})
    if path == "/match/batch":
        inliers = SCRIPT[body["query"]["width"] - 1][3]
        results = [
            MatchResult(o, o in inliers, inliers.get(o, 2), 60, 0.5, 0.5, 0.4, None if o in inliers else "few")
            for o in body["reference_ids"]
        ]
        return httpx.Response(200, content=msgspec.json.encode({"results": results, "processing_time_ms": 1.0}))
    return httpx.Response(404, json={"error": "not_found", "message": path, "details": {}})


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real gateway app on a free port, its backends answered by :func:`_backends`."""
    transport = httpx.MockTransport(_backends)

    def client(cls: Any, name: str) -> Any:
        url = f"http://{name}"
        return cls(url, timeout_s=5.0, client=httpx.AsyncClient(transport=transport, base_url=url))

    app = create_app(
        # a tight per-client limit: the evaluation must wait out 429 answers, not count them as failures
        GatewaySettings(
            snapshot_dir=tmp_path_factory.mktemp("snapshot"), rate_limit_per_minute=1200, rate_limit_burst=2
        ),
        embeddings=client(EmbeddingsClient, "embeddings"),
        search=client(SearchClient, "search"),
        geometric=client(GeometricClient, "geometric"),
        params=PARAMS,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled set in the museum-dev layout: flat-colour photos and six reference images."""
    root = tmp_path_factory.mktemp("data")
    for folder in ("objects", "pictures"):
        (root / folder).mkdir()
    for name in "ABCDEF":
        Image.new("RGB", (32, 32), (200, 10, 10)).save(root / "objects" / f"{name}.jpg")
    (root / "objects.csv").write_text("object_id,title\nA,Alpha\n")
    lines = ["picture_image_path,painting_image_paths"]
    for i, (photo, shown, _, _) in enumerate(SCRIPT):
        Image.new("RGB", (64, 48), (20 + 40 * i, 128, 128)).save(root / "pictures" / photo, quality=95)
        lines.append(f"{photo},{';'.join(s + '.jpg' for s in shown)}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def evaluated(gateway_url: str, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report folder of one ``evaluate`` run against the scripted gateway."""
    out = tmp_path_factory.mktemp("report")
    assert main(["evaluate", "--data", str(dataset), "--url", gateway_url, "--out", str(out)]) == 0
    return out


def test_evaluate_reports_the_hand_counted_rates_in_both_modes(evaluated: Path) -> None:
    result = json.loads((evaluated / "report.json").read_text())
    full = result["modes"]["full"]["overall"]["rates"]
    degraded = result["modes"]["embedding_only"]["overall"]["rates"]

    assert result["meta"]["threshold"] == 0.5 and result["meta"]["photos"] == 6
    assert result["modes"]["full"]["overall"]["counts"]["errors"] == 0
    assert (full["top1"], full["no_match"], full["precision"], full["complete"]) == (0.5, 0.5, 0.5, 1.0)
    assert full["mrr"] == pytest.approx(0.75) and (full["hit@1"], full["hit@3"]) == (0.5, 1.0)
    # embedding only: A 0.88 right, C 0.73 wrong, D 0.82 right, F 0.27 / A 0.02 / B 0.05 not answered
    assert (degraded["top1"], degraded["no_match"], degraded["precision"], degraded["complete"]) == (
        0.5, 1.0, 2 / 3, 0.0)  # fmt: skip


def test_evaluate_lists_failures_latency_sweep_and_plots(evaluated: Path) -> None:
    result = json.loads((evaluated / "report.json").read_text())
    full = result["modes"]["full"]

    assert [(f["photo"], f["failure"]) for f in full["failures"]] == [
        ("nonart__1.jpg", "wrong answer"),
        ("s__1.jpg", "wrong answer"),
        ("t__0.jpg", "missed"),
    ]
    assert full["failures"][1]["answered"] == "C" and full["failures"][1]["wrong_evidence"]["inliers"] == 30
    assert {"embedding_ms", "search_ms", "geometric_ms", "total_ms", "request_ms"} <= set(full["latency"])
    assert full["operating_point"]["coverage"] == 3 / 4 and full["operating_point"]["precision"] == 0.5
    assert len(result["answers"]["full"]) == 6 and full["degraded"] == 0
    for name in ("precision_coverage_full", "scores_full", "precision_coverage_embedding_only"):
        assert (evaluated / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    text = (evaluated / "report.md").read_text()
    assert "## Mode `full` at threshold 0.500" in text and "| s__1.jpg | wrong answer |" in text


def test_calibrate_refits_from_the_report_and_writes_decision_json(evaluated: Path, tmp_path: Path) -> None:
    snapshot, out = tmp_path / "snapshot", tmp_path / "cal"
    argv = ["calibrate", "--responses", str(evaluated / "report.json"), "--snapshot", str(snapshot)]

    assert main([*argv, "--folds", "2", "--seed", "1", "--out", str(out)]) == 0

    params = load_params(snapshot)
    assert params.fitted_on["photos"] == 6 and params.fitted_on["open_set_copies"] == 4
    assert 0.5 <= params.threshold <= 1.0
    report = json.loads((out / "calibration.json").read_text())
    assert [f["fold"] for f in report["folds"]] == [0, 1]
    text = (out / "calibration.md").read_text()
    assert "Reliability of held-out answers" in text
    assert "Two-fold" in text and "Each half under its own fit and under the other half's" in text


def test_evaluate_refuses_to_leave_artworks_out_of_a_gateway_it_did_not_build(dataset: Path, tmp_path: Path) -> None:
    argv = ["evaluate", "--data", str(dataset), "--url", "http://127.0.0.1:9", "--out", str(tmp_path)]

    assert main([*argv, "--exclude-fraction", "0.25"]) == 2
    assert main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2


def test_the_index_of_a_left_out_run_links_only_the_included_artworks(dataset: Path, tmp_path: Path) -> None:
    located = Dataset.locate(dataset)

    folder = link_collection(located, frozenset({"B", "E"}), tmp_path / "links")

    assert sorted(p.stem for p in folder.iterdir()) == ["A", "C", "D", "F"]
    assert all(p.is_symlink() and p.resolve().parent == (dataset / "objects").resolve() for p in folder.iterdir())
    assert located.catalogue == dataset / "objects.csv"


def test_relabel_corrects_named_photos_and_refuses_unknown_ones(
    gateway_url: str, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # nonart__1 is answered B by the script: relabelled as showing B, the false alarm becomes a right answer
    fix = tmp_path / "relabel.csv"
    fix.write_text("picture_image_path,painting_image_paths\nnonart__1.jpg,B.jpg\n")
    out = tmp_path / "report"

    assert (
        main(["evaluate", "--data", str(dataset), "--url", gateway_url, "--out", str(out), "--relabel", str(fix)]) == 0
    )

    report = json.loads((out / "report.json").read_text())
    counts = report["modes"]["full"]["overall"]["counts"]
    assert (counts["none"], counts["none_right"]) == (1, 1)
    assert (counts["answered"], counts["answered_right"]) == (4, 3)
    assert report["meta"]["relabel"] == str(fix)
    fix.write_text("picture_image_path,painting_image_paths\nnot-a-photo.jpg,B.jpg\n")
    capsys.readouterr()
    code = main(["evaluate", "--data", str(dataset), "--url", gateway_url, "--out", str(out), "--relabel", str(fix)])
    assert code != 0 and "corrects photos that are not labelled" in capsys.readouterr().err
