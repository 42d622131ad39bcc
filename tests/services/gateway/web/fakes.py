"""Fake embeddings, search and geometric services over ``httpx.MockTransport``, deciding by the uploaded photo.

The fakes recognise a few real museum-dev photos by a fingerprint (a 16x16 grey thumbnail, centred and
L2-normalised) that survives the browser's downscale and JPEG re-encoding and a camera's YUV 4:2:0 round trip.
A photo close to a known one gets its labelled artworks as search hits that verify geometrically; any other photo
gets unrelated hits that do not verify, so the gateway's real decision answers "no match". A blank photo is
refused as a bad image (400), ``geometric_down`` makes the geometric service answer 503, and an artwork in
``boxless`` verifies without a box in the photo.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
from PIL import Image

from services.common.schemas import ObjectMetadata
from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient

SIDE = 16
"""Side of the grey thumbnail a fingerprint is made of; SIDE * SIDE floats are 128 (x, y) keypoints."""
KNOWN = 0.9
"""Least cosine between fingerprints for a photo to count as a known one."""
DISTRACTORS = ("mcv_bbdd_00002", "mcv_bbdd_00003", "mcv_bbdd_00004")
"""Objects the fake search returns as unrelated, low-scoring hits."""


def fingerprint(image: Image.Image) -> np.ndarray:
    """A (SIDE * SIDE,) float32 vector, L2-normalised: the photo's grey thumbnail minus its mean."""
    grey = np.asarray(image.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float64).ravel()
    centred = grey - grey.mean()
    norm = np.linalg.norm(centred)
    return (centred / norm if norm > 0 else centred).astype(np.float32)


def _decode(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB")


def _json(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body), headers={"content-type": "application/json"})


def _error(status: int, code: str, message: str) -> httpx.Response:
    return _json({"error": code, "message": message, "details": {}}, status)


def read_catalogue(museum_dev: Path) -> dict[str, ObjectMetadata]:
    """The museum-dev catalogue (``objects.csv``) as metadata by object id."""
    with (museum_dev / "objects.csv").open(newline="") as handle:
        return {
            row["object_id"]: ObjectMetadata(
                object_id=row["object_id"],
                title=row["title"],
                artist=row["artist"],
                date=row["date"],
                room=row["room"],
                image_file=f"{row['object_id']}.jpg",
            )
            for row in csv.DictReader(handle)
        }


