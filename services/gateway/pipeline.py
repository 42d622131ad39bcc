"""``/identify`` orchestration: embed and extract concurrently, search, verify, decide. No HTTP framework here."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image

from services.common import errors
from services.common.images import encode_base64, resize_max_side, to_jpeg
from services.common.schemas import (
    EmbedResponse,
    ExtractResponse,
    IdentifyDebug,
    IdentifyOptions,
    IdentifyResponse,
    LocatedPainting,
    Match,
    MatchResult,
    ObjectMetadata,
    SearchHit,
    Timing,
    VerificationMethod,
)
from services.decision.duplicates import NearDuplicateRule, NearDuplicates, pair_near_duplicates
from services.decision.evidence import evidence_of
from services.decision.rule import Candidate, Decision, DecisionParams, Scored, decide
from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient
from services.gateway.looks import PaintingLooks, merge, queries, unexplained, verified_results
from services.gateway.regions import propose_regions

log = logging.getLogger(__name__)
T = TypeVar("T")


def merge_hits(
    rows: list[list[SearchHit]],
    k: int,
    included: list[SearchHit] | None = None,
    votes: dict[str, int] | None = None,
) -> list[Candidate]:
    """One candidate per object with its best similarity over all regions, best first: the embedding's top ``k``,
    then the ``included`` objects (the local-feature shortlist, scored by search) that are not among them, each
    with its ``votes``."""
    votes = votes or {}
    best: dict[str, SearchHit] = {}
    for row in rows:
        for hit in row:
            if hit.object_id not in best or hit.score > best[hit.object_id].score:
                best[hit.object_id] = hit
    ranked = sorted(best.values(), key=lambda h: h.score, reverse=True)[:k]
    chosen = {h.object_id for h in ranked}
    extra = sorted((h for h in included or [] if h.object_id not in chosen), key=lambda h: h.score, reverse=True)
    return [
        Candidate(h.object_id, h.score, h.metadata, votes=votes.get(h.object_id, 0), embedding_rank=rank)
        for rank, h in [*enumerate(ranked, start=1), *((0, h) for h in extra)]
    ]


def to_match(scored: Scored, near_duplicates: list[str] | None = None) -> Match:
    """The public form of a scored candidate; ``near_duplicates``: the partners answered right after it."""
    c = scored.candidate
    meta = c.metadata or ObjectMetadata(object_id=c.object_id)
    return Match(
        object_id=c.object_id,
        name=meta.title,
        artist=meta.artist,
        year=meta.date,
        confidence=round(scored.confidence, 4),
        similarity_score=round(c.similarity, 4),
        geometric_score=round(c.geometric.score, 4) if c.geometric is not None else None,
        verification_method=VerificationMethod.GEOMETRIC if scored.geometric else VerificationMethod.EMBEDDING_ONLY,
        image_url=f"/objects/{c.object_id}/image",
        query_box=_box_of(c) if scored.geometric else None,
        near_duplicate_of=scored.near_duplicate_of,
        near_duplicates=near_duplicates or [],
    )


def to_matches(answers: list[Scored]) -> list[Match]:
    """The public form of a decision's answers, each answer listing the near-duplicate partners that follow it."""
    partners: dict[str, list[str]] = {}
    for s in answers:
        if s.near_duplicate_of is not None:
            partners.setdefault(s.near_duplicate_of, []).append(s.candidate.object_id)
    return [to_match(s, partners.get(s.candidate.object_id)) for s in answers]


@dataclass
class _Stages:
    embedding_ms: float = 0.0
    search_ms: float = 0.0
    geometric_ms: float = 0.0


