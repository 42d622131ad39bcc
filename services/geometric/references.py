"""The geometric service's state: the reference :class:`FeatureStore` bound to its file, reloadable by replicas."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from services.common.atomic import file_signature
from services.geometric.store import FeatureStore
from services.geometric.verify import FeatureSet, PairResult, VerifyParams, verify_pair

log = logging.getLogger(__name__)


class References:
    """Reference features with persistence after each change and pick-up of newer files."""

    def __init__(self, path: Path, *, params: VerifyParams | None = None, autosave: bool = True) -> None:
        self.path = Path(path)
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
        results: list[tuple[str, PairResult | None]] = []
        for object_id in object_ids:
            reference = store.get(object_id)
            results.append((object_id, verify_pair(query, reference, self.params) if reference is not None else None))
        return results

    def _save(self) -> None:
        if self.autosave:
            self.store.save(self.path)
            self._signature = file_signature(self.path)
