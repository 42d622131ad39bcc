"""The ``artwork-matcher`` console command around :func:`tools.cli.main.main`."""

from __future__ import annotations

import gc
import subprocess
import sys
import tomllib
from pathlib import Path

from tools.cli.main import entry

ROOT = Path(__file__).resolve().parents[3]


def test_the_console_command_runs_entry():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["artwork-matcher"] == "tools.cli.main:entry"


def test_entry_returns_the_commands_exit_code_and_freezes_the_heap_for_a_quick_exit(monkeypatch, tmp_path, capsys):
    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))

    assert entry(["index", "doctor", "--snapshot", str(tmp_path / "missing")]) == 2

    assert frozen == [True]
    assert "not found" in capsys.readouterr().err


def test_the_module_exits_with_the_commands_code(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "tools.cli.main", "index", "doctor", "--snapshot", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 2 and "artwork-matcher index build" in run.stderr
