"""Process set-up: each service imports only the numeric runtimes it uses, and capping threads imports none."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.common.runtime import THREAD_VARIABLES, limit_malloc_arenas

HEAVY = ("torch", "cv2", "faiss", "timm", "onnxruntime")


def loaded_after(statement: str) -> tuple[set[str], dict[str, str]]:
    """The heavy modules a fresh interpreter holds after ``statement`` and ``limit_threads(3)``, and the thread
    variables it then has."""
    check = (
        f"import os, sys; {statement}; from services.common.runtime import limit_threads; limit_threads(3); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules)); "
        f"print(','.join(os.environ.get(v, '') for v in {THREAD_VARIABLES!r}))"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.split("\n")
    return set(filter(None, out[0].split(","))), dict(zip(THREAD_VARIABLES, out[1].split(","), strict=True))


@pytest.mark.parametrize(
    "service, expected",
    [("gateway", set()), ("search", {"faiss"}), ("geometric", {"cv2", "faiss"})],
)
def test_a_service_imports_only_the_runtimes_it_uses_and_caps_threads_by_environment(service, expected):
    loaded, variables = loaded_after(f"import services.{service}.app")
    assert loaded == expected
    assert set(variables.values()) == {"3"}  # a runtime imported later starts its pool at this size


def test_capping_threads_imports_nothing():
    loaded, _ = loaded_after("pass")
    assert loaded == set()


def test_the_malloc_arena_cap_is_set_on_glibc():
    assert limit_malloc_arenas(2) is sys.platform.startswith("linux")


def test_free_heap_pages_are_given_back_after_a_peak():
    script = """
import sys
from services.common.runtime import release_free_memory

def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])

peak = [bytes(1000) for _ in range(200_000)]  # ~200 MB of small blocks, below the mmap threshold
keep = peak[::1000]
del peak
before = rss()
given_back = release_free_memory()
print(given_back, before - rss())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    given_back, freed_kib = result.stdout.split()
    if not sys.platform.startswith("linux"):
        assert given_back == "False"
        return
    assert given_back == "True"
    assert int(freed_kib) > 50_000, "most of the freed 200 MB went back to the system"


def test_a_batch_job_reuses_large_blocks_instead_of_faulting_them_in_again():
    script = """
import resource, sys
import numpy as np
from services.common.runtime import reuse_large_blocks

if sys.argv[1] == "reuse":
    print(reuse_large_blocks())
np.ones(50 << 20, np.uint8)  # a 50 MB block, freed: above glibc's largest dynamic mmap threshold (32 MB)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block = np.ones(50 << 20, np.uint8)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

    def faults(mode: str) -> list[str]:
        run = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True)
        return run.stdout.split()

    if not sys.platform.startswith("linux"):
        assert faults("reuse")[0] == "False"
        return
    reused, plain = faults("reuse"), faults("plain")
    assert reused[0] == "True"
    assert int(reused[1]) * 10 < int(plain[0]), "each new block came from the kept heap, not fresh pages"
