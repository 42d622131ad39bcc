"""Scripted backends for gateway tests: one ``httpx.MockTransport`` handler per service, every call recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient

D = 4
Failure = Callable[[httpx.Request], httpx.Response] | type[Exception] | None


def error(status: int, code: str, message: str = "scripted failure") -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering one error in the services' shape."""
    return lambda request: httpx.Response(status, json={"error": code, "message": message, "details": {}})


def verified(object_id: str, inliers: int = 80, box: list[float] | None = None) -> dict[str, Any]:
    """A geometric result that verified."""
    return {
        "reference_id": object_id,
        "verified": True,
        "inliers": inliers,
        "good_matches": inliers + 20,
        "inlier_ratio": inliers / (inliers + 20),
        "score": inliers / (inliers + 25),
        "spread": 0.6,
        "reason": None,
        "homography": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        "query_box": box or [0.1, 0.1, 0.6, 0.6],
    }


def rejected(object_id: str, reason: str = "too_few_matches") -> dict[str, Any]:
    """A geometric result that did not verify."""
    return {
        "reference_id": object_id,
        "verified": False,
        "inliers": 0,
        "good_matches": 2,
        "inlier_ratio": 0.0,
        "score": 0.0,
        "spread": 0.0,
        "reason": reason,
    }


