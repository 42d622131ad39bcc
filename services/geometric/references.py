"""The geometric service's state: the reference :class:`FeatureStore` bound to its file, reloadable by replicas."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from services.collection.features import FeatureFileWatch, FeatureSet, FeatureStore
from services.common.runtime import release_free_memory
from services.geometric.retrieval import Vote, VoteIndex
from services.geometric.settings import VOTE_MAX_DESCRIPTORS
from services.geometric.verify import PairResult, VerifyParams, verify_pair

log = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")


class References:
    """Reference features with persistence after each change, pick-up of newer files, and the vote index of their
    descriptors (the local-feature shortlist).

    The features stay in their file, memory-mapped (:meth:`FeatureStore.load` ``mapped``): a reference's are read
    when it is verified, so the service's memory does not grow with the collection; the vote index, which must hold
    every descriptor to vote, is built only up to ``vote_max_descriptors``.
    """

    def __init__(
        self,
        path: Path,
        *,
        params: VerifyParams | None = None,
        autosave: bool = True,
        threads: int = 1,
        vote_max_descriptors: int = VOTE_MAX_DESCRIPTORS,
    ) -> None:
        """Bind to ``path``; ``threads`` > 1 verifies one request's references on that many threads (OpenCV
        releases the GIL while matching and estimating)."""
        self.path = Path(path)
        self.vote_max_descriptors = vote_max_descriptors
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="verify") if self.threads > 1 else None
        self.params = params or VerifyParams()
        self.autosave = autosave
        self.store = FeatureStore(extractor=self.params.extractor_stamp())
        self.votes = VoteIndex(ratio=self.params.vote_ratio)
        self._watch = FeatureFileWatch(self.path)
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the features file if there is one."""
        signature = self._watch.current()
        if signature is None:
            log.info("no features at %s: starting empty", self.path)
            return
        store = FeatureStore.load(self.path, extractor=self.params.extractor_stamp(), mapped=True)
        votes = VoteIndex(ratio=self.params.vote_ratio)
        total = store.keypoints_total()
        if total <= self.vote_max_descriptors:
            votes.rebuild(store.items())
        else:
            log.warning(
                "%d reference descriptors exceed vote_max_descriptors %d: no vote shortlist, the embedding's only",
                total,
                self.vote_max_descriptors,
            )
        store.release()
        release_free_memory()  # the rebuild's batches and training sample
        self.store, self.votes = store, votes
        self._watch.seen = signature
        log.info(
            "loaded features of %d references from %s (vote index: %s, %d descriptors)",
            len(store),
            self.path,
            votes.kind,
            votes.descriptors,
        )

    def reload_if_changed(self) -> bool:
        """Load the file again when another writer replaced it; True when reloaded."""
        return self._watch.reload_if_replaced(self.load)

    def put(self, object_id: str, features: FeatureSet) -> None:
        """Store (or replace) a reference's features and save."""
        with self._lock:
            self.store.put(object_id, features)
            self.votes.put(object_id, features)
            self._save()

    def remove(self, object_id: str) -> bool:
        """Drop a reference's features and save; False when absent."""
        with self._lock:
            removed = self.store.remove(object_id)
            self.votes.remove(object_id)
            if removed:
                self._save()
            return removed

    def shortlist(self, query: FeatureSet, limit: int) -> list[Vote]:
        """The references most query descriptors vote for (see :mod:`services.geometric.retrieval`)."""
        return self.votes.vote(query, limit)

    def verify(
        self, query: FeatureSet, object_ids: list[str], *, fine: FeatureSet | None = None, fine_first: int = 0
    ) -> list[tuple[str, PairResult | None]]:
        """Verify the query against each reference; None for ids without stored features.

        With ``fine``, each of the first ``fine_first`` references that did not verify is tried again against the
        query's finer feature set, and the finer result replaces it when that one verifies.
        """
        store = self.store

        def one(object_id: str, features: FeatureSet) -> PairResult | None:
            reference = store.get(object_id)
            return verify_pair(features, reference, self.params) if reference is not None else None

        results = self._map(lambda object_id: one(object_id, query), object_ids)
        if fine is not None and fine_first > 0:
            retry = [i for i, r in enumerate(results[:fine_first]) if r is not None and not r.verified]
            for i, again in zip(retry, self._map(lambda i: one(object_ids[i], fine), retry), strict=True):
                if again is not None and again.verified:
                    results[i] = dataclasses.replace(again, fine=True)
        return list(zip(object_ids, results, strict=True))

    def _map(self, function: Callable[[T], U], items: Sequence[T]) -> list[U]:
        if self._pool is None or len(items) < 2:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    def close(self) -> None:
        """Stop the verification threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _save(self) -> None:
        if self.autosave:
            self.store.save(self.path)
            self._watch.mark_written()
