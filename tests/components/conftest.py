"""Shared fixtures of the infra tests: offline runs of both stacks and a runner for single components.

Everything runs under Pulumi mocks with ``preview=False`` (so outputs are known and checks are not vacuous).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

pytest.importorskip("pulumi_aws", reason="infra tests need the 'infra' dependency group")

from components.plan import recorder as offline

# Pulumi's runtime logs cancelled asyncio tasks at shutdown; printed after pytest's summary, they would hide the
# result line from CI.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


@pytest.fixture(scope="session")
def demo_plan() -> offline.Plan:
    """The demo stack's program, run once per session."""
    return offline.run("demo")


@pytest.fixture(scope="session")
def production_plan() -> offline.Plan:
    """The production stack's program, run once per session."""
    return offline.run("production")


@pytest.fixture(params=["demo", "production"])
def any_plan(request: pytest.FixtureRequest, demo_plan: offline.Plan, production_plan: offline.Plan) -> offline.Plan:
    """Each stack's plan in turn, for invariants that hold everywhere."""
    return demo_plan if request.param == "demo" else production_plan


@pytest.fixture
def run_component() -> Callable[[Callable[[], object]], offline.Plan]:
    """Run a function that builds components under recording mocks; returns what it registered."""

    def run(body: Callable[[], object]) -> offline.Plan:
        def program() -> None:
            body()

        plan = offline.run_function(program, "artwork-matcher", "test", {"aws:region": "eu-west-1"})
        assert plan.registrations, "the component registered nothing"
        return plan

    return run
