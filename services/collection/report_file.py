"""The collection report (``artwork-matcher index doctor``, and ``index build`` after a build that changed the
snapshot): its wire and file shape, and the snapshot's ``report.json`` that keeps the last one for the curator page
and for ``/identify``, which answers both references of a near-duplicate pair when a photo cannot tell them apart.

Framework-free and light (msgspec only): the gateway reads the file and serves it as it is; the analysis that makes
a report lives in :mod:`services.collection.doctor`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import msgspec
from msgspec import Struct

from services.collection.layout import Snapshot
from services.common.atomic import atomic_write_bytes


class Flag(StrEnum):
    """What the report can say about an artwork."""

    NEAR_DUPLICATE = "near_duplicate"
    """Its reference and another's show the same picture (they verify against each other geometrically)."""
    CONFUSABLE = "confusable"
    """Its embedding sits so close to another artwork's that a photo could be answered as the other."""
    FEW_KEYPOINTS = "few_keypoints"
    """Its reference has too few local features for a photo of it to verify reliably."""
    TOO_SMALL = "too_small"
    """Its reference image is too small (shorter side) to verify a photo against."""
    NO_FEATURES = "no_features"
    """It is in the index but has no stored reference features: it can only be answered by the embedding."""
    NO_IMAGE = "no_image"
    """It is in the index but its reference image is missing."""
    MISSING_TITLE = "missing_title"
    """Its catalogue entry has no title."""
    MISSING_ARTIST = "missing_artist"
    """Its catalogue entry has no artist."""


PAIR_FLAGS = (Flag.NEAR_DUPLICATE, Flag.CONFUSABLE)
"""Flags that name a pair of artworks."""


class Thresholds(Struct, frozen=True, forbid_unknown_fields=True):
    """Where the report draws its lines.

    Attributes:
        neighbours: nearest artworks (by embedding) each artwork is compared with for near-duplicates.
        near_duplicate_min_similarity: smallest cosine similarity of a pair checked for a near-duplicate.
        confusable_similarity: cosine similarity at or above which two different artworks are called confusable.
        min_keypoints: fewest reference keypoints (of the extractor's ``reference_features``) not flagged.
        min_side: smallest shorter side, in pixels, of a reference image not flagged.
    """

    neighbours: int = 5
    near_duplicate_min_similarity: float = 0.5
    confusable_similarity: float = 0.8
    min_keypoints: int = 200
    min_side: int = 256


class PairFinding(Struct, frozen=True):
    """Two artworks the report names together (``a`` < ``b``), why, and the evidence."""

    flag: Flag
    a: str
    b: str
    similarity: float
    """Cosine similarity of their embeddings."""
    inliers: int
    """Geometric inliers of the better direction of the two references verified against each other."""


class ArtworkFinding(Struct, frozen=True):
    """The flags of one artwork and, for the pair flags, the other artworks."""

    object_id: str
    title: str
    flags: list[Flag]
    details: dict[str, str] = msgspec.field(default_factory=dict)
    """Per flag, a sentence a curator reads (numbers included)."""
    related: list[str] = msgspec.field(default_factory=list)
    """Artworks named with it in a pair finding."""


class CollectionReport(Struct, frozen=True):
    """A collection report: every flagged artwork and flagged pair, and the counts per flag."""

    generated_at: str
    """When it was made (ISO 8601, UTC)."""
    objects: int
    """Artworks in the snapshot when it was made."""
    thresholds: Thresholds
    counts: dict[str, int]
    """Artworks per flag (every flag named, zeros included)."""
    artworks: list[ArtworkFinding]
    """Flagged artworks, by object id."""
    pairs: list[PairFinding]
    """Flagged pairs, near-duplicates first, then by falling similarity."""
    seconds: float = 0.0
    """How long the analysis took."""

    def near_duplicate_partners(self) -> dict[str, frozenset[str]]:
        """Per artwork named in a near-duplicate pair, the artworks it is paired with (what ``/identify`` reads)."""
        partners: dict[str, set[str]] = {}
        for pair in self.pairs:
            if pair.flag is Flag.NEAR_DUPLICATE:
                partners.setdefault(pair.a, set()).add(pair.b)
                partners.setdefault(pair.b, set()).add(pair.a)
        return {object_id: frozenset(others) for object_id, others in partners.items()}


class ReportFileError(ValueError):
    """``report.json`` exists but is not a collection report; the message names the file and the fix."""


def write_report(snapshot: Path, report: CollectionReport) -> Path:
    """Replace ``<snapshot>/report.json`` atomically with ``report``; returns its path."""
    path = Snapshot(Path(snapshot)).report_file
    atomic_write_bytes(path, msgspec.json.format(msgspec.json.encode(report), indent=2))
    return path


def read_report(snapshot: Path) -> CollectionReport | None:
    """The last report of ``<snapshot>``, or None when neither ``index doctor`` nor ``index build`` wrote one.

    Raises:
        ReportFileError: the file is unreadable or not a report of this version.
    """
    path = Snapshot(Path(snapshot)).report_file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReportFileError(f"{path}: unreadable ({exc})") from exc
    try:
        return msgspec.json.decode(data, type=CollectionReport)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise ReportFileError(f"{path}: not a collection report ({exc}); run `artwork-matcher index doctor`") from exc
