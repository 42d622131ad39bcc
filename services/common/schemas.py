"""Wire contracts, defined once and shared by the services and the gateway's clients.

Arrays travel as base64 of their raw little-endian bytes; their shapes are written beside each field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

K_MAX = 100
"""Largest number of candidates a search may ask for."""

Box = Annotated[list[Annotated[float, Meta(ge=0.0, le=1.0)]], Meta(min_length=4, max_length=4)]
"""A region ``[x0, y0, x1, y1]`` in fractions of the image's width and height."""

OBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""Object ids: letters, digits, dot, underscore, dash, starting with a letter or digit; no path separators; at most
128 characters. Declared once: the wire structs, every service's path parameters and the snapshot's file names use
it."""

ObjectId = Annotated[str, Meta(pattern=OBJECT_ID_PATTERN)]
"""An object id on the wire (see :data:`OBJECT_ID_PATTERN`)."""


LINK_PATTERN = r"^(https?://[^\s<>\"]{1,2000})?$"
"""A catalogue entry's link: empty, or an absolute ``http``/``https`` URL without spaces (never ``javascript:``,
``data:`` or a relative path, so a page can put it in ``href`` as it is)."""

CatalogueLink = Annotated[str, Meta(pattern=LINK_PATTERN)]
"""A catalogue entry's link on the wire (see :data:`LINK_PATTERN`)."""


class HealthStatus(StrEnum):
    """Roll-up health of a service."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class VerificationMethod(StrEnum):
    """How a match was confirmed."""

    GEOMETRIC = "geometric"
    EMBEDDING_ONLY = "embedding_only"


class ErrorBody(Struct):
    """The one error shape of every service."""

    error: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class Health(Struct):
    """``GET /health`` answer."""

    status: HealthStatus
    service: str
    version: str
    checks: dict[str, Any] = msgspec.field(default_factory=dict)


# --- embeddings -------------------------------------------------------------------------------------------------


class EmbedRequest(Struct, forbid_unknown_fields=True):
    """One image (``image``) or a batch (``images``), base64; optional regions cropped from each image."""

    image: str | None = None
    images: Annotated[list[str], Meta(min_length=1, max_length=64)] | None = None
    regions: Annotated[list[Box], Meta(min_length=1, max_length=16)] | None = None


class EmbedResponse(Struct):
    """Embeddings, L2-normalised float32: row ``i * per_image + j`` is image ``i``, region ``j``."""

    embeddings: list[list[float]]
    dimension: int
    model: str
    per_image: int
    processing_time_ms: float


# --- search -----------------------------------------------------------------------------------------------------


class ObjectMetadata(Struct, forbid_unknown_fields=True):
    """Catalogue entry of one artwork, stored beside its vector."""

    object_id: ObjectId
    title: str = ""
    artist: str = ""
    date: str = ""
    room: str = ""
    extra: dict[str, str] = msgspec.field(default_factory=dict)
    image_file: str | None = None
    source_sha256: str | None = None
    description: str = ""
    """A few sentences visitors read on the result card (optional)."""
    link: CatalogueLink = ""
    """Where visitors read more: an absolute http(s) URL, or empty."""


CatalogueText = Annotated[str, Meta(max_length=2000)]
"""A catalogue field's text (at most 2000 characters)."""


class CatalogueUpdate(Struct, forbid_unknown_fields=True):
    """A change of an artwork's catalogue fields: each field given replaces the stored one (surrounding white space
    dropped; ``""`` clears it), absent ones are kept. The image, vector and features stay as they are."""

    title: CatalogueText | None = None
    artist: CatalogueText | None = None
    date: CatalogueText | None = None
    room: CatalogueText | None = None
    description: CatalogueText | None = None
    link: CatalogueLink | None = None

    def apply(self, metadata: ObjectMetadata) -> ObjectMetadata:
        """``metadata`` with the given fields replaced."""
        given = {f: v.strip() for f in self.__struct_fields__ if isinstance(v := getattr(self, f), str)}
        return msgspec.structs.replace(metadata, **given)


