"""The decision package stays framework-free: importing all of it pulls in no web framework and no heavy runtime."""

from __future__ import annotations

import subprocess
import sys

MODULES = ("rule", "evidence", "stored", "logistic", "fitting", "metrics", "reliability")
FORBIDDEN = ("litestar", "faiss", "cv2", "torch", "timm", "sklearn", "PIL", "httpx", "matplotlib")


def test_importing_the_decision_package_loads_only_base_dependencies() -> None:
    imports = "; ".join(f"import services.decision.{m}" for m in MODULES)
    check = f"import sys; {imports}; print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))"

    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.strip()

    assert loaded == "[]"
