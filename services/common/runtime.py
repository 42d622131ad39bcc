"""Process-level runtime set-up: thread pools and logging.

Nothing here imports a numeric runtime: a process imports what it uses (the gateway none of torch, OpenCV or FAISS,
search only FAISS, geometric OpenCV and FAISS, embeddings torch), and :func:`limit_threads` caps the pools of those
it finds loaded and, through the environment, of those loaded later.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from typing import Any

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "OPENCV_FOR_THREADS_NUM",
)
"""Read by OpenMP (torch's intra-op pool, FAISS), the BLAS libraries and OpenCV when they first start a pool."""


def limit_threads(threads: int) -> None:
    """Cap the thread pools of numeric libraries in this process, importing none of them.

    On small machines torch, OpenCV, FAISS and BLAS each start a pool as large as the core count; together they
    oversubscribe the CPU and latency spikes by an order of magnitude. Libraries already imported are capped now;
    one imported later starts its pool at the size set in :data:`THREAD_VARIABLES`. Importing a library only to cap
    it would cost the process its whole footprint (torch alone is ~0.5 GB resident).
    """
    for var in THREAD_VARIABLES:
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() != threads:
            # the inter-op pool may only be sized once per process
            with contextlib.suppress(RuntimeError):
                torch.set_num_interop_threads(threads)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(threads)
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
    limit_malloc_arenas(MALLOC_ARENAS)


MALLOC_ARENAS = 2
"""glibc malloc arenas per process. By default each thread that allocates may get its own (up to 8 per core), and
each keeps freed memory; a service's request threads, thread pools and model threads then hold hundreds of MB that
one or two shared arenas would have reused (measured: the geometric service 445 → 302 MB after 20 photos)."""
_M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena limit (``M_ARENA_MAX`` in glibc's ``malloc.h``)."""


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas of this process (like ``MALLOC_ARENA_MAX``, but also for a process already
    running); True when set, False where the C library is not glibc. Arenas already made are kept, so this is
    called at start-up, before the threads that serve requests exist."""
    libc = _glibc()
    try:
        return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except AttributeError:
        return False


@functools.cache
def _glibc() -> Any:
    """This process's C library through ctypes when it is glibc on Linux (looked up once: ``find_library`` runs
    ``ldconfig``), else None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter numbers for the trim and mmap thresholds (glibc's ``malloc.h``)."""

LARGE_BLOCK = 256 << 20
""":func:`reuse_large_blocks`' default: blocks up to 256 MiB come from the heap, and up to 512 MiB free are kept."""


def reuse_large_blocks(largest: int = LARGE_BLOCK) -> bool:
    """For a batch job that allocates and frees large arrays over and over (``index build``: decoded pictures,
    SIFT's scale space, the model's activations): glibc serves blocks up to ``largest`` bytes from the heap and keeps
    up to twice that free for the next one, instead of mapping and unmapping each block, which faults every page in
    again. True when set, False where the C library is not glibc. The process keeps its peak heap until it exits,
    so services, which must give memory back, do not call this.

    Measured on museum-dev's 396 references (``index build``, 2 cores): 1.0 M → 0.2 M minor page faults, system
    time 3.0 → 1.5 s, indexing 12.6 → 11.6 s.
    """
    libc = _glibc()
    try:
        return (
            libc is not None
            and bool(libc.mallopt(_M_MMAP_THRESHOLD, largest))
            and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * largest))
        )
    except AttributeError:
        return False


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``) after a one-off peak, such as an
    index built at start-up; True when pages were given back, False when none were or the C library is not
    glibc."""
    libc = _glibc()
    try:
        return libc is not None and bool(libc.malloc_trim(0))
    except AttributeError:
        return False


def configure_logging(level: str, service: str, log_format: str = "json") -> None:
    """Log to stderr: one JSON object a line (``time``, ``level``, ``service``, ``logger``, ``message``,
    ``request_id`` and any ``extra`` fields), or ``time level service logger: message`` text for people."""
    from pythonjsonlogger.json import JsonFormatter

    from services.common.observability import RequestIdFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s",
                timestamp="time",  # ISO 8601, UTC
                rename_fields={"levelname": "level", "name": "logger"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