@dataclass
class FakeBackends:
    """The three backends, answering from ``catalogue`` and the photos taught with :meth:`know`."""

    catalogue: dict[str, ObjectMetadata]
    geometric_down: bool = False
    boxless: set[str] = field(default_factory=set)
    known: list[tuple[np.ndarray, list[str]]] = field(default_factory=list)

    def know(self, photo: Path, object_ids: list[str]) -> None:
        """Teach the fakes that ``photo`` shows ``object_ids`` (best first)."""
        with Image.open(photo) as image:
            self.known.append((fingerprint(image), object_ids))

    def _recognise(self, vector: np.ndarray) -> tuple[float, list[str]]:
        scored = [(float(vector @ fp), ids) for fp, ids in self.known]
        best = max(scored, default=(0.0, []), key=lambda s: s[0])
        return best if best[0] >= KNOWN else (best[0], [])

    def clients(self) -> dict[str, Any]:
        """Gateway clients (``embeddings``, ``search``, ``geometric``) wired to the fakes, without retries."""

        def client(cls: type, name: str, handler: Any) -> Any:
            transport = httpx.MockTransport(handler)
            url = f"http://{name}.fake"
            return cls(url, timeout_s=5.0, retries=0, client=httpx.AsyncClient(base_url=url, transport=transport))

        return {
            "embeddings": client(EmbeddingsClient, "embeddings", self._embeddings),
            "search": client(SearchClient, "search", self._search),
            "geometric": client(GeometricClient, "geometric", self._geometric),
        }

    # --- embeddings: the fingerprint of the whole photo for every region asked for --------------------------

    def _embeddings(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return _json({"status": "healthy"})
        body = json.loads(request.content)
        image = _decode(body["image"])
        if float(np.asarray(image.convert("L")).std()) < 2.0:
            return _error(400, "invalid_image", "the photo is blank: there is nothing in it to recognise")
        rows = len(body.get("regions") or [None])
        vector = fingerprint(image).tolist()
        return _json(
            {
                "embeddings": [vector] * rows,
                "dimension": SIDE * SIDE,
                "model": "fake",
                "per_image": rows,
                "processing_time_ms": 1.0,
            }
        )

    # --- search: a known photo's artworks first, unrelated low scorers otherwise ---------------------------

    def _hit(self, object_id: str, score: float, rank: int) -> dict[str, Any]:
        meta = self.catalogue[object_id]
        return {"object_id": object_id, "score": score, "rank": rank, "metadata": msgspec.to_builtins(meta)}

    def _search(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/health":
            return _json({"status": "healthy"})
        if path.startswith("/objects/"):
            meta = self.catalogue.get(path.removeprefix("/objects/"))
            if meta is None:
                return _error(404, "not_found", "no such object")
            return _json(msgspec.to_builtins(meta))
        body = json.loads(request.content)
        results = []
        for vector in body["vectors"]:
            similarity, ids = self._recognise(np.asarray(vector, dtype=np.float32))
            scored = [(oid, similarity - 0.01 * i) for i, oid in enumerate(ids)]
            scored += [(oid, 0.35 - 0.02 * i) for i, oid in enumerate(DISTRACTORS) if oid not in ids]
            hits = [self._hit(oid, round(score, 4), rank + 1) for rank, (oid, score) in enumerate(scored)]
            results.append(hits[: body.get("k", 10)])
        return _json({"results": results, "index_size": len(self.catalogue), "processing_time_ms": 1.0})

    # --- geometric: the fingerprint travels as the query's "keypoints"; known artworks verify ---------------

    def _geometric(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/health":
            return _json({"status": "unhealthy" if self.geometric_down else "healthy"})
        if self.geometric_down:
            return _error(503, "service_unavailable", "geometric is down (test)")
        body = json.loads(request.content)
        if path == "/extract":
            image = _decode(body["image"])
            keypoints = base64.b64encode(fingerprint(image).tobytes()).decode()
            descriptors = base64.b64encode(bytes(SIDE * SIDE // 2 * 32)).decode()
            features = {
                "keypoints": keypoints,
                "descriptors": descriptors,
                "count": SIDE * SIDE // 2,
                "width": image.width,
                "height": image.height,
            }
            return _json({"features": features, "processing_time_ms": 1.0})
        vector = np.frombuffer(base64.b64decode(body["query"]["keypoints"]), dtype=np.float32)
        _, ids = self._recognise(vector)
        results = [self._verify(ref, ids) for ref in body["reference_ids"]]
        return _json({"results": results, "processing_time_ms": 1.0})

    def _verify(self, reference_id: str, shown: list[str]) -> dict[str, Any]:
        """A shown artwork verifies (the first with many inliers, later ones with few) and lies in the i-th of as many
        equal columns of the photo as there are shown (none when ``boxless``); others do not verify."""
        if reference_id not in shown:
            return {
                "reference_id": reference_id,
                "verified": False,
                "inliers": 3,
                "good_matches": 9,
                "inlier_ratio": 0.1,
                "score": 0.0,
                "spread": 0.1,
                "reason": "too_few_matches",
            }
        position, count = shown.index(reference_id), len(shown)
        return {
            "reference_id": reference_id,
            "verified": True,
            "inliers": 150 if position == 0 else 14,
            "good_matches": 200,
            "inlier_ratio": 0.6,
            "score": 0.8,
            "spread": 0.7,
            "query_box": None if reference_id in self.boxless else [position / count, 0.1, (position + 1) / count, 0.9],
        }