class SearchRequest(Struct, forbid_unknown_fields=True):
    """Query vectors (each L2-normalised, the index's dimension) and how many hits per vector; ``include``: objects
    to score as well, whatever their rank (the gateway's local-feature shortlist)."""

    vectors: Annotated[list[list[float]], Meta(min_length=1, max_length=32)]
    k: Annotated[int, Meta(ge=1, le=K_MAX)] = 10
    include: Annotated[list[ObjectId], Meta(max_length=K_MAX)] = msgspec.field(default_factory=list)


class SearchHit(Struct):
    """One candidate: object id, inner-product score (cosine for normalised vectors), rank from 1, metadata."""

    object_id: str
    score: float
    rank: int
    metadata: ObjectMetadata | None = None


class SearchResponse(Struct):
    """``results[i]`` are the hits of ``vectors[i]``, best first; ``included``: each requested ``include`` object
    that is indexed, with its best score over all vectors and rank 0."""

    results: list[list[SearchHit]]
    index_size: int
    processing_time_ms: float
    included: list[SearchHit] = msgspec.field(default_factory=list)


class UpsertRequest(Struct, forbid_unknown_fields=True):
    """Add or replace one object's vector and metadata."""

    vector: list[float]
    metadata: ObjectMetadata


class ObjectList(Struct):
    """A page of catalogue entries."""

    objects: list[ObjectMetadata]
    total: int
    offset: int
    limit: int


# --- geometric --------------------------------------------------------------------------------------------------


class Features(Struct, forbid_unknown_fields=True):
    """Local features of one image.

    ``keypoints``: base64 float32 (N, 2) pixel coordinates; ``descriptors``: base64 uint8 (N, 128) quantised
    RootSIFT descriptors (each component × 255 of a unit-norm RootSIFT row).
    """

    keypoints: str
    descriptors: str
    count: Annotated[int, Meta(ge=0)]
    width: Annotated[int, Meta(ge=1)]
    height: Annotated[int, Meta(ge=1)]


class ExtractRequest(Struct, forbid_unknown_fields=True):
    """An image, base64; ``fine``: also return a finer feature set (more keypoints at a higher resolution);
    ``shortlist``: also return up to this many references that the image's descriptors vote for; ``paintings``:
    also locate the framed paintings in it."""

    image: str
    fine: bool = False
    shortlist: Annotated[int, Meta(ge=0, le=K_MAX)] = 0
    paintings: bool = False


Corner = Annotated[list[Annotated[float, Meta(ge=-1.0, le=2.0)]], Meta(min_length=2, max_length=2)]
"""A point ``[x, y]`` as fractions of the photo's width and height (a located painting may reach past the edge)."""


class LocatedPainting(Struct):
    """A framed painting the localiser found in the photo: ``corners`` clockwise from the top-left, ``box`` their
    bounding box ``[x0, y0, x1, y1]`` clipped to the photo (fractions of its width and height), ``score`` how well
    the quadrilateral fits the outline found (0..1)."""

    corners: list[Corner]
    box: list[float]
    score: float


class ShortlistVote(Struct):
    """A reference the query's local features point to: ``votes`` query descriptors whose nearest descriptor in
    the whole collection is this reference's, clearly nearer than the second nearest (Lowe's ratio)."""

    reference_id: str
    votes: int


class ExtractResponse(Struct):
    """The features of the image, the finer set when asked for, the local-feature shortlist when asked for (most
    votes first), and the time taken."""

    features: Features
    processing_time_ms: float
    fine: Features | None = None
    shortlist: list[ShortlistVote] = msgspec.field(default_factory=list)
    paintings: list[LocatedPainting] = msgspec.field(default_factory=list)


class MatchRequest(Struct, forbid_unknown_fields=True):
    """Verify query features (or a query image) against one stored reference."""

    reference_id: ObjectId
    query: Features | None = None
    image: str | None = None


class MatchBatchRequest(Struct, forbid_unknown_fields=True):
    """Verify query features (or a query image) against several stored references.

    With ``fine_query`` (the finer set of ``/extract``), each of the first ``fine_first`` references that does not
    verify against ``query`` is tried again against it: small paintings on a wall photo get too few keypoints at
    the standard resolution.
    """

    reference_ids: Annotated[list[ObjectId], Meta(min_length=1, max_length=K_MAX)]
    query: Features | None = None
    image: str | None = None
    fine_query: Features | None = None
    fine_first: Annotated[int, Meta(ge=0, le=K_MAX)] = 0


