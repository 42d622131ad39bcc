"""Process-level runtime set-up: thread pools and logging."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Cap the thread pools of numeric libraries in this process.

    On small machines torch, OpenCV, FAISS and BLAS each start a pool as large as the core count; together they
    oversubscribe the CPU and latency spikes by an order of magnitude. Libraries that are not installed are skipped.
    """
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    if "torch" in sys.modules or _importable("torch"):
        import torch

        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() != threads:
            # the inter-op pool may only be sized once per process
            with contextlib.suppress(RuntimeError):
                torch.set_num_interop_threads(threads)
    if _importable("cv2"):
        import cv2

        cv2.setNumThreads(threads)
    if _importable("faiss"):
        import faiss

        faiss.omp_set_num_threads(threads)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


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
