"""The stack configuration: one frozen, validated object read once by ``__main__.py``.

Every key read here is declared in ``Pulumi.yaml`` with its type, default and description; the real CLI and the
offline harness (:mod:`components.plan.recorder`) both apply those defaults, so this module uses ``require_*`` only and
holds no second copy of any default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pulumi

from components.gpu import check_task_fits
from components.sizing import needed_mib, task_memory_mib
from services.common.topology import SERVICES

SERVICE_NAMES: tuple[str, ...] = tuple(SERVICES)
"""The four services, in deployment order (the gateway is every other service's only caller)."""

SERVICE_KEYS: Mapping[str, str] = {
    "Cpu": "int",
    "Memory": "int",
    "MinTasks": "int",
    "MaxTasks": "int",
    "CpuTarget": "int",
    "MemoryTarget": "int",
    "ScaleOutCooldown": "int",
    "ScaleInCooldown": "int",
    "SpotPercent": "int",
    "Image": "str",
}
"""Per-service key suffixes (``gatewayCpu``, ``searchMinTasks``...) and how each is read."""

GLOBAL_KEYS: Mapping[str, str] = {
    "vpcCidr": "str",
    "azCount": "int",
    "natGateways": "str",
    "enableVpcEndpoints": "bool",
    "logRetentionDays": "int",
    "containerInsights": "bool",
    "embeddingsOnGpu": "bool",
    "gpuInstanceType": "str",
    "gpuAmiParameter": "str",
    "gpuRootVolumeGb": "int",
    "gpuNodesMin": "int",
    "gpuNodesMax": "int",
    "enableAutoscaling": "bool",
    "waitForSteadyState": "bool",
    "enableScheduledScaling": "bool",
    "scaleUpSchedule": "str",
    "scaleDownSchedule": "str",
    "gatewayRequestsPerTarget": "int",
    "searchReloadIntervalS": "int",
    "expectedArtworks": "int",
    "enableHttps": "bool",
    "domainName": "str",
    "hostedZoneId": "str",
    "certificateArn": "str",
    "maxBodyBytes": "int",
    "enableWaf": "bool",
    "wafRateLimit": "int",
    "enableAlarms": "bool",
    "alarmEmail": "str",
    "monthlyBudgetUsd": "int",
    "buildImages": "bool",
    "destroyWithContents": "bool",
    "enableBackups": "bool",
    "backupSchedule": "str",
    "backupRetentionDays": "int",
    "imagesNoncurrentVersionDays": "int",
    "gatewayApiKey": "secret",
}
"""Stack-wide keys and how each is read."""

NAT_GATEWAYS: tuple[str, ...] = ("none", "single", "per-az")
"""Values of ``natGateways``: no NAT (tasks in public subnets), one shared, or one per zone."""

_FARGATE_MEMORY: Mapping[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}


def all_keys() -> dict[str, str]:
    """Every project config key this program reads, mapped to its kind (``int``, ``bool``, ``str``, ``secret``)."""
    keys = dict(GLOBAL_KEYS)
    for name in SERVICE_NAMES:
        keys.update({f"{name}{suffix}": kind for suffix, kind in SERVICE_KEYS.items()})
    return keys


@dataclasses.dataclass(frozen=True)
class ServiceSizing:
    """Size, scaling targets and image of one service (the ARCHITECTURE.md autoscaling table, one column)."""

    name: str
    port: int
    cpu: int
    """Task CPU units (1024 = one vCPU)."""
    memory: int
    """Task memory in MiB."""
    min_tasks: int
    max_tasks: int
    cpu_target: int
    """Target average CPU utilisation, percent."""
    memory_target: int
    """Target average memory utilisation, percent."""
    scale_out_cooldown: int
    """Seconds after a scale-out before another."""
    scale_in_cooldown: int
    """Seconds after a scale-in before another."""
    spot_percent: int
    """Share of tasks on FARGATE_SPOT, percent; below 100 one on-demand task is kept as a base."""
    image: str
    """A prebuilt image reference pinned by digest, or empty to use the image built in this run."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_tasks <= self.max_tasks:
            raise ValueError(f"{self.name}: need 1 <= {self.name}MinTasks <= {self.name}MaxTasks")
        for label, value in (("CpuTarget", self.cpu_target), ("MemoryTarget", self.memory_target)):
            if not 10 <= value <= 95:
                raise ValueError(f"{self.name}{label} must be a percentage between 10 and 95, got {value}")
        if min(self.scale_out_cooldown, self.scale_in_cooldown) < 0:
            raise ValueError(f"{self.name}: cooldowns must not be negative")
        if not 0 <= self.spot_percent <= 100:
            raise ValueError(f"{self.name}SpotPercent must be between 0 and 100")
        if self.image and "@sha256:" not in self.image:
            raise ValueError(f"{self.name}Image must be pinned by digest (repo@sha256:...), got {self.image!r}")

    def check_fargate_size(self) -> None:
        """Raise unless ``cpu``/``memory`` is a combination Fargate accepts."""
        if self.memory not in _FARGATE_MEMORY.get(self.cpu, range(0)):
            raise ValueError(f"{self.name}Cpu={self.cpu} with {self.name}Memory={self.memory} is not a Fargate size")


@dataclasses.dataclass(frozen=True)
class StackConfig:
    """Everything that differs between stacks, validated once; components get plain values from it.

    Field ``snake_case`` names mirror the ``camelCase`` keys of ``Pulumi.yaml``, whose descriptions document them.
    """

    project: str
    stack: str
    services: Mapping[str, ServiceSizing]
    gateway_api_key: pulumi.Input[str]
    vpc_cidr: str
    az_count: int
    nat_gateways: str
    enable_vpc_endpoints: bool
    log_retention_days: int
    container_insights: bool
    embeddings_on_gpu: bool
    gpu_instance_type: str
    gpu_ami_parameter: str
    gpu_root_volume_gb: int
    gpu_nodes_min: int
    gpu_nodes_max: int
    enable_autoscaling: bool
    wait_for_steady_state: bool
    enable_scheduled_scaling: bool
    scale_up_schedule: str
    scale_down_schedule: str
    gateway_requests_per_target: int
    search_reload_interval_s: int
    expected_artworks: int
    enable_https: bool
    domain_name: str
    hosted_zone_id: str
    certificate_arn: str
    max_body_bytes: int
    enable_waf: bool
    waf_rate_limit: int
    enable_alarms: bool
    alarm_email: str
    monthly_budget_usd: int
    build_images: bool
    destroy_with_contents: bool
    enable_backups: bool
    backup_schedule: str
    backup_retention_days: int
    images_noncurrent_version_days: int

    def __post_init__(self) -> None:
        self._check_network()
        self._check_https()
        self._check_images()
        self._check_sizes()

    def _check_network(self) -> None:
        """NAT choice, GPU nodes' need of NAT, number of zones."""
        if self.nat_gateways not in NAT_GATEWAYS:
            raise ValueError(f"natGateways must be one of {', '.join(NAT_GATEWAYS)}, got {self.nat_gateways!r}")
        if self.embeddings_on_gpu and self.nat_gateways == "none":
            raise ValueError(
                "embeddingsOnGpu=true needs natGateways single or per-az: GPU nodes live in private subnets"
            )
        if not 2 <= self.az_count <= 6:
            raise ValueError("azCount must be between 2 (an ALB needs two zones) and 6")

    def _check_https(self) -> None:
        """A domain for HTTPS; a hosted zone or a certificate, not both, and only with HTTPS."""
        if self.enable_https and not self.domain_name:
            raise ValueError("enableHttps=true needs domainName (the certificate's name); set it or disable HTTPS")
        if self.hosted_zone_id and self.certificate_arn:
            raise ValueError(
                "hostedZoneId and certificateArn conflict: let the program request a certificate or bring one"
            )
        if (self.hosted_zone_id or self.certificate_arn) and not self.enable_https:
            raise ValueError("hostedZoneId and certificateArn need enableHttps=true")

    def _check_images(self) -> None:
        """Images either built by the program or all given by digest."""
        prebuilt = [s.name for s in self.services.values() if s.image]
        if self.build_images and prebuilt:
            raise ValueError(f"buildImages=true conflicts with prebuilt <service>Image for {prebuilt}; choose one")
        if not self.build_images and len(prebuilt) != len(self.services):
            raise ValueError("buildImages=false needs <service>Image set (by digest) for every service")

    def _check_sizes(self) -> None:
        """Scaling switches, GPU node counts, and each task's size on Fargate or its GPU instance."""
        if self.enable_scheduled_scaling and not self.enable_autoscaling:
            raise ValueError("enableScheduledScaling=true needs enableAutoscaling=true")
        if self.embeddings_on_gpu and self.gpu_nodes_max < self.services["embeddings"].max_tasks:
            raise ValueError("gpuNodesMax must be at least embeddingsMaxTasks (one GPU task per node)")
        if self.embeddings_on_gpu and not 1 <= self.gpu_nodes_min <= self.gpu_nodes_max:
            raise ValueError("need 1 <= gpuNodesMin <= gpuNodesMax")
        for sizing in self.services.values():
            if not (sizing.name == "embeddings" and self.embeddings_on_gpu):
                sizing.check_fargate_size()
        if self.embeddings_on_gpu:
            embeddings = self.services["embeddings"]
            check_task_fits(self.gpu_instance_type, embeddings.cpu, embeddings.memory)

    @property
    def tasks_in_public_subnets(self) -> bool:
        """Without NAT, tasks run in the public subnets with public IPs (their groups still admit only callers)."""
        return self.nat_gateways == "none"

    @property
    def serve_https(self) -> bool:
        """HTTPS is served only when ``up`` can get a certificate: through the hosted zone or an issued one."""
        return self.enable_https and bool(self.hosted_zone_id or self.certificate_arn)

    def warnings(self) -> list[str]:
        """What the deployer must know before ``up`` (``__main__.py`` logs each with ``pulumi.log.warn``)."""
        if self.enable_https and not self.serve_https:
            return [
                f"enableHttps=true but neither hostedZoneId nor certificateArn is set, so {self.domain_name} cannot "
                "get a validated certificate and this stack serves plain HTTP only. To serve HTTPS: "
                f"pulumi config set hostedZoneId <Route 53 zone id of {self.domain_name}> --stack {self.stack} "
                "(the program creates the validation and alias records), or request and validate a certificate "
                f"yourself and pulumi config set certificateArn <arn> --stack {self.stack}."
            ]
        return []

    @property
    def prefix(self) -> str:
        """The prefix of every physical name, ``<project>-<stack>``."""
        return f"{self.project}-{self.stack}"

    @classmethod
    def load(cls) -> StackConfig:
        """Read and validate the current stack's configuration (call once, in ``__main__.py``)."""
        config = pulumi.Config()
        readers = {"int": config.require_int, "bool": config.require_bool, "str": config.require}
        values = {_snake(key): readers[kind](key) for key, kind in GLOBAL_KEYS.items() if kind != "secret"}
        services = {}
        artworks = config.require_int("expectedArtworks")
        for name in SERVICE_NAMES:
            raw = {_snake(suffix): readers[kind](f"{name}{suffix}") for suffix, kind in SERVICE_KEYS.items()}
            sizing = ServiceSizing(name=name, port=SERVICES[name].port, **raw)  # type: ignore[arg-type]
            services[name] = sized_for(sizing, artworks)
        return cls(
            project=pulumi.get_project(),
            stack=pulumi.get_stack(),
            services=services,
            gateway_api_key=config.require_secret("gatewayApiKey"),
            **values,  # type: ignore[arg-type]
        )


def sized_for(sizing: ServiceSizing, artworks: int) -> ServiceSizing:
    """``sizing`` with its memory raised to what ``artworks`` need (:mod:`components.sizing`), kept under the
    service's memory target; unchanged where the configured memory is enough or the service does not grow.

    Raises:
        ValueError: the need exceeds the largest task for the service's CPU, naming the keys and what to do.
    """
    need = needed_mib(sizing.name, artworks)
    allowed = _FARGATE_MEMORY.get(sizing.cpu, range(0))
    if need == 0 or sizing.memory not in allowed:  # not a Fargate size: check_fargate_size names the keys
        return sizing
    memory = task_memory_mib(need, sizing.memory_target, sizing.memory, allowed)
    if memory is None:
        raise ValueError(
            f"expectedArtworks={artworks} needs {need} MiB in {sizing.name}, more than a {sizing.name}Cpu="
            f"{sizing.cpu} task holds under {sizing.name}MemoryTarget={sizing.memory_target}%: raise "
            f"{sizing.name}Cpu, or shard the collection over several {sizing.name} services (components/README.md)"
        )
    return dataclasses.replace(sizing, memory=memory)


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel).lstrip("_")
