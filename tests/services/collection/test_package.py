"""The collection package is framework-free and light where the gateway uses it: the gateway image has no FAISS, no
OpenCV and no torch, so only the modules that say so may load them."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("litestar", "faiss", "cv2", "torch", "timm", "httpx")
LIGHT = ("layout", "images", "sources", "decision_file", "stamp", "vector_file", "recipe", "features")
"""Modules any service may import: none of them loads a heavy runtime or a web framework."""


def loaded_after(statement: str) -> list[str]:
    check = f"import sys; {statement}; print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.strip()
    return [name for name in out.split(",") if name]


def test_the_light_modules_load_no_framework_and_no_heavy_runtime():
    assert loaded_after("; ".join(f"import services.collection.{m}" for m in LIGHT)) == []


@pytest.mark.parametrize(("module", "allowed"), [("vectors", {"faiss"}), ("local", set())])
def test_the_heavy_modules_load_only_what_they_declare(module, allowed):
    # local.py imports the model and the extractor only when used, so importing it stays light too
    assert set(loaded_after(f"import services.collection.{module}")) <= allowed


def test_the_gateway_loads_the_collection_package_without_faiss_opencv_or_torch():
    assert set(loaded_after("import services.gateway.app")) == {"litestar", "httpx"}
