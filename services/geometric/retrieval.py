"""A shortlist from local features: every query descriptor votes for the reference owning its nearest descriptor.

The embedding shortlist loses paintings that are small, dark, glare-washed or seen through an action camera: their
whole-photo (or region) embedding sits near other photos, not near their reference. Local features hold there, so
like classic image-retrieval engines we index every reference descriptor once and let each query descriptor that
passes Lowe's ratio test against its two nearest neighbours (over the whole collection) vote for the reference that
owns the nearest one. References with the most votes join the candidates to verify.

The index is exact (FAISS flat L2) for small collections and an inverted file (IVF, trained on the collection,
``nprobe`` lists searched) above :data:`IVF_MIN_DESCRIPTORS` descriptors. It is updated in place when one
reference is added, replaced or removed; a trained IVF keeps its centroids until the next full rebuild (a reload).

Memory: descriptors are quantised RootSIFT, whole numbers 0..255, so both indexes store them as one byte a value
(FAISS ``QT_8bit_direct``, 128 B a descriptor plus an 8-byte id, a quarter of float32) and compute the same L2
distances exactly (squared distances of such vectors are integers below 2^24, exact in float32): the vote is
unchanged. It is still the geometric service's largest part: about 500 descriptors, ~67 KB, per reference.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import faiss
import numpy as np

from services.collection.features import DESCRIPTOR_SIZE, FeatureSet

IVF_MIN_DESCRIPTORS = 100_000
"""Below this many reference descriptors the index is exact; above, an inverted file."""
SLOT_BITS = 20
"""A descriptor's id is ``slot << SLOT_BITS | row``: up to a million keypoints per reference."""
NEIGHBOURS = 4
"""Nearest reference descriptors looked up per query descriptor, to find the nearest of another reference."""
TRAIN_PER_LIST = 40
"""Training descriptors per inverted list (FAISS warns below 39): enough for stable centroids, few enough that a
start-up trains in seconds."""
ADD_BATCH = 65_536
"""Descriptors added to the index per call when rebuilding: one call per reference (~500 rows) spends most of its
time starting FAISS's threads and small matrix products."""
TRAIN_ITERATIONS = 10
"""k-means passes when training the inverted lists (FAISS's default is 25). Measured on 4.95 M descriptors (10 000
synthetic references, 4 451 lists, two threads): training 28 -> 11 s; the dev sets' figures unchanged."""


@dataclass(frozen=True)
class Vote:
    """A reference and the number of query descriptors that voted for it."""

    object_id: str
    votes: int


