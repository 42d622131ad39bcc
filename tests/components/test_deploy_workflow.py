"""The deploy workflow: demo after ci passes on main, production gated by its environment, one run per stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[Any, Any]:
    # YAML 1.1 reads the key `on` as True
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_deploys_only_commits_whose_ci_run_passed_on_a_push_to_main() -> None:
    deploy, ci = load("deploy.yml"), load("ci.yml")
    trigger = deploy[True]
    assert list(trigger) == ["workflow_run"]
    assert trigger["workflow_run"] == {"workflows": [ci["name"]], "types": ["completed"], "branches": ["main"]}
    demo = deploy["jobs"]["demo"]
    assert "github.event.workflow_run.conclusion == 'success'" in demo["if"]
    assert "github.event.workflow_run.event == 'push'" in demo["if"]
    for job in deploy["jobs"].values():
        assert job["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}", "deploys the tested commit"


def test_production_deploys_after_demo_through_the_same_stack_job() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert {name: job["with"]["stack"] for name, job in jobs.items()} == {"demo": "demo", "production": "production"}
    assert jobs["production"]["needs"] == "demo"
    assert {job["uses"] for job in jobs.values()} == {"./.github/workflows/deploy-stack.yml"}


def test_each_stack_runs_in_its_environment_one_deployment_at_a_time_never_cancelled() -> None:
    [job] = load("deploy-stack.yml")["jobs"].values()
    assert job["environment"]["name"] == "${{ inputs.stack }}", "production waits for the environment's reviewers"
    assert job["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}


def test_the_stack_job_runs_up_then_the_smoke_test_against_the_stacks_url() -> None:
    [job] = load("deploy-stack.yml")["jobs"].values()
    steps = job["steps"]
    [secret] = [i for i, s in enumerate(steps) if "pulumi config set --secret gatewayApiKey" in s.get("run", "")]
    [up] = [i for i, s in enumerate(steps) if s.get("with", {}).get("command") == "up"]
    [url] = [i for i, s in enumerate(steps) if s.get("id") == "outputs"]
    [smoke] = [i for i, s in enumerate(steps) if "artwork-matcher infra verify" in s.get("run", "")]
    assert secret < up < url < smoke
    assert steps[up]["with"]["stack-name"] == "${{ inputs.stack }}"
    assert 'pulumi stack output url --stack "$STACK"' in steps[url]["run"]
    assert steps[smoke]["env"]["URL"] == "${{ steps.outputs.outputs.url }}"
    assert '--url "$URL"' in steps[smoke]["run"]
    assert not any(s.get("continue-on-error") for s in steps), "a failed up or smoke test fails the job"
    assert "smoke" in next(s["run"] for s in steps if "pip install" in s.get("run", ""))
