"""The model stamp: which embedding model, at which dimension and preprocessing, made a snapshot's vectors.

Vectors from two models (or one model fed differently) are not comparable, so a snapshot records its stamp beside
the vectors (in ``search.npz``'s state) and every producer of query vectors is checked against it: ``index build``
refuses to add to a snapshot of another model, and the stack refuses to start when the embeddings service serves
another model than the snapshot's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.collection.layout import Snapshot
from services.collection.vector_file import read_vector_state
from services.common.errors import ConfigurationError


class ModelMismatch(ConfigurationError):
    """The vectors of a snapshot and the model that embeds queries (or new references) do not match."""


@dataclass(frozen=True)
class ModelStamp:
    """What made a set of vectors.

    Attributes:
        model: the embedding model's name (a timm architecture name for the built-in embedder).
        dimension: vector length D.
        preprocessing: how images were fed to the model (e.g. ``whole-image 224x224 bicubic``); "" when unknown, as
            in snapshots written before it was recorded, and then not compared.
    """

    model: str
    dimension: int
    preprocessing: str = ""

    def differences(self, other: ModelStamp) -> list[str]:
        """The fields that differ, as ``field: mine != other's`` texts (empty when the stamps agree)."""
        found = []
        if self.model != other.model:
            found.append(f"model: {self.model!r} != {other.model!r}")
        if self.dimension != other.dimension:
            found.append(f"dimension: {self.dimension} != {other.dimension}")
        if self.preprocessing and other.preprocessing and self.preprocessing != other.preprocessing:
            found.append(f"preprocessing: {self.preprocessing!r} != {other.preprocessing!r}")
        return found

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ModelStamp | None:
        """The stamp of the model an embeddings service serves, from its ``GET /info`` body; None while the model
        is not loaded (no dimension yet) or when the body has no model."""
        model = info.get("model")
        if not isinstance(model, Mapping) or not model.get("name") or not model.get("dimension"):
            return None
        return cls(str(model["name"]), int(model["dimension"]), str(model.get("preprocessing") or ""))


def read_model_stamp(snapshot: Path) -> ModelStamp | None:
    """The stamp recorded in a snapshot's vector file; None when there is no vector file yet, or when its vectors
    came through the API without a model name.

    Raises:
        SnapshotError: the vector file exists but is unreadable.
    """
    path = Snapshot(Path(snapshot)).search_file
    if not path.exists():
        return None
    state = read_vector_state(path)
    if not state.get("model"):
        return None
    return ModelStamp(str(state["model"]), int(state["dimension"]), str(state.get("preprocessing") or ""))


def ensure_same_model(recorded: ModelStamp, serving: ModelStamp, *, snapshot: Path, who: str) -> None:
    """Refuse ``serving`` (the model ``who`` embeds with) when it differs from ``recorded`` (the snapshot's).

    Raises:
        ModelMismatch: with both stamps and the fixes (configure the snapshot's model, or rebuild the snapshot).
    """
    differences = recorded.differences(serving)
    if differences:
        raise ModelMismatch(
            f"snapshot {snapshot} was built with model {recorded.model!r} but {who} uses {serving.model!r} "
            f"({'; '.join(differences)}); set EMBEDDINGS_MODEL_NAME / EMBEDDINGS_WEIGHTS_PATH / EMBEDDINGS_IMAGE_SIZE "
            "to the snapshot's model, or build a new snapshot with this model (`artwork-matcher index build` into "
            "another --snapshot)"
        )


def check_model(snapshot: Path, serving: ModelStamp, *, who: str) -> None:
    """:func:`ensure_same_model` against the stamp recorded in ``snapshot`` (nothing to check when it has none).

    Raises:
        ModelMismatch: the snapshot's vectors came from another model.
        SnapshotError: the snapshot's vector file is unreadable.
    """
    recorded = read_model_stamp(snapshot)
    if recorded is not None:
        ensure_same_model(recorded, serving, snapshot=Path(snapshot), who=who)