class MatchResult(Struct):
    """Outcome of verifying one reference against the query.

    ``inliers``: matches consistent with the homography; ``good_matches``: matches passing the ratio test;
    ``score``: inliers in excess of what chance gives for this reference, in 0..1; ``reason`` says why a pair was
    not verified (``too_few_matches``, ``no_homography``, ``degenerate_homography``, ``too_few_inliers``,
    ``inliers_on_border``, ``unknown_reference``); ``interior_inliers``: inliers on the painting itself, away from
    the reference's border band (frames repeat across a collection and prove nothing alone); ``painting``: the
    index of the located painting whose rectified crop it was verified against (``/match/paintings``), null for the
    whole photo. ``homography`` and ``query_box`` are in the frame of the photo's standard features either way.
    """

    reference_id: str
    verified: bool
    inliers: int
    good_matches: int
    inlier_ratio: float
    score: float
    spread: float
    reason: str | None = None
    homography: list[float] | None = None
    query_box: list[float] | None = None
    interior_inliers: int = 0
    fine: bool = False
    painting: int | None = None


class MatchBatchResponse(Struct):
    """One result per requested reference, in request order."""

    results: list[MatchResult]
    processing_time_ms: float


class PaintingQuery(Struct, forbid_unknown_fields=True):
    """A located painting to look at closely: its ``corners`` (as ``LocatedPainting.corners``) and references to
    verify against it besides those its own descriptors vote for."""

    corners: Annotated[list[Corner], Meta(min_length=4, max_length=4)]
    reference_ids: Annotated[list[ObjectId], Meta(max_length=K_MAX)] = msgspec.field(default_factory=list)


class MatchPaintingsRequest(Struct, forbid_unknown_fields=True):
    """Verify located paintings of a photo one by one: each is rectified (its perspective undone) at a higher
    resolution than the whole photo is described at, its features vote over the collection, and its ``shortlist``
    most-voted references (plus its ``reference_ids``) are verified against it."""

    image: str
    paintings: Annotated[list[PaintingQuery], Meta(min_length=1, max_length=8)]
    shortlist: Annotated[int, Meta(ge=0, le=20)] = 4


class PaintingMatches(Struct):
    """One located painting's outcome: its keypoints, the references its descriptors voted for (most first) and the
    verification of each reference checked (``painting`` set, boxes in the photo)."""

    keypoints: int
    shortlist: list[ShortlistVote]
    results: list[MatchResult]


class MatchPaintingsResponse(Struct):
    """One entry per requested painting, in request order, and the time taken."""

    paintings: list[PaintingMatches]
    processing_time_ms: float


class ReferenceRequest(Struct, forbid_unknown_fields=True):
    """An artwork's reference image, base64."""

    image: str


class ReferenceInfo(Struct):
    """A stored reference's feature count."""

    reference_id: str
    count: int


# --- gateway (public) -------------------------------------------------------------------------------------------


class IdentifyOptions(Struct, forbid_unknown_fields=True):
    """Per-request options of ``POST /identify``; ``k`` and ``threshold`` default to the gateway's settings."""

    k: Annotated[int, Meta(ge=1, le=K_MAX)] | None = None
    threshold: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    geometric_verification: bool = True
    include_alternatives: bool = False


class IdentifyRequest(Struct, forbid_unknown_fields=True):
    """``POST /identify`` JSON body: base64 image (data-URL prefix allowed) and options."""

    image: str
    options: IdentifyOptions = msgspec.field(default_factory=IdentifyOptions)


def _doc(text: str) -> Meta:
    """A field's description in the OpenAPI document."""
    return Meta(description=text)


