"""Geometric settings: the numeric thread default follows the cores the process may use."""

from __future__ import annotations

import os

import pytest

from services.geometric.settings import MAX_DEFAULT_THREADS, GeometricSettings, usable_cores


@pytest.mark.parametrize("cores, expected", [({0}, 1), ({0, 1}, 2), (set(range(16)), MAX_DEFAULT_THREADS)])
def test_threads_default_to_the_usable_cores_up_to_a_cap(monkeypatch, cores, expected):
    monkeypatch.delenv("GEOMETRIC_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores)

    assert usable_cores(MAX_DEFAULT_THREADS) == expected
    assert GeometricSettings().threads == expected


def test_threads_setting_overrides_the_default(monkeypatch):
    monkeypatch.setenv("GEOMETRIC_THREADS", "1")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))

    assert GeometricSettings().threads == 1
