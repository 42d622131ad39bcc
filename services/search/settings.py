"""Settings of the search service (env prefix ``SEARCH_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.collection.layout import SEARCH_FILE, default_snapshot_dir
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
    index_kind: Literal["flat", "ivf"] = "flat"
    """``flat``: exact inner product; ``ivf``: inverted lists for collections of many thousands."""
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
