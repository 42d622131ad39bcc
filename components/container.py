"""The container definition of a service's task, built by a pure function that tests call directly."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pulumi

from services.common.topology import HEALTH_PATH


@dataclasses.dataclass(frozen=True)
class MountPoint:
    """A task volume mounted into the container."""

    source_volume: str
    container_path: str
    read_only: bool = True


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """Everything the single container of a service's task needs."""

    name: str
    """Container (and service) name, e.g. ``search``."""
    image: pulumi.Input[str]
    """Image reference pinned by digest (``repo@sha256:...``)."""
    port: int
    env_prefix: str
    """Settings prefix of the service, e.g. ``SEARCH``; ``<PREFIX>_HOST``/``<PREFIX>_PORT`` are set from it."""
    log_group: pulumi.Input[str]
    region: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    secrets: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    """Environment variable name to Secrets Manager ARN; injected by ECS, never a plain value."""
    gpu_count: int = 0
    """GPUs reserved for the container (EC2 GPU capacity only)."""
    mount_points: Sequence[MountPoint] = ()
    health_start_period_s: int = 60
    """Grace before failed health checks count (model loading, index loading)."""
    health_path: str = HEALTH_PATH
    """Path the service answers 200 on while healthy."""


def health_command(port: int, path: str = HEALTH_PATH) -> list[str]:
    """The container health check: GET ``path`` with the standard library (slim images have no curl)."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)"
    return ["CMD", "python", "-c", probe]


def container_definitions(spec: ContainerSpec) -> pulumi.Output[str]:
    """Serialise a task's container definitions to the JSON ECS expects.

    Pure: it creates no resources, so tests can call it and inspect the JSON.

    Args:
        spec: The container's image, port, environment, secrets, GPU and mounts.

    Returns:
        A JSON array with one container definition.
    """
    environment: dict[str, pulumi.Input[str]] = {
        f"{spec.env_prefix}_HOST": "0.0.0.0",
        f"{spec.env_prefix}_PORT": str(spec.port),
    }
    environment.update(spec.environment)
    definition: dict[str, object] = {
        "name": spec.name,
        "image": spec.image,
        "essential": True,
        "portMappings": [{"containerPort": spec.port, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(spec.secrets.items())],
        "healthCheck": {
            "command": health_command(spec.port, spec.health_path),
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": spec.health_start_period_s,
        },
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": spec.log_group,
                "awslogs-region": spec.region,
                "awslogs-stream-prefix": spec.name,
            },
        },
        "mountPoints": [
            {"sourceVolume": m.source_volume, "containerPath": m.container_path, "readOnly": m.read_only}
            for m in spec.mount_points
        ],
    }
    if spec.gpu_count:
        definition["resourceRequirements"] = [{"type": "GPU", "value": str(spec.gpu_count)}]
    return pulumi.Output.json_dumps([definition])
