"""Dockerfiles pass hadolint and every workflow passes actionlint (both installed from PyPI by the dev group)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.topology import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted({service.dockerfile for service in SERVICES.values()})
# Upstream actions that still run on node20 are flagged until they publish a new major; that is not our finding.
ACTIONLINT_IGNORE = 'runtime "node20" is deprecated'


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def test_the_slim_services_share_one_dockerfile_and_embeddings_keeps_its_own() -> None:
    assert DOCKERFILES == ["services/Dockerfile", "services/embeddings/Dockerfile"]
    assert sorted(ROOT.glob("services/**/Dockerfile")) == [ROOT / path for path in DOCKERFILES]
    assert {name for name, s in SERVICES.items() if s.dockerfile == "services/Dockerfile"} == {
        "gateway",
        "search",
        "geometric",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", str(ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", list(SERVICES))
def test_dockerfile_is_multi_stage_non_root_with_a_health_check_and_only_its_group(service: str) -> None:
    facts = SERVICES[service]
    text = (ROOT / facts.dockerfile).read_text()
    assert text.count("FROM ") >= 2
    assert "USER 1000:1000" in text
    # every argument the builders pass is declared, and the image runs and probes the service the argument names
    for name in facts.build_args():
        assert f"ARG {name}\n" in text
    assert "ARTWORK_MATCHER_SERVICE=${SERVICE}" in text and "${ENV_PREFIX}HOST=0.0.0.0" in text
    assert "EXPOSE ${PORT}\n" in text
    assert 'CMD ["python", "-m", "services", "run"]' in text
    healthchecks = re.findall(r"^HEALTHCHECK .*--start-period=(\d+)s .*CMD (.*)$", text, flags=re.MULTILINE)
    assert healthchecks and {int(start) for start, _ in healthchecks} == {facts.start_period_s}
    assert {probe for _, probe in healthchecks} == {'["python", "-m", "services", "health"]'}
    # only the service's own dependency group: the argument, or the literal name in a file of its own
    groups = set(re.findall(r'"\.\[([^\]]+)\]"', text))
    assert groups == ({"${SERVICE}"} if facts.dockerfile == "services/Dockerfile" else {service})


def test_slim_dockerfile_refuses_to_build_without_the_build_arguments() -> None:
    text = (ROOT / "services" / "Dockerfile").read_text()
    guard = text[text.index("RUN if [ -z") : text.index('pip install --no-cache-dir ".[${SERVICE}]"')]
    assert all(f'[ -z "${{{name}}}" ]' in guard for name in ("SERVICE", "ENV_PREFIX", "PORT"))
    assert "exit 1" in guard and "python3 -m services build-args" in guard


def test_embeddings_image_has_cpu_wheels_and_a_cuda_gpu_target() -> None:
    text = (ROOT / "services" / "embeddings" / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu" in text
    assert "FROM nvidia/cuda:" in text and " AS gpu\n" in text and " AS cpu\n" in text


def test_dockerignore_keeps_only_what_images_need() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!services/"]


@pytest.mark.parametrize("workflow", ["ci.yml", "deploy.yml", "deploy-stack.yml"])
def test_workflow_passes_actionlint(workflow: str) -> None:
    # actionlint reads the called deploy-stack.yml when it lints deploy.yml, so inputs and secrets are checked too
    path = ROOT / ".github" / "workflows" / workflow
    result = subprocess.run(
        [tool("actionlint"), "-no-color", "-ignore", ACTIONLINT_IGNORE, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
