"""Micro-batching with a bounded queue: one worker thread runs the model, requests that queue meanwhile share a pass.

On a small CPU one forward pass at a time is fastest (parallel passes only contend for the cores), so requests
wait their turn. While the model works on one request, others arrive; the worker then takes all that are waiting
(up to ``max_batch`` crops) and embeds their crops in one pass, which costs less per crop than one pass each. When
``max_queue`` requests are already waiting, a new one is refused at once with :class:`Overloaded` (503 with
``Retry-After``) instead of waiting until its caller times out. No HTTP here.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from services.common.errors import Overloaded

T = TypeVar("T")


@dataclass(eq=False)
class _Job(Generic[T]):
    """One request's items, and where the worker leaves its answer."""

    items: Sequence[T]
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class MicroBatcher(Generic[T]):
    """Runs ``run_batch`` on one worker thread over the items of every waiting request at once.

    ``run_batch`` maps a list of items to an array with one row per item, in order. Thread-safe: any number of
    threads may call :meth:`submit`; the worker starts with the first one and stops at :meth:`close`.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], np.ndarray],
        *,
        max_batch: int = 16,
        max_queue: int = 16,
        retry_after_s: int = 1,
    ) -> None:
        """Args:
        run_batch: the model call; one row per item.
        max_batch: most items taken into one pass (a larger single request still goes alone).
        max_queue: most requests waiting for the worker; one more is refused with :class:`Overloaded`.
        retry_after_s: the wait suggested to a refused caller, whole seconds.
        """
        if max_batch < 1 or max_queue < 1 or retry_after_s < 1:
            raise ValueError("max_batch, max_queue and retry_after_s must be at least 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self._waiting: deque[_Job[T]] = deque()
        self._condition = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.passes = 0
        """Forward passes run so far (fewer than requests when requests were batched together)."""

    @property
    def queued(self) -> int:
        """Requests waiting for the worker now."""
        return len(self._waiting)

    def check_capacity(self) -> None:
        """Refuse early, before the caller decodes its images, when the queue is already full.

        Raises:
            Overloaded: ``max_queue`` requests are waiting.
        """
        if len(self._waiting) >= self.max_queue:
            raise self._overloaded()

    def submit(self, items: Sequence[T]) -> np.ndarray:
        """Embed ``items`` (blocking until the worker has), batched with whatever else is waiting.

        Raises:
            Overloaded: ``max_queue`` requests are already waiting.
            RuntimeError: the batcher was closed.
            Exception: whatever ``run_batch`` raised for the pass this request was in.
        """
        job = _Job(items)
        with self._condition:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if len(self._waiting) >= self.max_queue:
                raise self._overloaded()
            self._waiting.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="embeddings-batcher", daemon=True)
                self._worker.start()
            self._condition.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def close(self) -> None:
        """Stop the worker after the pass in progress; requests still waiting fail with ``RuntimeError``."""
        with self._condition:
            self._closed = True
            worker, self._worker = self._worker, None
            for job in self._waiting:
                job.error = RuntimeError("the embeddings service is shutting down")
                job.done.set()
            self._waiting.clear()
            self._condition.notify_all()
        if worker is not None:
            worker.join(timeout=30)

    def _take(self) -> list[_Job[T]] | None:
        """The next jobs to run together (the first waiting, then others while they fit), or None once closed."""
        with self._condition:
            while not self._waiting and not self._closed:
                self._condition.wait()
            if self._closed:
                return None
            jobs = [self._waiting.popleft()]
            size = len(jobs[0].items)
            while self._waiting and size + len(self._waiting[0].items) <= self.max_batch:
                size += len(self._waiting[0].items)
                jobs.append(self._waiting.popleft())
            return jobs

    def _work(self) -> None:
        while (jobs := self._take()) is not None:
            items = [item for job in jobs for item in job.items]
            try:
                rows = self._run_batch(items)
                self.passes += 1
                start = 0
                for job in jobs:
                    job.result = rows[start : start + len(job.items)]
                    start += len(job.items)
            except BaseException as exc:  # handed to every caller of this pass, never lost in the thread
                for job in jobs:
                    job.error = exc
            finally:
                for job in jobs:
                    job.done.set()

    def _overloaded(self) -> Overloaded:
        return Overloaded(
            f"the embeddings service has {self.max_queue} requests waiting; try again in {self.retry_after_s} s",
            details={"queued": len(self._waiting), "max_queue": self.max_queue, "retry_after_s": self.retry_after_s},
        )
