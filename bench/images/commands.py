"""Command lines and settings of the image check (pure): buildah, debootstrap, pip, container environment."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services.common.topology import LOOPBACK, facts, service_environment

BUILD_ORDER = ("gateway", "search", "geometric", "embeddings")
"""The slim images first (they share the layers of ``services/Dockerfile`` before the build arguments)."""
BASE_IMAGE = "docker.io/library/python:3.11-slim"
BASE_RELEASE = "bookworm"
"""Debian release of the real base (python:3.11-slim); its python3 is 3.11 too."""
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "passwd", "ca-certificates")
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
SNAPSHOT_MOUNT = "/mnt/index/snapshot"
"""Where the ECS task definitions mount the snapshot (components/wiring.py); the containers here use the same."""
APP_UID = 1000
CONTAINER_CA = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Buildah:
    """buildah with the storage driver and isolation that work here as root without a daemon."""

    storage_driver: str = "vfs"
    isolation: str = "chroot"

    def cmd(self, *args: str) -> list[str]:
        """A buildah command line."""
        return ["buildah", "--storage-driver", self.storage_driver, *args]

    def output(self, *args: str, timeout: float | None = None) -> str:
        """Run a buildah command; its stdout, stripped. Raises on failure."""
        done = subprocess.run(self.cmd(*args), check=True, capture_output=True, text=True, timeout=timeout)
        return done.stdout.strip()

    def succeeds(self, *args: str, timeout: float | None = None) -> bool:
        """Run a buildah command; whether it exited 0."""
        try:
            done = subprocess.run(self.cmd(*args), capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def image_config(self, image: str) -> dict[str, Any]:
        """The image's Docker-format config (Cmd, Env, User, Healthcheck, ...)."""
        inspected = json.loads(self.output("inspect", "--type", "image", image))
        return dict(inspected["Docker"]["config"])

    def image_id(self, image: str) -> str | None:
        """The image's id, None when the name is not in storage."""
        done = subprocess.run(self.cmd("images", "--json", image), capture_output=True, text=True)
        images = json.loads(done.stdout or "[]") if done.returncode == 0 else []
        return str(images[0]["id"]) if images else None

    def image_size(self, image: str) -> str:
        """The image's size as buildah prints it (e.g. ``355 MB``)."""
        return str(json.loads(self.output("images", "--json", image))[0]["size"])


def image_name(service: str, tag: str) -> str:
    """The local name of a service's image."""
    return f"localhost/artwork-matcher-{service}:{tag}"


def build_command(
    buildah: Buildah,
    service: str,
    *,
    image: str,
    repo: Path,
    pip_conf: Path,
    ca_bundle: Path | None,
    torch_index_url: str | None,
) -> list[str]:
    """``buildah bud`` for one service's Dockerfile and build arguments (:mod:`services.common.topology`) with the
    repository root as context (embeddings: ``cpu``)."""
    service_facts = facts(service)
    command = buildah.cmd(
        "bud",
        "--isolation",
        buildah.isolation,
        "--network",
        "host",
        "--pull=never",
        "--format",
        "docker",
        "--layers=false",
        "--file",
        str(repo / service_facts.dockerfile),
        "--tag",
        image,
        "--volume",
        f"{pip_conf}:/etc/pip.conf:ro",
    )
    if ca_bundle is not None:
        command += ["--volume", f"{ca_bundle}:{CONTAINER_CA}:ro"]
    for key, value in service_facts.build_args().items():
        command += ["--build-arg", f"{key}={value}"]
    if service == "embeddings":
        command += ["--target", "cpu"]
        if torch_index_url is not None:
            command += ["--build-arg", f"TORCH_INDEX_URL={torch_index_url}"]
    return [*command, str(repo)]


def pip_conf_text(*, ca_bundle: bool) -> str:
    """The pip configuration mounted into build steps: trust the mounted CA bundle when there is one."""
    return "[global]\n" + (f"cert = {CONTAINER_CA}\n" if ca_bundle else "")


def choose_torch_index(option: str, resolves: Callable[[str], bool]) -> str | None:
    """The CPU torch index for the build: the option, or for ``auto`` the Dockerfile's default (None) when its host
    resolves, else PyPI (whose torch bundles CUDA libraries and runs the same on CPU)."""
    if option != "auto":
        return option
    return None if resolves(urlsplit(PYTORCH_CPU_INDEX).hostname or "") else PYPI_INDEX


def debian_mirror(sources: Iterable[str]) -> str:
    """The Debian archive apt already uses, from the texts of ``/etc/apt/sources.list*`` (one-line or deb822).

    Raises:
        ValueError: no ``debian`` archive (other than the security one) is configured.
    """
    for text in sources:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] == ["deb"]:
                urls = [w for w in words[1:] if not w.startswith("[")][:1]
            elif words[:1] == ["URIs:"]:
                urls = words[1:]
            else:
                continue
            for url in urls:
                if re.search(r"/debian/?$", url):
                    return url.rstrip("/")
    raise ValueError("no Debian archive in /etc/apt/sources.list*; add one or install buildah's base by hand")


def debootstrap_command(rootfs: Path, mirror: str) -> list[str]:
    """A minbase of the base image's Debian release with the Python and tools python:3.11-slim has."""
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        BASE_RELEASE,
        str(rootfs),
        mirror,
    ]


def container_env(service: str) -> dict[str, str]:
    """Environment of one container here: loopback only, the images' ports, the snapshot where ECS mounts it."""
    env = service_environment(service, host=LOOPBACK, snapshot_dir=SNAPSHOT_MOUNT)
    if service == "gateway":
        env["GATEWAY_IMAGES_DIR"] = f"{SNAPSHOT_MOUNT}/images"
    return env


def run_command(
    buildah: Buildah, container: str, argv: Sequence[str], *, env: Mapping[str, str], volume: str
) -> list[str]:
    """``buildah run`` of a command in a working container on the host network with the snapshot mounted."""
    command = buildah.cmd("run", "--isolation", buildah.isolation, "--network", "host", "--volume", volume)
    for key, value in sorted(env.items()):
        command += ["--env", f"{key}={value}"]
    return [*command, container, "--", *argv]


def healthcheck_argv(config: Mapping[str, Any]) -> list[str]:
    """The image's HEALTHCHECK as a command line (``CMD`` exec form or ``CMD-SHELL``).

    Raises:
        ValueError: the image has no HEALTHCHECK (e.g. built in OCI format, which drops it).
    """
    test = list((config.get("Healthcheck") or {}).get("Test") or [])
    if test[:1] == ["CMD"] and len(test) > 1:
        return test[1:]
    if test[:1] == ["CMD-SHELL"] and len(test) == 2:
        return ["/bin/sh", "-c", test[1]]
    raise ValueError(f"no usable HEALTHCHECK in the image config: {test!r}")
