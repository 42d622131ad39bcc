"""The geometric service's state: the reference :class:`FeatureStore` bound to its file, reloadable by replicas."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.common.atomic import file_signature
from services.geometric.store import FeatureStore
from services.geometric.verify import FeatureSet, PairResult, VerifyParams, verify_pair

log = logging.getLogger(__name__)


class References:
    """Reference features with persistence after each change and pick-up of newer files."""

    def __init__(
        self, path: Path, *, params: VerifyParams | None = None, autosave: bool = True, threads: int = 1
    ) -> None:
        """Bind to ``path``; ``threads`` > 1 verifies one request's references on that many threads (OpenCV
        releases the GIL while matching and estimating)."""
        self.path = Path(path)
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="verify") if self.threads > 1 else None
        self.params = params or VerifyParams()
        self.autosave = autosave
        self.store = FeatureStore()
        self._signature: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the features file if there is one."""
        signature = file_signature(self.path)
        if signature is None:
            log.info("no features at %s: starting empty", self.path)
            return
        self.store = FeatureStore.load(self.path)
        self._signature = signature
        log.info("loaded features of %d references from %s", len(self.store), self.path)

    def reload_if_changed(self) -> bool:
        """Load the file again when another writer replaced it."""
        signature = file_signature(self.path)
        if signature is None or signature == self._signature:
            return False
        self.load()
        return True

    def put(self, object_id: str, features: FeatureSet) -> None:
        """Store (or replace) a reference's features and save."""
        with self._lock:
            self.store.put(object_id, features)
            self._save()

    def remove(self, object_id: str) -> bool:
        """Drop a reference's features and save; False when absent."""
        with self._lock:
            removed = self.store.remove(object_id)
            if removed:
                self._save()
            return removed

    def verify(self, query: FeatureSet, object_ids: list[str]) -> list[tuple[str, PairResult | None]]:
        """Verify the query against each reference; None for ids without stored features."""
        store = self.store

        def one(object_id: str) -> tuple[str, PairResult | None]:
            reference = store.get(object_id)
            return object_id, verify_pair(query, reference, self.params) if reference is not None else None

        if self._pool is None or len(object_ids) < 2:
            return [one(object_id) for object_id in object_ids]
        return list(self._pool.map(one, object_ids))

    def close(self) -> None:
        """Stop the verification threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _save(self) -> None:
        if self.autosave:
            self.store.save(self.path)
            self._signature = file_signature(self.path)