class Match(Struct):
    """One identified artwork; ``query_box`` is where it lies in the photo, ``[x0, y0, x1, y1]`` fractions of its
    width and height, null when it was not located (an embedding-only answer).

    When the collection holds two references of (nearly) the same picture (a near-duplicate pair of the collection
    report) and the photo's evidence cannot tell them apart, both are answered: the better one first, listing the
    other in ``near_duplicates``, and the other right after it with ``near_duplicate_of`` naming the first. The pair
    is one declared ambiguity ("it is one of these two"), not two artworks in the photo."""

    object_id: str
    name: str
    artist: str
    year: str
    confidence: float
    similarity_score: float
    geometric_score: float | None
    verification_method: VerificationMethod
    image_url: str
    query_box: list[float] | None = None
    near_duplicate_of: Annotated[
        str | None,
        _doc(
            "The answer right before this one when this is its near-duplicate reference (the same picture) that the "
            "photo cannot tell apart from it; null for an answer in its own right."
        ),
    ] = None
    near_duplicates: Annotated[
        list[str],
        _doc("Near-duplicate references the photo cannot tell apart from this answer, answered right after it."),
    ] = msgspec.field(default_factory=list)


class Timing(Struct):
    """Time spent per stage, milliseconds."""

    embedding_ms: float
    search_ms: float
    geometric_ms: float
    total_ms: float


class CandidateEvidence(Struct):
    """One shortlisted artwork's evidence as the decision saw it, rounded for the answer. The geometric fields are
    null when the candidate was not checked (verification disabled or down), else the check's outcome (see
    ``MatchResult``)."""

    object_id: str
    similarity: Annotated[float, _doc("Best cosine similarity over the photo's regions (4 decimals).")]
    embedding_rank: Annotated[
        int, _doc("1-based rank among the embedding's candidates; 0: only the local-feature shortlist proposed it.")
    ] = 0
    votes: Annotated[int, _doc("Query descriptors that voted for it; 0: not voted for.")] = 0
    verified: Annotated[bool | None, _doc("Whether the geometric check verified it; null: not checked.")] = None
    reason: Annotated[str | None, _doc("Why the check did not verify it (a MatchResult reason).")] = None
    inliers: Annotated[int | None, _doc("Matches consistent with the homography.")] = None
    good_matches: Annotated[int | None, _doc("Matches passing the ratio test.")] = None
    inlier_ratio: Annotated[float | None, _doc("inliers / good_matches (3 decimals).")] = None
    spread: Annotated[
        float | None, _doc("Share of the reference covered by its inliers' convex hull (3 decimals).")
    ] = None
    interior_inliers: Annotated[int | None, _doc("Inliers away from the reference's border band.")] = None
    score: Annotated[float | None, _doc("Inliers in excess of chance for this reference, 0..1 (4 decimals).")] = None
    fine: Annotated[bool | None, _doc("Whether it was checked against the photo's finer features.")] = None
    query_box: Annotated[
        list[float] | None, _doc("Where the painting lies in the photo, [x0, y0, x1, y1] fractions (4 decimals).")
    ] = None
    painting: Annotated[
        int | None,
        _doc("Index in debug.paintings of the located painting whose rectified crop verified it; null: whole photo."),
    ] = None

    @property
    def checked(self) -> bool:
        """Whether a geometric check ran on this candidate."""
        return self.verified is not None


class IdentifyDebug(Struct):
    """How ``/identify`` reached its answer."""

    regions: Annotated[int, _doc("Regions of the photo embedded, the whole photo included.")]
    candidates: Annotated[list[CandidateEvidence], _doc("Every candidate's evidence, best similarity first.")]
    threshold: Annotated[float, _doc("The least confidence an answer needed (the request's, else the gateway's).")]
    paintings: Annotated[
        list[LocatedPainting],
        _doc("The framed paintings the localiser found in the photo (empty when verification did not run)."),
    ] = msgspec.field(default_factory=list)
    looked_closer: Annotated[
        list[int],
        _doc("Indexes in paintings of those rectified and verified alone (no verified box held them)."),
    ] = msgspec.field(default_factory=list)


class IdentifyResponse(Struct):
    """``POST /identify`` answer: every verified artwork best first (a near-duplicate partner the photo cannot tell
    apart right after its answer, see ``Match``); ``match`` is the best or null."""

    success: bool
    match: Match | None
    matches: list[Match]
    alternatives: list[Match] | None
    message: str | None
    timing: Timing
    debug: IdentifyDebug
    geometric_skipped: bool
    geometric_skip_reason: str | None
    degraded: bool
    degradation_reason: str | None
