"""In-process implementations of the recipe's protocols, for ``index build``: the embedding model and the feature
extractor run in this process, the features go into a :class:`FeatureStore` that is saved with the snapshot.

Imports torch/timm (through the embeddings service's model) and OpenCV (through the geometric service's extractor)
when used, so only the command line, which installs everything, imports this module. The model is built from the
same ``EMBEDDINGS_*`` settings as the embeddings service, so both embed alike.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from services.collection.features import FeatureSet, FeatureStore, OutdatedFeatures
from services.collection.recipe import Reference
from services.collection.stamp import ModelStamp
from services.common.images import to_array

if TYPE_CHECKING:
    from services.embeddings.settings import EmbeddingsSettings
    from services.geometric.verify import VerifyParams

log = logging.getLogger(__name__)


class ImageEmbedder(Protocol):
    """An in-process embedding model (the embeddings service's ``Embedder``)."""

    @property
    def name(self) -> str:
        """Model name, recorded in the snapshot's stamp."""
        ...

    @property
    def dimension(self) -> int:
        """Vector length D (known once loaded)."""
        ...

    def load(self) -> None:
        """Load the weights, once (idempotent and thread-safe; ``embed`` loads them too). Raises
        ``ConfigurationError`` when they do not fit."""
        ...

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(N, D)`` float32 rows of unit L2 norm."""
        ...


def model_stamp(embedder: ImageEmbedder) -> ModelStamp:
    """The stamp of an in-process model: name, dimension and, when it says, its preprocessing."""
    return ModelStamp(embedder.name, embedder.dimension, str(getattr(embedder, "preprocessing", "") or ""))


def load_embedder(settings: EmbeddingsSettings | None = None) -> ImageEmbedder:
    """The embedding model the embeddings service would serve with ``settings`` (default: from the environment,
    ``EMBEDDINGS_MODEL_NAME``, ``EMBEDDINGS_WEIGHTS_PATH``, ``EMBEDDINGS_IMAGE_SIZE``, ...), loaded.

    Raises:
        ConfigurationError: the settings name an unusable model; the message says the fix.
    """
    from services.embeddings.model import TimmEmbedder
    from services.embeddings.settings import EmbeddingsSettings

    embedder = TimmEmbedder.from_settings(settings or EmbeddingsSettings())
    embedder.load()
    return embedder


class DeferredEmbedder:
    """:func:`load_embedder`'s model, built and loaded by ``load()`` (or the first ``embed``), idempotent and
    thread-safe: nothing of torch or timm is imported before, so a caller can load it while other work runs.
    ``index build`` extracts the first references' features meanwhile (importing both and loading the model take
    4.5 s on this project's 2-core machine).

    ``load`` raises ``ConfigurationError`` when the settings name an unusable model.
    """

    def __init__(self, settings: EmbeddingsSettings | None = None) -> None:
        """The model of ``settings`` (default: from the environment when loaded)."""
        self._settings = settings
        self._model: ImageEmbedder | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Build and load the model, once."""
        with self._lock:
            if self._model is None:
                self._model = load_embedder(self._settings)

    @property
    def model(self) -> ImageEmbedder:
        """The loaded model (loaded now if it was not)."""
        self.load()
        assert self._model is not None  # set by load()
        return self._model

    @property
    def name(self) -> str:
        """The model's name."""
        return self.model.name

    @property
    def dimension(self) -> int:
        """The model's vector length."""
        return self.model.dimension

    @property
    def preprocessing(self) -> str:
        """The model's preprocessing, for the snapshot's stamp."""
        return str(getattr(self.model, "preprocessing", "") or "")

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The model's vectors of ``images``."""
        return self.model.embed(images)


class LocalEmbedder:
    """:class:`~services.collection.recipe.ReferenceEmbedder` over an in-process model."""

    def __init__(self, model: ImageEmbedder) -> None:
        """Wrap ``model``."""
        self.model = model

    async def embed_references(self, references: Sequence[Reference]) -> np.ndarray:
        """The model's vectors of the references' prepared pictures, in one call (the model batches), on a worker
        thread so that feature extraction can run meanwhile."""
        return await asyncio.to_thread(self.model.embed, [reference.image for reference in references])


class LocalFeatures:
    """:class:`~services.collection.recipe.FeatureExtractor` that extracts in-process into a feature store."""

    def __init__(self, store: FeatureStore, params: VerifyParams | None = None) -> None:
        """Extract with ``params`` (default: the geometric service's, which has no settings for them) into ``store``."""
        if params is None:
            from services.geometric.verify import VerifyParams

            params = VerifyParams()
        self.store = store
        self.params = params

    @classmethod
    def open(cls, path: Path, params: VerifyParams | None = None) -> LocalFeatures:
        """Extraction into the feature file at ``path``: its store when its features were made by this extractor,
        else an empty one (the file is missing, of an older format, or made with other settings: every reference is
        then extracted again).

        Raises:
            FeatureStoreError: the file is corrupt.
        """
        features = cls(FeatureStore(), params)
        stamp = features.params.extractor_stamp()
        try:
            features.store = FeatureStore.load_or_empty(path, extractor=stamp)
        except OutdatedFeatures as exc:
            log.warning("%s: extracting every reference's features again", exc)
            features.store = FeatureStore(extractor=stamp)
        return features

    async def put_features(self, reference: Reference) -> None:
        """Extract the reference's features (reference settings) and put them in the store."""
        self.store.put(reference.object_id, self.extract(reference))

    def extract(self, reference: Reference) -> FeatureSet:
        """The reference's features (reference settings); OpenCV releases the GIL, so threads extract in parallel."""
        from services.geometric.verify import extract_features

        return extract_features(to_array(reference.image), self.params, reference=True)

    async def extract_many(self, references: Sequence[Reference], pool: Executor) -> list[FeatureSet]:
        """Every reference's features, extracted on ``pool``'s threads at once, in the references' order (the
        caller puts them in the store in that order, so a build's feature file does not depend on thread timing)."""
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(pool, self.extract, r) for r in references)))
