"""The embeddings service's micro-batcher: queued requests share a pass, a full queue refuses at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from services.common.errors import Overloaded
from services.embeddings.batching import MicroBatcher


class GatedModel:
    """Rows ``[item, item * 10]``; each pass blocks until the test opens the gate, and is recorded."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.passes: list[list[int]] = []

    def __call__(self, items: list[int]) -> np.ndarray:
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        self.passes.append(list(items))
        return np.array([[item, item * 10] for item in items], dtype=np.float32)


def _wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_requests_that_queue_during_a_pass_share_the_next_pass_and_get_their_own_rows() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=16, max_queue=8)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.submit, [1])
        assert model.started.wait(5)
        queued = [pool.submit(batcher.submit, items) for items in ([2, 3], [4], [5, 6, 7])]
        _wait_until(lambda: batcher.queued == 3)
        model.gate.set()
        answers = [future.result(5) for future in (first, *queued)]
    batcher.close()

    assert model.passes == [[1], [2, 3, 4, 5, 6, 7]]
    assert batcher.passes == 2
    for items, rows in zip(([1], [2, 3], [4], [5, 6, 7]), answers, strict=True):
        np.testing.assert_array_equal(rows, [[item, item * 10] for item in items])


def test_a_pass_never_takes_more_than_max_batch_items_of_several_requests() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=4, max_queue=8)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.submit, [0])
        assert model.started.wait(5)
        queued = [pool.submit(batcher.submit, items) for items in ([1, 2, 3], [4, 5], [6])]
        _wait_until(lambda: batcher.queued == 3)
        model.gate.set()
        for future in (first, *queued):
            future.result(5)
    batcher.close()

    assert model.passes == [[0], [1, 2, 3], [4, 5, 6]]


def test_a_full_queue_refuses_the_next_request_at_once_with_a_retry_after() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_queue=2, retry_after_s=3)
    with ThreadPoolExecutor(3) as pool:
        running = pool.submit(batcher.submit, [1])
        assert model.started.wait(5)
        waiting = [pool.submit(batcher.submit, [n]) for n in (2, 3)]
        _wait_until(lambda: batcher.queued == 2)

        started = time.perf_counter()
        with pytest.raises(Overloaded) as refused:
            batcher.submit([4])
        with pytest.raises(Overloaded):
            batcher.check_capacity()
        assert time.perf_counter() - started < 0.5
        model.gate.set()
        for future in (running, *waiting):
            future.result(5)
    batcher.check_capacity()  # room again once the queue drained
    batcher.close()

    assert refused.value.status == 503 and refused.value.code == "overloaded"
    assert refused.value.details == {"queued": 2, "max_queue": 2, "retry_after_s": 3}


def test_a_failing_pass_raises_in_every_request_it_held_and_the_worker_goes_on() -> None:
    calls = []

    def flaky(items: list[int]) -> np.ndarray:
        calls.append(items)
        if len(calls) == 1:
            raise ValueError("model broke")
        return np.ones((len(items), 2), dtype=np.float32)

    batcher = MicroBatcher(flaky)
    with pytest.raises(ValueError, match="model broke"):
        batcher.submit([1, 2])
    assert batcher.submit([3]).shape == (1, 2)
    batcher.close()


def test_closing_fails_the_waiting_requests_and_refuses_new_ones() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_queue=4)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(batcher.submit, [1])
        assert model.started.wait(5)
        waiting = pool.submit(batcher.submit, [2])
        _wait_until(lambda: batcher.queued == 1)
        closer = threading.Thread(target=batcher.close)
        closer.start()
        with pytest.raises(RuntimeError, match="shutting down"):
            waiting.result(5)
        model.gate.set()
        closer.join(5)
        assert running.result(5).shape == (1, 2)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit([3])


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"max_queue": 0}, {"retry_after_s": 0}])
def test_bounds_must_be_positive(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MicroBatcher(lambda items: np.zeros((len(items), 1)), **kwargs)
