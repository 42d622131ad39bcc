"""Settings of the geometric service (env prefix ``GEOMETRIC_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.collection.layout import FEATURES_FILE, default_snapshot_dir
from services.common.settings import ServiceSettings, port_field
from services.common.topology import facts

_SERVICE = facts("geometric")
VOTE_MAX_DESCRIPTORS = 8_000_000
"""Default of ``vote_max_descriptors``; FAISS-free here so that the infrastructure's sizing reads it."""
MAX_DEFAULT_THREADS = 4
"""Most numeric threads the geometric service takes by default, however many cores it sees."""
VOTE_BYTES_PER_DESCRIPTOR = 136
"""Memory of one descriptor in the vote index: 128 one-byte values and an 8-byte id."""


class GeometricSettings(ServiceSettings):
    """Geometric service settings."""

    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)

    port: int = port_field(_SERVICE)
    """TCP port to listen on."""
    threads: int = Field(default_factory=lambda: usable_cores(MAX_DEFAULT_THREADS), ge=1, le=64)
    """Threads for OpenCV, FAISS and BLAS; default the cores this process may run on, at most
    :data:`MAX_DEFAULT_THREADS`. Unlike the other services' one: the query's SIFT is the longest step of
    ``/identify`` and the other services wait for it, and OpenCV splits it over these threads (an 800-px photo
    93 -> 60 ms on two cores, the same keypoints; the same throughput at concurrency 8). The deployment sets it from
    the task's vCPUs."""
    snapshot_dir: Path = Field(default_factory=default_snapshot_dir)
    """Directory of the collection snapshot; reference features are the file ``features.npz`` in it."""
    autosave: bool = True
    """Save the features after every change; turn off on read-only replicas."""
    reload_interval_s: float = Field(default=5.0, ge=0.0)
    """Seconds between checks for a newer features file written by another process; 0 disables."""
    max_keypoints: int = Field(default=5000, ge=1)
    """Most keypoints accepted in query features sent by a client."""
    verify_threads: int = Field(default=2, ge=1, le=64)
    """Threads verifying one request's candidates in parallel (one OpenCV thread each); about the CPU cores."""
    vote_max_descriptors: int = Field(default=VOTE_MAX_DESCRIPTORS, ge=0)
    """Most reference descriptors the vote shortlist indexes (136 bytes each in memory, ~500 per reference): above,
    at load, the shortlist is the embedding's alone. 8 000 000 is ~1.1 GB, about 16 000 references."""

    @property
    def features_file(self) -> Path:
        """The features file inside the snapshot directory."""
        return self.snapshot_dir / FEATURES_FILE


def usable_cores(cap: int) -> int:
    """The cores this process may run on (its CPU affinity, which a container's cpuset narrows), at most ``cap``."""
    return max(1, min(cap, len(os.sched_getaffinity(0))))
