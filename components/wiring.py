"""Per-service wiring used by ``__main__.py``: environment, mounts, callers and capacity of each service.

Kept out of ``__main__.py`` so the composition root stays a list of components; it creates no resources.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.alb import LoadBalancer
from components.cluster import EcsCluster
from components.config import StackConfig
from components.gpu import GpuNodeGroup
from components.images import ContainerImages
from components.network import Network
from components.secrets import AppSecret
from components.service import EcsServiceArgs, EfsMount
from components.sizing import vote_budget
from components.storage import Storage
from services.common.topology import SERVICES, facts, service_environment

INDEX_MOUNT = "/mnt/index"
"""Where the EFS index access point is mounted in the gateway, search and geometric tasks."""
SNAPSHOT_DIR = f"{INDEX_MOUNT}/snapshot"
"""The collection snapshot every service reads (and the admin flows write)."""
EFS_CLIENTS: frozenset[str] = frozenset(name for name, service in SERVICES.items() if service.reads_snapshot)
"""The services that mount the index: those that read the snapshot."""
ALL_INTERFACES = "0.0.0.0"
"""Where a task's container listens (its own network interface in awsvpc mode; security groups admit callers)."""


def build_target(cfg: StackConfig, name: str) -> str | None:
    """The Dockerfile stage of a service's image: ``gpu``/``cpu`` for embeddings, the last stage otherwise."""
    if name != "embeddings":
        return None
    return "gpu" if cfg.embeddings_on_gpu else "cpu"


def environment(cfg: StackConfig, name: str, namespace: str) -> dict[str, pulumi.Input[str]]:
    """The plain environment of one service's container (secrets go through ``secrets``, never here)."""
    service = facts(name)
    env: dict[str, pulumi.Input[str]] = dict(
        service_environment(name, host=ALL_INTERFACES, snapshot_dir=SNAPSHOT_DIR, backend_domain=namespace)
    )
    env[service.env("threads")] = str(max(1, cfg.services[name].cpu // 1024))
    env[service.env("log_level")] = "INFO"
    if name == "gateway":
        env["GATEWAY_IMAGES_DIR"] = f"{SNAPSHOT_DIR}/images"
        # behind the ALB: rate-limit the visitor's address the ALB appends to X-Forwarded-For, not the ALB's own
        env["GATEWAY_TRUSTED_PROXY_HOPS"] = "1"
        env["GATEWAY_MAX_BODY_BYTES"] = str(cfg.max_body_bytes)
    if name == "embeddings":
        env["EMBEDDINGS_DEVICE"] = "cuda" if cfg.embeddings_on_gpu else "cpu"
    if name == "search":
        env["SEARCH_RELOAD_INTERVAL_S"] = str(cfg.search_reload_interval_s)
        env["SEARCH_EXPECTED_SIZE"] = str(cfg.expected_artworks)
    if name == "geometric":
        sizing = cfg.services[name]
        budget = vote_budget(sizing.memory, sizing.memory_target, cfg.expected_artworks)
        env["GEOMETRIC_VOTE_MAX_DESCRIPTORS"] = str(budget)
    return env


def service_args(
    cfg: StackConfig,
    name: str,
    network: Network,
    cluster: EcsCluster,
    storage: Storage,
    images: ContainerImages,
    alb: LoadBalancer,
    api_key: AppSecret,
    gpu: GpuNodeGroup | None,
    callers: Sequence[pulumi.Input[str]],
) -> EcsServiceArgs:
    """The :class:`EcsServiceArgs` of one service from the stack config and the shared components."""
    sizing = cfg.services[name]
    on_gpu = gpu is not None and name == "embeddings"
    efs = (
        EfsMount(
            file_system_id=storage.file_system_id,
            file_system_arn=storage.file_system_arn,
            access_point_id=storage.access_point_id,
            security_group_id=storage.efs_security_group_id,
            container_path=INDEX_MOUNT,
            read_only=False,
        )
        if name in EFS_CLIENTS
        else None
    )
    return EcsServiceArgs(
        service_name=name,
        env_prefix=facts(name).env_prefix.removesuffix("_"),
        port=sizing.port,
        cpu=sizing.cpu,
        memory=sizing.memory,
        image=images.image_refs[name],
        cluster_arn=cluster.cluster_arn,
        vpc_id=network.vpc_id,
        subnet_ids=network.public_subnet_ids if cfg.tasks_in_public_subnets else network.private_subnet_ids,
        assign_public_ip=cfg.tasks_in_public_subnets,
        namespace_id=cluster.namespace_id,
        allowed_caller_security_group_ids=list(callers),
        bucket_arns=[storage.bucket_arn],
        desired_count=sizing.min_tasks,
        log_retention_days=cfg.log_retention_days,
        environment=environment(cfg, name, cluster.namespace_name),
        secrets={"GATEWAY_API_KEY": api_key.secret_arn} if name == "gateway" else {},
        capacity_provider=gpu.capacity_provider_name if on_gpu and gpu else None,
        gpu_count=1 if on_gpu else 0,
        spot_percent=0 if on_gpu else sizing.spot_percent,
        efs=efs,
        target_group_arn=alb.target_group_arn if name == "gateway" else None,
        enable_autoscaling=cfg.enable_autoscaling,
        health_start_period_s=facts(name).start_period_s,
        health_path=facts(name).health_path,
        wait_for_steady_state=cfg.wait_for_steady_state,
    )