class IdentifyPipeline:
    """Runs one identification against the backends."""

    def __init__(
        self,
        embeddings: EmbeddingsClient,
        search: SearchClient,
        geometric: GeometricClient,
        params: DecisionParams,
        *,
        query_max_side: int = 1024,
        max_regions: int = 4,
        default_k: int = 5,
        fine_candidates: int = 0,
        shortlist: int = 10,
        looks: PaintingLooks | None = None,
        near_duplicates: NearDuplicates | None = None,
        near_duplicate_rule: NearDuplicateRule | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.search = search
        self.geometric = geometric
        self.params = params
        self.query_max_side = query_max_side
        self.max_regions = max_regions
        self.default_k = default_k
        self.fine_candidates = fine_candidates
        self.shortlist = shortlist
        self.looks = looks or PaintingLooks()
        self.near_duplicates: NearDuplicates = near_duplicates or {}
        self.near_duplicate_rule = near_duplicate_rule or NearDuplicateRule()

    async def identify(self, image: Image.Image, options: IdentifyOptions) -> IdentifyResponse:
        """Identify the artworks in a decoded, upright RGB photo."""
        started = time.perf_counter()
        stages = _Stages()
        payload, regions = await asyncio.to_thread(self._prepare, image)
        embedded, features, degradation = await self._embed_and_extract(payload, regions, options, stages)

        k = options.k or self.default_k
        votes = {v.reference_id: v.votes for v in features.shortlist} if features is not None else {}
        hits_response, stages.search_ms = await self._timed(self.search.search(embedded.embeddings, k, list(votes)))
        candidates = merge_hits(hits_response.results, k, hits_response.included, votes)

        if features is not None and candidates:
            candidates, degradation = await self._verify(features, candidates, stages)
        use_geometric = features is not None and degradation is None
        looked: list[int] = []
        if use_geometric and features is not None:
            candidates, looked = await self._look_closer(payload, features, candidates, embedded.embeddings, k, stages)
        decision = decide(candidates, self.params, use_geometric=use_geometric, threshold=options.threshold)
        decision = pair_near_duplicates(
            decision, candidates, self.near_duplicates, self.params, self.near_duplicate_rule
        )
        located = features.paintings if features is not None else []
        return self._response(
            decision, candidates, options, stages, started, degradation, use_geometric, regions, (located, looked)
        )

    async def _embed_and_extract(
        self, payload: str, regions: list[list[float]], options: IdentifyOptions, stages: _Stages
    ) -> tuple[EmbedResponse, ExtractResponse | None, str | None]:
        """Embed the photo's regions and, when verification is asked for, extract its local features meanwhile: the
        embeddings, the features (None when not asked for or unavailable) and why verification is degraded."""
        embed_task = asyncio.create_task(self._timed(self.embeddings.embed(payload, regions)))
        extract_task = (
            asyncio.create_task(
                self._timed(
                    self.geometric.extract(
                        payload, fine=self.fine_candidates > 0, shortlist=self.shortlist, paintings=self.looks.looks > 0
                    )
                )
            )
            if options.geometric_verification
            else None
        )
        try:
            embedded, stages.embedding_ms = await embed_task
        except BaseException:
            if extract_task is not None:
                extract_task.cancel()
            raise
        if extract_task is None:
            return embedded, None, None
        try:
            features, stages.geometric_ms = await extract_task
        except errors.ServiceError as exc:
            if exc.status < 500:
                raise
            return embedded, None, f"geometric verification unavailable: {exc.message}"
        return embedded, features, None

    async def _verify(
        self, features: ExtractResponse, candidates: list[Candidate], stages: _Stages
    ) -> tuple[list[Candidate], str | None]:
        """Verify the candidates against the photo's features: the candidates with their results attached, or as
        they were and why verification is degraded when the geometric service fails."""
        try:
            verified, match_ms = await self._timed(
                self.geometric.match_batch(
                    features.features,
                    [c.object_id for c in candidates],
                    fine=features.fine,
                    fine_first=self.fine_candidates,
                )
            )
        except errors.ServiceError as exc:
            if exc.status < 500:
                raise
            return candidates, f"geometric verification unavailable: {exc.message}"
        stages.geometric_ms += match_ms
        return _attach(candidates, verified.results), None

    async def _look_closer(
        self,
        payload: str,
        features: ExtractResponse,
        candidates: list[Candidate],
        vectors: list[list[float]],
        k: int,
        stages: _Stages,
    ) -> tuple[list[Candidate], list[int]]:
        """Verify the located paintings no verified candidate covers on their own rectified crops (``looks.py``);
        a failure of this optional step keeps the whole photo's answer."""
        chosen = unexplained(features.paintings, candidates, self.looks)
        if not chosen:
            return candidates, []
        try:
            response, look_ms = await self._timed(
                self.geometric.match_paintings(
                    payload, queries(features.paintings, chosen, candidates), shortlist=self.looks.shortlist
                )
            )
            stages.geometric_ms += look_ms
            found = verified_results(response, chosen)
            known = {c.object_id for c in candidates}
            new = [object_id for object_id in found if object_id not in known]
            hits: dict[str, SearchHit] = {}
            if new:
                scored, search_ms = await self._timed(self.search.search(vectors, 1, new))
                stages.search_ms += search_ms
                hits = {h.object_id: h for h in scored.included}
        except errors.ServiceError as exc:
            if exc.status < 500:
                raise
            log.warning("closer look at located paintings skipped: %s", exc.message)
            return candidates, []
        return merge(candidates, found, hits), chosen

    def _prepare(self, image: Image.Image) -> tuple[str, list[list[float]]]:
        """The downscaled photo as base64 JPEG, and the regions to embed (CPU work, run off the event loop)."""
        query = resize_max_side(image, self.query_max_side)
        return encode_base64(to_jpeg(query)), propose_regions(query, self.max_regions)

    @staticmethod
    async def _timed(awaitable: Awaitable[T]) -> tuple[T, float]:
        started = time.perf_counter()
        result = await awaitable
        return result, (time.perf_counter() - started) * 1000

    def _response(
        self,
        decision: Decision,
        candidates: list[Candidate],
        options: IdentifyOptions,
        stages: _Stages,
        started: float,
        degradation: str | None,
        use_geometric: bool,
        regions: list[list[float]],
        paintings: tuple[list[LocatedPainting], list[int]] = ([], []),
    ) -> IdentifyResponse:
        matches = to_matches(decision.matches)
        skipped = not options.geometric_verification
        message = None
        if not matches:
            message = (
                "no artwork of the collection was recognised in this photo" if candidates else "the collection is empty"
            )
        return IdentifyResponse(
            success=True,
            match=matches[0] if matches else None,
            matches=matches,
            alternatives=[to_match(s) for s in decision.alternatives[:5]] if options.include_alternatives else None,
            message=message,
            timing=Timing(
                embedding_ms=round(stages.embedding_ms, 2),
                search_ms=round(stages.search_ms, 2),
                geometric_ms=round(stages.geometric_ms, 2),
                total_ms=round((time.perf_counter() - started) * 1000, 2),
            ),
            debug=IdentifyDebug(
                regions=len(regions),
                candidates=[evidence_of(c) for c in candidates],
                threshold=decision.threshold,
                paintings=paintings[0],
                looked_closer=paintings[1],
            ),
            geometric_skipped=skipped or not use_geometric,
            geometric_skip_reason="disabled by request" if skipped else (degradation if not use_geometric else None),
            degraded=degradation is not None,
            degradation_reason=degradation,
        )


def _box_of(candidate: Candidate) -> list[float] | None:
    """Where a verified candidate lies in the photo, rounded for the answer."""
    g = candidate.geometric
    return [round(v, 4) for v in g.query_box] if g is not None and g.query_box is not None else None


def _attach(candidates: list[Candidate], results: list[MatchResult]) -> list[Candidate]:
    by_id = {r.reference_id: r for r in results}
    return [dataclasses.replace(c, geometric=by_id.get(c.object_id)) for c in candidates]
