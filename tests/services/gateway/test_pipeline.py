"""``/identify`` orchestration against scripted backends: what is called, merged, degraded and answered."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import pytest
from PIL import Image

from services.common import errors
from services.common.schemas import IdentifyOptions, ObjectMetadata, SearchHit, VerificationMethod
from services.decision.rule import DecisionParams
from services.gateway.pipeline import IdentifyPipeline, merge_hits
from tests.services.fakes import textured
from tests.services.gateway.backends import Backends, error, verified


def hit(object_id: str, score: float) -> SearchHit:
    return SearchHit(object_id, score, 0, ObjectMetadata(object_id=object_id, title=f"T-{object_id}"))


def test_merge_hits_keeps_the_best_score_per_object_best_first():
    rows = [
        [hit("a", 0.50), hit("b", 0.40)],
        [hit("b", 0.90), hit("c", 0.30)],
        [hit("a", 0.45), hit("c", 0.35)],
    ]

    merged = merge_hits(rows, k=10)

    assert [(c.object_id, c.similarity) for c in merged] == [("b", 0.90), ("a", 0.50), ("c", 0.35)]
    assert merged[0].metadata.title == "T-b"


def test_merge_hits_keeps_at_most_k():
    rows = [[hit(f"o{i}", 1.0 - i / 100) for i in range(20)]]

    assert [c.object_id for c in merge_hits(rows, k=3)] == ["o0", "o1", "o2"]
    assert merge_hits([[], []], k=5) == []


def test_merge_hits_appends_the_shortlisted_objects_the_embedding_missed_with_their_votes():
    rows = [[hit("a", 0.50), hit("b", 0.40)]]
    included = [hit("far", 0.10), hit("a", 0.50), hit("mid", 0.30)]

    merged = merge_hits(rows, k=10, included=included, votes={"far": 40, "a": 3, "mid": 7})

    assert [(c.object_id, c.similarity, c.votes, c.embedding_rank) for c in merged] == [
        ("a", 0.50, 3, 1),
        ("b", 0.40, 0, 2),
        ("mid", 0.30, 7, 0),
        ("far", 0.10, 40, 0),
    ]


def _catalogue(*object_ids: str) -> dict[str, dict]:
    return {i: {"object_id": i, "title": f"Title {i}", "artist": "Painter", "date": "1890"} for i in object_ids}


def identify(
    backends: Backends,
    options: IdentifyOptions | None = None,
    params: DecisionParams | None = None,
    **settings: int,
):
    clients = backends.clients()
    pipeline = IdentifyPipeline(
        clients["embeddings"],
        clients["search"],
        clients["geometric"],
        params or DecisionParams(),
        query_max_side=256,
        **settings,
    )

    async def run():
        try:
            return await pipeline.identify(textured(1, (400, 300)), options or IdentifyOptions())
        finally:
            for client in clients.values():
                await client.aclose()

    return asyncio.run(run())


def test_a_verified_candidate_is_the_match_with_its_catalogue_entry():
    backends = Backends(
        hits=[("wrong", 0.80), ("right", 0.70)],
        objects=_catalogue("wrong", "right"),
        geometric={"right": verified("right", inliers=120)},
    )

    answer = identify(backends, IdentifyOptions(include_alternatives=True))

    assert answer.success and answer.match is not None
    assert answer.match.object_id == "right" and answer.match.name == "Title right"
    assert answer.match.artist == "Painter" and answer.match.year == "1890"
    assert answer.match.verification_method is VerificationMethod.GEOMETRIC
    assert answer.match.similarity_score == 0.7 and answer.match.geometric_score == pytest.approx(120 / 145, abs=1e-4)
    assert answer.match.image_url == "/objects/right/image"
    assert [m.object_id for m in answer.matches] == ["right"]
    assert [m.object_id for m in answer.alternatives] == ["wrong"]
    assert not answer.degraded and not answer.geometric_skipped and answer.message is None
    assert [row.object_id for row in answer.debug.candidates] == ["wrong", "right"]
    right = answer.debug.candidates[1]
    assert right.verified is True and right.inliers == 120 and right.score == answer.match.geometric_score
    assert answer.debug.threshold == DecisionParams().threshold  # the cut decide applied: the fitted one


def test_every_region_is_embedded_and_the_candidates_are_verified_in_one_batch():
    backends = Backends(hits=[("a", 0.9), ("b", 0.8)], objects=_catalogue("a", "b"))

    identify(backends, IdentifyOptions(k=7))

    regions = backends.body_of("embeddings", "POST", "/embed")["regions"]
    assert regions[0] == [0.0, 0.0, 1.0, 1.0]
    search = backends.body_of("search", "POST", "/search")
    assert search["k"] == 7 and len(search["vectors"]) == len(regions)
    assert backends.body_of("geometric", "POST", "/match/batch")["reference_ids"] == ["a", "b"]
    assert backends.service_calls("geometric") == [("POST", "/extract"), ("POST", "/match/batch")]


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_at_most_max_regions_are_embedded_the_whole_photo_first(limit):
    backends = Backends(hits=[("a", 0.9)], objects=_catalogue("a"))

    answer = identify(backends, max_regions=limit)

    regions = backends.body_of("embeddings", "POST", "/embed")["regions"]
    assert 1 <= len(regions) <= limit and regions[0] == [0.0, 0.0, 1.0, 1.0]
    assert answer.debug.regions == len(regions)
    if limit == 8:  # a textured photo gets located paintings and fixed views beyond the four kept by default
        assert len(regions) > 4


def test_the_query_is_sent_downscaled_as_jpeg():
    backends = Backends(hits=[])

    identify(backends)

    image = backends.body_of("embeddings", "POST", "/embed")["image"]
    assert backends.body_of("geometric", "POST", "/extract")["image"] == image
    sent = Image.open(io.BytesIO(base64.b64decode(image)))
    assert sent.format == "JPEG" and max(sent.size) == 256


def test_an_empty_collection_is_a_valid_no_match():
    answer = identify(Backends(hits=[]))

    assert answer.success and answer.match is None and answer.matches == []
    assert answer.message == "the collection is empty"


def test_unverified_candidates_give_no_match_with_a_message():
    answer = identify(Backends(hits=[("a", 0.99)], objects=_catalogue("a")))

    assert answer.match is None
    assert answer.message == "no artwork of the collection was recognised in this photo"
    assert answer.alternatives is None


def test_geometric_verification_can_be_switched_off_per_request():
    backends = Backends(hits=[("a", 0.97), ("b", 0.5)], objects=_catalogue("a", "b"))

    answer = identify(backends, IdentifyOptions(geometric_verification=False))

    assert backends.service_calls("geometric") == []
    assert answer.geometric_skipped and answer.geometric_skip_reason == "disabled by request"
    assert not answer.degraded
    assert answer.match.object_id == "a" and answer.match.verification_method is VerificationMethod.EMBEDDING_ONLY


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ConnectError, id="refused"),
        pytest.param(httpx.ReadTimeout, id="timeout"),
        pytest.param(error(500, "internal_error"), id="500"),
        pytest.param(error(503, "not_ready"), id="503"),
    ],
)
def test_geometric_failure_degrades_to_an_embedding_only_answer(failure):
    backends = Backends(hits=[("a", 0.97), ("b", 0.5)], objects=_catalogue("a", "b"), fail={"geometric": failure})

    answer = identify(backends)

    assert answer.degraded and answer.degradation_reason.startswith("geometric verification unavailable")
    assert answer.geometric_skipped and answer.geometric_skip_reason == answer.degradation_reason
    assert answer.match.object_id == "a"
    assert answer.match.verification_method is VerificationMethod.EMBEDDING_ONLY
    assert answer.match.geometric_score is None


def test_a_match_batch_failure_after_a_good_extract_also_degrades():
    backends = Backends(
        hits=[("a", 0.97)],
        objects=_catalogue("a"),
        geometric={"a": verified("a")},
        fail={"geometric /match/batch": error(502, "backend_error")},
    )

    answer = identify(backends)

    assert backends.service_calls("geometric") == [("POST", "/extract"), ("POST", "/match/batch")]
    assert answer.degraded and answer.match.verification_method is VerificationMethod.EMBEDDING_ONLY


@pytest.mark.parametrize(
    "service, failure, expected",
    [
        pytest.param("embeddings", httpx.ConnectError, errors.BackendUnavailable, id="embeddings-refused"),
        pytest.param("search", httpx.ConnectError, errors.BackendUnavailable, id="search-refused"),
        pytest.param("embeddings", httpx.ReadTimeout, errors.BackendTimeout, id="embeddings-timeout"),
        pytest.param("search", error(500, "internal_error"), errors.BackendError, id="search-500"),
        pytest.param("embeddings", error(400, "invalid_image"), errors.InvalidImage, id="embeddings-400"),
        pytest.param("geometric", error(400, "invalid_image"), errors.InvalidImage, id="geometric-400"),
    ],
)
def test_failures_of_the_shortlist_or_client_errors_are_raised(service, failure, expected):
    backends = Backends(hits=[("a", 0.9)], objects=_catalogue("a"), fail={service: failure})

    with pytest.raises(expected) as caught:
        identify(backends)

    if expected.status >= 500:
        assert caught.value.details["backend"] == service


def test_the_finer_features_go_with_the_candidates_to_verify_first():
    backends = Backends(hits=[("a", 0.8), ("b", 0.7)], objects=_catalogue("a", "b"), geometric={"b": verified("b")})

    identify(backends, fine_candidates=5)

    assert backends.body_of("geometric", "POST", "/extract")["fine"] is True
    batch = backends.body_of("geometric", "POST", "/match/batch")
    assert batch["reference_ids"] == ["a", "b"]
    assert batch["fine_query"]["width"] == 128 and batch["fine_first"] == 5
    assert batch["query"]["width"] == 64


def test_without_a_second_try_no_finer_features_are_asked_for():
    backends = Backends(hits=[("a", 0.8)], objects=_catalogue("a"), geometric={"a": verified("a")})
    clients = backends.clients()
    pipeline = IdentifyPipeline(
        clients["embeddings"], clients["search"], clients["geometric"], DecisionParams(), fine_candidates=0
    )

    async def run():
        try:
            return await pipeline.identify(textured(1, (400, 300)), IdentifyOptions())
        finally:
            for client in clients.values():
                await client.aclose()

    assert asyncio.run(run()).match is not None
    assert backends.body_of("geometric", "POST", "/extract")["fine"] is False
    batch = backends.body_of("geometric", "POST", "/match/batch")
    assert batch.get("fine_query") is None and batch["fine_first"] == 0


def test_an_artwork_only_the_local_features_shortlist_is_verified_and_answered():
    backends = Backends(
        hits=[("other", 0.80)],
        objects=_catalogue("other", "dark"),
        geometric={"dark": verified("dark", inliers=60)},
        votes=[("dark", 25)],
        scores={"dark": 0.41},
    )
    answer = identify(backends, shortlist=5)

    assert backends.body_of("geometric", "POST", "/extract")["shortlist"] == 5
    assert backends.body_of("search", "POST", "/search")["include"] == ["dark"]
    assert backends.body_of("geometric", "POST", "/match/batch")["reference_ids"] == ["other", "dark"]
    assert answer.match is not None and answer.match.object_id == "dark" and answer.match.name == "Title dark"
    assert answer.match.similarity_score == 0.41
    assert [(c.object_id, c.votes) for c in answer.debug.candidates] == [("other", 0), ("dark", 25)]
    assert [c.embedding_rank for c in answer.debug.candidates] == [1, 0]


def test_without_a_shortlist_nothing_extra_is_asked_or_verified():
    backends = Backends(hits=[("a", 0.8)], objects=_catalogue("a", "b"), votes=[("b", 30)])

    identify(backends)
    assert backends.body_of("geometric", "POST", "/extract")["shortlist"] == 10  # the pipeline's default

    identify(backends, shortlist=0)
    assert backends.body_of("geometric", "POST", "/extract")["shortlist"] == 0
    assert backends.body_of("search", "POST", "/search")["include"] == []
    assert backends.body_of("geometric", "POST", "/match/batch")["reference_ids"] == ["a"]