class VoteIndex:
    """Nearest-descriptor index over every reference's descriptors, thread-safe, updated per reference.

    Args:
        ratio: Lowe's ratio between the nearest and the second-nearest descriptor of the whole collection.
        nprobe: inverted lists searched per query descriptor once the index is an IVF.
        min_votes: fewest votes for a reference to be shortlisted.
    """

    def __init__(self, *, ratio: float = 0.9, nprobe: int = 4, min_votes: int = 2) -> None:
        self.ratio = ratio
        self.nprobe = nprobe
        self.min_votes = min_votes
        self._lock = threading.Lock()
        self._index: faiss.Index = _exact_index()
        self._slots: dict[str, int] = {}
        self._owners: dict[int, str] = {}
        self._next_slot = 0

    @property
    def descriptors(self) -> int:
        """Descriptors indexed."""
        return int(self._index.ntotal)

    @property
    def kind(self) -> str:
        """``flat`` (exact) or ``ivf<nlist>``."""
        inner = faiss.extract_index_ivf(self._index) if isinstance(self._index, faiss.IndexIVF) else None
        return f"ivf{inner.nlist}" if inner is not None else "flat"

    def rebuild(self, items: Mapping[str, FeatureSet], *, threads: int | None = None) -> None:
        """Index ``items`` from scratch: exact when small, else an IVF trained on a sample of them.

        Training and adding run on ``threads`` FAISS threads (default: every core), the request-time cap restored
        afterwards: a rebuild happens at start-up or on a reload, when the cores are otherwise idle or nearly so.
        """
        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
        try:
            self._rebuild(items)
        finally:
            faiss.omp_set_num_threads(previous)

    def _rebuild(self, items: Mapping[str, FeatureSet]) -> None:
        total = sum(len(f) for f in items.values())
        if total >= IVF_MIN_DESCRIPTORS:
            nlist = int(2 * math.sqrt(total))
            ivf = faiss.IndexIVFScalarQuantizer(
                faiss.IndexFlatL2(DESCRIPTOR_SIZE), DESCRIPTOR_SIZE, nlist, _BYTES, faiss.METRIC_L2, False
            )
            ivf.cp.niter = TRAIN_ITERATIONS
            ivf.train(_training_sample(items, TRAIN_PER_LIST * nlist))
            ivf.nprobe = self.nprobe
            index: faiss.Index = ivf
        else:
            index = _exact_index()
        slots: dict[str, int] = {}
        batch: list[tuple[np.ndarray, np.ndarray]] = []
        batched = 0
        for slot, (object_id, features) in enumerate(items.items()):
            slots[object_id] = slot
            if len(features):
                batch.append((features.descriptors, _ids(slot, len(features))))
                batched += len(features)
            if batched >= ADD_BATCH:
                _add(index, batch)
                batch, batched = [], 0
        _add(index, batch)
        with self._lock:
            self._index = index
            self._slots = slots
            self._owners = {slot: object_id for object_id, slot in slots.items()}
            self._next_slot = len(slots)

    def put(self, object_id: str, features: FeatureSet) -> None:
        """Index (or re-index) one reference's descriptors."""
        with self._lock:
            self._remove_locked(object_id)
            slot = self._next_slot
            self._next_slot += 1
            self._slots[object_id] = slot
            self._owners[slot] = object_id
            if len(features):
                self._index.add_with_ids(_values(features.descriptors), _ids(slot, len(features)))

    def remove(self, object_id: str) -> None:
        """Drop one reference's descriptors; nothing when it is not indexed."""
        with self._lock:
            self._remove_locked(object_id)

    def _remove_locked(self, object_id: str) -> None:
        slot = self._slots.pop(object_id, None)
        if slot is None:
            return
        del self._owners[slot]
        self._index.remove_ids(faiss.IDSelectorRange(slot << SLOT_BITS, (slot + 1) << SLOT_BITS))

    def vote(self, query: FeatureSet, limit: int) -> list[Vote]:
        """The ``limit`` references with most votes (at least ``min_votes``), most first, ties by id.

        A query descriptor votes for the owner of its nearest reference descriptor when that one is clearly nearer
        (``ratio``) than the nearest descriptor of any *other* reference: repeated texture within one painting
        (brocade, foliage, a frame's moulding) must not cancel its own vote, only a rival painting can.
        """
        if limit < 1 or len(query) == 0:
            return []
        with self._lock:
            if self._index.ntotal < 2:
                return []
            distances, labels = self._index.search(_values(query.descriptors), NEIGHBOURS)
        slots = np.where(labels >= 0, labels >> SLOT_BITS, -1)
        rival = _first_rival(slots, np.sqrt(np.maximum(distances, 0)))
        nearest = np.sqrt(np.maximum(distances[:, 0], 0))
        distinct = (slots[:, 0] >= 0) & (nearest < self.ratio * rival)
        voted, counts = np.unique(slots[distinct, 0], return_counts=True)
        enough = counts >= self.min_votes
        with self._lock:  # a reference removed since the search has no owner any more and gets no vote
            found = [(self._owners.get(int(s)), int(c)) for s, c in zip(voted[enough], counts[enough], strict=True)]
        votes = [Vote(owner, c) for owner, c in found if owner is not None]
        votes.sort(key=lambda v: (-v.votes, v.object_id))
        return votes[:limit]


def _first_rival(slots: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Per row, the distance of the first neighbour owned by another reference than the nearest one; the farthest
    neighbour's distance when all of them share the owner (a lower bound of the rival's); 0 (no vote) when the row
    has fewer than two neighbours."""
    other = (slots != slots[:, :1]) & (slots >= 0)
    other[:, 0] = False
    first = np.argmax(other, axis=1)
    found = other[np.arange(len(slots)), first]
    valid = (slots >= 0).sum(axis=1)
    last = distances[np.arange(len(slots)), np.maximum(valid - 1, 0)]
    rival = np.where(found, distances[np.arange(len(slots)), first], last)
    return np.where(valid >= 2, rival, 0.0)


_BYTES = faiss.ScalarQuantizer.QT_8bit_direct
"""A descriptor value stored as its own byte: exact for whole numbers 0..255."""


def _values(descriptors: np.ndarray) -> np.ndarray:
    """Quantised descriptors as float32 whole numbers, unscaled: what the byte-stored index holds exactly (a common
    scale changes no distance ratio, so votes are those of the scaled RootSIFT vectors)."""
    return np.ascontiguousarray(descriptors, dtype=np.float32)


def _exact_index() -> faiss.Index:
    """Exact L2 over byte-stored descriptors, keyed by descriptor id."""
    return faiss.IndexIDMap2(faiss.IndexScalarQuantizer(DESCRIPTOR_SIZE, _BYTES, faiss.METRIC_L2))


def _ids(slot: int, count: int) -> np.ndarray:
    return (np.int64(slot) << SLOT_BITS) + np.arange(count, dtype=np.int64)


def _add(index: faiss.Index, batch: list[tuple[np.ndarray, np.ndarray]]) -> None:
    if batch:
        index.add_with_ids(_values(np.concatenate([d for d, _ in batch])), np.concatenate([i for _, i in batch]))


def _training_sample(items: Mapping[str, FeatureSet], size: int) -> np.ndarray:
    """Up to ``size`` descriptors spread evenly over the collection (a fixed stride over all of them in order, so
    builds are repeatable), taken reference by reference: the collection's descriptors are never copied whole."""
    total = sum(len(f) for f in items.values())
    stride = max(1, total // size)
    parts, offset = [], 0
    for features in items.values():
        count = len(features)
        if count:
            parts.append(np.asarray(features.descriptors[(-offset) % stride :: stride]))
        offset += count
    if not parts:
        return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    return _values(np.concatenate(parts)[:size])
