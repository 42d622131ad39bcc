"""Task memory of the search and geometric services from the expected collection size (``expectedArtworks``).

What each service holds per artwork, from the collection's formats and ``bench/scale.py`` (see
``components/README.md``):

- search: the process (~90 MiB), then per artwork its vector (exact: 1280 float32 = 5 KiB; compressed, from
  :data:`~services.collection.vector_file.COMPRESS_ABOVE` artworks on: 1280 bytes and an id) and its id and
  catalogue fields (~0.5 KiB).
- geometric: the process with OpenCV and FAISS (~180 MiB), ids and offsets of the memory-mapped features (~0.2 KiB
  an artwork), and the vote index: 136 bytes for each of ~500 descriptors an artwork, up to the service's
  ``vote_max_descriptors`` (above it the shortlist is the embedding's alone and the index is not built).

A task gets the configured memory, or the smallest Fargate memory for its CPU that keeps the need under its memory
scaling target, whichever is larger. A need beyond the largest task is refused with what to do: shard the collection
(several search or geometric services, each holding part of it, behind the gateway).
"""

from __future__ import annotations

import math

from services.collection.vector_file import COMPRESS_ABOVE
from services.geometric.settings import VOTE_BYTES_PER_DESCRIPTOR, VOTE_MAX_DESCRIPTORS

MIB = 1 << 20
SEARCH_BASE_MIB = 90
"""Resident memory of an empty search service (``bench/memory.py``: 88-90 MiB)."""
SEARCH_EXACT_BYTES = 1280 * 4 + 512
"""An artwork in the exact index: its float32 vector, plus its id and catalogue fields."""
SEARCH_COMPRESSED_BYTES = 1280 + 8 + 512
"""An artwork in the compressed index: its 8-bit codes and id in the inverted lists, plus id and catalogue fields."""
GEOMETRIC_BASE_MIB = 180
"""Resident memory of the geometric service before its references (OpenCV, FAISS, the request threads)."""
GEOMETRIC_REFERENCE_BYTES = 200
"""An artwork's id and offsets into the memory-mapped feature file."""
DESCRIPTORS_PER_ARTWORK = 500
"""Reference descriptors per artwork (the dev collection: 495 on average)."""


def search_memory_mib(artworks: int) -> int:
    """Resident memory the search service needs for ``artworks``, MiB."""
    per = SEARCH_EXACT_BYTES if artworks < COMPRESS_ABOVE else SEARCH_COMPRESSED_BYTES
    return SEARCH_BASE_MIB + math.ceil(artworks * per / MIB)


def geometric_memory_mib(artworks: int, vote_max_descriptors: int = VOTE_MAX_DESCRIPTORS) -> int:
    """Resident memory the geometric service needs for ``artworks``, MiB (the vote index up to its budget)."""
    descriptors = artworks * DESCRIPTORS_PER_ARTWORK
    voted = descriptors if descriptors <= vote_max_descriptors else 0
    held = voted * VOTE_BYTES_PER_DESCRIPTOR + artworks * GEOMETRIC_REFERENCE_BYTES
    return GEOMETRIC_BASE_MIB + math.ceil(held / MIB)


def needed_mib(service: str, artworks: int) -> int:
    """The memory ``service`` needs for ``artworks`` (0 for a service whose memory does not grow with them)."""
    if artworks < 0:
        raise ValueError(f"expectedArtworks must not be negative, got {artworks}")
    if service == "search":
        return search_memory_mib(artworks)
    if service == "geometric":
        return geometric_memory_mib(artworks)
    return 0


def vote_budget(memory_mib: int, target_percent: int, artworks: int) -> int:
    """Descriptors the geometric service's vote index may hold in a ``memory_mib`` task kept under
    ``target_percent``: what is left after the process and the references' ids, at 136 bytes each."""
    left = memory_mib * target_percent / 100 - GEOMETRIC_BASE_MIB - artworks * GEOMETRIC_REFERENCE_BYTES / MIB
    return max(0, int(left * MIB // VOTE_BYTES_PER_DESCRIPTOR))


def task_memory_mib(need_mib: int, target_percent: int, configured: int, allowed: range) -> int | None:
    """The smallest of ``allowed`` (the Fargate memories of the task's CPU) at least ``configured`` and keeping
    ``need_mib`` under ``target_percent`` of it; None when even the largest does not."""
    wanted = max(configured, math.ceil(need_mib * 100 / target_percent))
    return next((memory for memory in allowed if memory >= wanted), None)