@dataclass
class Backends:
    """The three backends as scripted in-memory services.

    ``hits``: (object_id, score) the search answers for every query vector; ``objects``: the catalogue (metadata
    dicts by id); ``geometric``: match results by id (missing ids answer ``rejected``); ``fail``: per service (or
    ``"service /path"``), an exception class to raise or a handler to answer instead; ``health``: per service, its
    ``/health`` status; ``votes``: (object_id, votes) the geometric service's local-feature shortlist answers;
    ``scores``: search's score of an object it is asked to ``include`` (default 0.1 for catalogued objects);
    ``paintings``: boxes ``[x0, y0, x1, y1]`` of the paintings ``/extract`` locates; ``looks``: results by id of
    ``/match/paintings`` (missing ids answer ``rejected``), which votes ``look_votes`` for every painting.
    """

    hits: list[tuple[str, float]] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    geometric: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: dict[str, Failure] = field(default_factory=dict)
    health: dict[str, str] = field(default_factory=dict)
    votes: list[tuple[str, int]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    paintings: list[list[float]] = field(default_factory=list)
    looks: dict[str, dict[str, Any]] = field(default_factory=dict)
    look_votes: list[tuple[str, int]] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def clients(self) -> dict[str, Any]:
        """Gateway clients (no retries) over this object's handlers, as ``create_app`` keyword arguments."""
        kinds = {"embeddings": EmbeddingsClient, "search": SearchClient, "geometric": GeometricClient}
        made = {}
        for name, kind in kinds.items():
            transport = httpx.MockTransport(self._handler(name))
            client = httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
            made[name] = kind(f"http://{name}", timeout_s=1.0, retries=0, client=client)
        return made

    def service_calls(self, service: str) -> list[tuple[str, str]]:
        """(method, path) of the calls ``service`` received, in order."""
        return [(m, p) for s, m, p in self.calls if s == service]

    def body_of(self, service: str, method: str, path: str) -> Any:
        """The JSON body of the last such call."""
        for (s, m, p), body in zip(reversed(self.calls), reversed(self.bodies), strict=True):
            if (s, m, p) == (service, method, path):
                return body
        raise AssertionError(f"no {method} {path} call to {service}: {self.calls}")

    def _handler(self, service: str) -> Callable[[httpx.Request], httpx.Response]:
        def handle(request: httpx.Request) -> httpx.Response:
            self.calls.append((service, request.method, request.url.path))
            self.bodies.append(json.loads(request.content) if request.content else None)
            self.headers.append(dict(request.headers))
            failure = self.fail.get(f"{service} {request.url.path}", self.fail.get(service))
            if isinstance(failure, type):
                raise failure("scripted transport failure", request=request)
            if failure is not None:
                return failure(request)
            if request.url.path == "/health":
                status = self.health.get(service, "healthy")
                return httpx.Response(200, json={"status": status, "service": service, "version": "0", "checks": {}})
            return getattr(self, f"_{service}")(request, self.bodies[-1])

        return handle

    def _embeddings(self, request: httpx.Request, body: Any) -> httpx.Response:
        rows = len(body.get("regions") or [None])
        vectors = np.eye(rows, D, dtype=np.float32) if rows <= D else np.ones((rows, D)) / 2
        return httpx.Response(
            200,
            json={
                "embeddings": vectors.tolist(),
                "dimension": D,
                "model": "fake",
                "per_image": rows,
                "processing_time_ms": 1.0,
            },
        )

    def _search(self, request: httpx.Request, body: Any) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/search":
            k = body["k"]
            row = [
                {"object_id": i, "score": s, "rank": r, "metadata": self.objects.get(i)}
                for r, (i, s) in enumerate(self.hits[:k], start=1)
            ]
            results = [row for _ in body["vectors"]]
            included = [
                {"object_id": i, "score": self.scores.get(i, 0.1), "rank": 0, "metadata": self.objects[i]}
                for i in body.get("include", [])
                if i in self.objects
            ]
            answer = {"results": results, "index_size": len(self.objects), "processing_time_ms": 1.0}
            return httpx.Response(200, json=answer | {"included": included})
        if path == "/objects":
            items = [self.objects[i] for i in sorted(self.objects)]
            offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
            page = {"objects": items[offset : offset + limit], "total": len(items), "offset": offset, "limit": limit}
            return httpx.Response(200, json=page)
        object_id = path.removeprefix("/objects/")
        if object_id.endswith("/metadata"):  # PUT: the metadata alone, of an object that must exist
            object_id = object_id.removesuffix("/metadata")
            if object_id not in self.objects:
                return error(404, "not_found", f"object {object_id!r} is not in the collection")(request)
            self.objects[object_id] = body
            return httpx.Response(200, json=body)
        if method == "PUT":
            self.objects[object_id] = body["metadata"]
            return httpx.Response(200, json=body["metadata"])
        if object_id not in self.objects:
            return error(404, "not_found", f"object {object_id!r} is not in the collection")(request)
        if method == "DELETE":
            del self.objects[object_id]
            return httpx.Response(200, json={"deleted": object_id})
        return httpx.Response(200, json=self.objects[object_id])

    def _geometric(self, request: httpx.Request, body: Any) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/extract":
            features = {"keypoints": "", "descriptors": "", "count": 0, "width": 64, "height": 48}
            fine = {**features, "width": 128, "height": 96} if body.get("fine") else None
            shortlist = [{"reference_id": i, "votes": v} for i, v in self.votes[: body.get("shortlist", 0)]]
            answer = {"features": features, "processing_time_ms": 1.0, "fine": fine, "shortlist": shortlist}
            if body.get("paintings"):
                answer["paintings"] = [
                    {"corners": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "box": [x0, y0, x1, y1], "score": 0.9}
                    for x0, y0, x1, y1 in self.paintings
                ]
            return httpx.Response(200, json=answer)
        if path == "/match/paintings":
            return httpx.Response(200, json=self._looks(body))
        if path == "/match/batch":
            results = [self.geometric.get(i, rejected(i)) for i in body["reference_ids"]]
            return httpx.Response(200, json={"results": results, "processing_time_ms": 1.0})
        object_id = path.removeprefix("/references/")
        if method == "PUT":
            return httpx.Response(200, json={"reference_id": object_id, "count": 500})
        return httpx.Response(200, json={"deleted": object_id})

    def _looks(self, body: Any) -> dict[str, Any]:
        answers = []
        for index, painting in enumerate(body["paintings"]):
            votes = self.look_votes[: body["shortlist"]]
            ids = list(dict.fromkeys([*(i for i, _ in votes), *painting["reference_ids"]]))
            results = [self.looks.get(i, rejected(i)) | {"painting": index} for i in ids]
            shortlist = [{"reference_id": i, "votes": v} for i, v in votes]
            answers.append({"keypoints": 900, "shortlist": shortlist, "results": results})
        return {"paintings": answers, "processing_time_ms": 1.0}
