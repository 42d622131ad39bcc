"""bench/images/commands.py: buildah, debootstrap and pip command lines, the containers' environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.images import commands
from bench.images.commands import Buildah
from services.common.topology import SERVICES

REPO = Path(__file__).resolve().parents[3]
BOOKWORM_DEB822 = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def _build(service: str, **overrides: object) -> list[str]:
    kwargs: dict[str, object] = {
        "image": commands.image_name(service, "t"),
        "repo": REPO,
        "pip_conf": Path("/w/pip.conf"),
        "ca_bundle": None,
        "torch_index_url": None,
    }
    kwargs.update(overrides)
    return commands.build_command(Buildah(), service, **kwargs)  # type: ignore[arg-type]


def _pairs(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, word in enumerate(command) if word == flag]


def test_build_uses_vfs_chroot_host_network_docker_format_and_the_repository_root_as_context() -> None:
    command = _build("search")
    assert command[:3] == ["buildah", "--storage-driver", "vfs"]
    assert command[3] == "bud"
    assert _pairs(command, "--isolation") == ["chroot"] and _pairs(command, "--network") == ["host"]
    # Docker format keeps HEALTHCHECK (OCI drops it) and the base must come from local storage only
    assert _pairs(command, "--format") == ["docker"] and "--pull=never" in command
    assert _pairs(command, "--file") == [str(REPO / "services" / "Dockerfile")]
    assert _pairs(command, "--tag") == ["localhost/artwork-matcher-search:t"]
    assert command[-1] == str(REPO)
    assert "--target" not in command
    assert _pairs(command, "--build-arg") == [f"{k}={v}" for k, v in SERVICES["search"].build_args().items()]
    assert _pairs(command, "--volume") == ["/w/pip.conf:/etc/pip.conf:ro"]


def test_embeddings_builds_the_cpu_target_with_the_chosen_torch_index() -> None:
    command = _build("embeddings", torch_index_url="https://pypi.org/simple")
    assert _pairs(command, "--file") == [str(REPO / "services" / "embeddings" / "Dockerfile")]
    assert _pairs(command, "--target") == ["cpu"]
    facts_args = [f"{k}={v}" for k, v in SERVICES["embeddings"].build_args().items()]
    assert _pairs(command, "--build-arg") == [*facts_args, "TORCH_INDEX_URL=https://pypi.org/simple"]
    assert _pairs(_build("embeddings"), "--build-arg") == facts_args  # the Dockerfile's own default index


def test_a_ca_bundle_is_mounted_read_only_where_pip_is_told_to_trust_it() -> None:
    command = _build("gateway", ca_bundle=Path("/etc/ca.crt"))
    assert _pairs(command, "--volume") == [
        "/w/pip.conf:/etc/pip.conf:ro",
        "/etc/ca.crt:/etc/ssl/certs/ca-certificates.crt:ro",
    ]
    assert commands.pip_conf_text(ca_bundle=True).splitlines() == [
        "[global]",
        "cert = /etc/ssl/certs/ca-certificates.crt",
    ]
    assert commands.pip_conf_text(ca_bundle=False) == "[global]\n"


def test_torch_index_is_pytorchs_when_reachable_else_pypi_and_an_explicit_one_wins() -> None:
    assert commands.choose_torch_index("auto", lambda host: host == "download.pytorch.org") is None
    assert commands.choose_torch_index("auto", lambda host: False) == "https://pypi.org/simple"
    assert commands.choose_torch_index("https://mirror/simple", lambda host: False) == "https://mirror/simple"


def test_mirror_is_the_debian_archive_apt_uses_not_the_security_one() -> None:
    assert commands.debian_mirror([BOOKWORM_DEB822]) == "http://deb.debian.org/debian"
    security_first = "deb http://security.debian.org/debian-security bookworm-security main\n"
    one_line = (
        "# deb http://old/debian bookworm main\ndeb [signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
    )
    assert commands.debian_mirror([security_first, one_line]) == "http://mirror.example/debian"


def test_mirror_missing_is_an_error_that_says_so() -> None:
    with pytest.raises(ValueError, match="no Debian archive"):
        commands.debian_mirror(["deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"])


def test_stand_in_is_a_bookworm_minbase_with_python_venv_and_passwd() -> None:
    command = commands.debootstrap_command(Path("/w/rootfs"), "http://deb.debian.org/debian")
    assert command[:2] == ["debootstrap", "--variant=minbase"]
    assert command[-3:] == ["bookworm", "/w/rootfs", "http://deb.debian.org/debian"]
    included = command[2].removeprefix("--include=").split(",")
    assert {"python3", "python3-venv", "python-is-python3", "passwd", "ca-certificates"} <= set(included)


def test_containers_listen_on_loopback_and_read_the_snapshot_where_ecs_mounts_it() -> None:
    gateway = commands.container_env("gateway")
    assert gateway["GATEWAY_HOST"] == "127.0.0.1" and gateway["GATEWAY_PORT"] == str(SERVICES["gateway"].port)
    assert gateway["GATEWAY_SNAPSHOT_DIR"] == "/mnt/index/snapshot"
    assert gateway["GATEWAY_IMAGES_DIR"] == "/mnt/index/snapshot/images"
    assert gateway["GATEWAY_SEARCH_URL"] == f"http://127.0.0.1:{SERVICES['search'].port}"
    assert commands.container_env("search")["SEARCH_SNAPSHOT_DIR"] == "/mnt/index/snapshot"
    embeddings = commands.container_env("embeddings")
    assert embeddings == {"EMBEDDINGS_HOST": "127.0.0.1", "EMBEDDINGS_PORT": str(SERVICES["embeddings"].port)}


def test_run_command_passes_env_and_volume_before_the_container_and_its_argv() -> None:
    command = commands.run_command(Buildah(), "c1", ["python", "-m", "x"], env={"B": "2", "A": "1"}, volume="/s:/m")
    assert command[:4] == ["buildah", "--storage-driver", "vfs", "run"]
    assert _pairs(command, "--env") == ["A=1", "B=2"] and _pairs(command, "--volume") == ["/s:/m"]
    assert command[-5:] == ["c1", "--", "python", "-m", "x"]


def test_healthcheck_is_read_from_the_image_config_in_exec_or_shell_form() -> None:
    exec_form = {"Healthcheck": {"Test": ["CMD", "python", "-c", "pass"]}}
    assert commands.healthcheck_argv(exec_form) == ["python", "-c", "pass"]
    assert commands.healthcheck_argv({"Healthcheck": {"Test": ["CMD-SHELL", "curl -f x"]}}) == [
        "/bin/sh",
        "-c",
        "curl -f x",
    ]
    for config in ({}, {"Healthcheck": {"Test": ["NONE"]}}, {"Healthcheck": None}):
        with pytest.raises(ValueError, match="HEALTHCHECK"):
            commands.healthcheck_argv(config)


@pytest.mark.parametrize("service", list(SERVICES))
def test_the_images_expose_the_port_the_containers_run_on_from_the_build_arguments(service: str) -> None:
    text = (REPO / SERVICES[service].dockerfile).read_text()
    assert set(re.findall(r"^EXPOSE (.+)$", text, flags=re.MULTILINE)) == {"${PORT}"}
    command = _build(service)
    assert f"PORT={SERVICES[service].port}" in _pairs(command, "--build-arg")
    assert commands.container_env(service)[f"{service.upper()}_PORT"] == str(SERVICES[service].port)
