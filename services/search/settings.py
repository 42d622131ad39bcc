"""Settings of the search service (env prefix ``SEARCH_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.collection.layout import SEARCH_FILE, default_snapshot_dir
from services.collection.vector_file import RECALL_TARGET
from services.common.settings import ServiceSettings, port_field
from services.common.topology import facts

_SERVICE = facts("search")


class SearchSettings(ServiceSettings):
    """Search service settings."""

    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)

    port: int = port_field(_SERVICE)
    """TCP port to listen on."""
    snapshot_dir: Path = Field(default_factory=default_snapshot_dir)
    """Directory of the collection snapshot; the index is the file ``search.npz`` in it."""
    index_kind: Literal["flat", "ivf", "auto"] = "auto"
    """``auto``: exact until ``compress_above`` objects, then a compressed inverted file (IVF, 8-bit codes) trained
    on the collection; ``flat``: always exact; ``ivf``: uncompressed inverted lists (``ivf_lists``, ``ivf_probe``)."""
    compress_above: int = Field(default=50_000, ge=1000)
    """``auto``: collection size (objects) at which the index is compressed, once."""
    expected_size: int = Field(default=0, ge=0)
    """``auto``: objects the collection is expected to reach (sizes the inverted lists; 0: the size at compression)."""
    recall_target: float = Field(default=RECALL_TARGET, gt=0.0, le=1.0)
    """``auto``: recall@10 against exact search that the lists visited per query are tuned to, at compression."""
    ivf_lists: int = Field(default=256, ge=1)
    """IVF: number of inverted lists (used once the collection is large enough to train them)."""
    ivf_probe: int = Field(default=16, ge=1)
    """IVF: lists visited per query (recall/speed trade-off)."""
    autosave: bool = True
    """Save the snapshot after every add/remove; turn off on read-only replicas."""
    reload_interval_s: float = Field(default=5.0, ge=0.0)
    """Seconds between checks for a newer snapshot written by another process; 0 disables."""

    @property
    def snapshot_file(self) -> Path:
        """The index file inside the snapshot directory."""
        return self.snapshot_dir / SEARCH_FILE
