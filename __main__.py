"""The Pulumi program: composes the components for the current stack from one validated config object.

Stacks differ only in the values of ``Pulumi.<stack>.yaml`` (see ``components/README.md``).
"""

import pulumi

from components.alb import LoadBalancer, LoadBalancerArgs
from components.autoscaling import ScheduledScaling, ServiceAutoscaling, ServiceAutoscalingArgs
from components.backup import IndexBackup, IndexBackupArgs
from components.budget import CostBudget, CostBudgetArgs
from components.cluster import EcsCluster, EcsClusterArgs
from components.config import SERVICE_NAMES, StackConfig
from components.gpu import GpuNodeGroupArgs
from components.images import ContainerImages, ContainerImagesArgs, ImageSpec
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.secrets import AppSecret, AppSecretArgs
from components.service import EcsService
from components.storage import Storage, StorageArgs
from components.tags import SHARED, STACK_TAG, default_tags, tagged_provider, with_provider
from components.waf import WebAcl, WebAclArgs
from components.wiring import build_target, service_args
from services.common.topology import SERVICES

cfg = StackConfig.load()
p = cfg.prefix
for warning in cfg.warnings():
    pulumi.log.warn(warning)
region = pulumi.Config("aws").require("region")
owned = {
    owner: with_provider(tagged_provider(f"{p}-aws-{owner}", region, default_tags(cfg.project, cfg.stack, owner)))
    for owner in (SHARED, *SERVICE_NAMES)
}
shared = owned[SHARED]

network = Network(
    f"{p}-net",
    NetworkArgs(
        cidr_block=cfg.vpc_cidr,
        az_count=cfg.az_count,
        single_nat_gateway=cfg.nat_gateways == "single",
        enable_vpc_endpoints=cfg.enable_vpc_endpoints,
        enable_nat_gateway=cfg.nat_gateways != "none",
    ),
    shared,
)
cluster = EcsCluster(
    f"{p}-ecs",
    EcsClusterArgs(
        cluster_name=p,
        vpc_id=network.vpc_id,
        namespace=f"{p}.internal",
        container_insights=cfg.container_insights,
        gpu_node_group=(
            GpuNodeGroupArgs(
                cluster_name=p,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                ami_parameter=cfg.gpu_ami_parameter,
                instance_type=cfg.gpu_instance_type,
                root_volume_gb=cfg.gpu_root_volume_gb,
                min_size=cfg.gpu_nodes_min,
                max_size=cfg.gpu_nodes_max,
                launch_tags=default_tags(cfg.project, cfg.stack, "embeddings"),
            )
            if cfg.embeddings_on_gpu
            else None
        ),
    ),
    shared,
)
gpu = cluster.gpu_node_group
storage = Storage(
    f"{p}-data",
    StorageArgs(
        f"{p}-images",
        network.vpc_id,
        network.private_subnet_ids,
        force_destroy=cfg.destroy_with_contents,
        noncurrent_version_days=cfg.images_noncurrent_version_days,
    ),
    shared,
)
if cfg.enable_backups:
    IndexBackup(
        f"{p}-backup",
        IndexBackupArgs(storage.file_system_arn, cfg.backup_schedule, cfg.backup_retention_days),
        shared,
    )
images = ContainerImages(
    f"{p}-images",
    ContainerImagesArgs(
        repository_prefix=p,
        build=cfg.build_images,
        force_delete=cfg.destroy_with_contents,
        images=[ImageSpec(name, build_target(cfg, name), cfg.services[name].image) for name in SERVICE_NAMES],
    ),
    shared,
)
alb = LoadBalancer(
    f"{p}-lb",
    LoadBalancerArgs(
        vpc_id=network.vpc_id,
        vpc_cidr=cfg.vpc_cidr,
        subnet_ids=network.public_subnet_ids,
        target_port=cfg.services["gateway"].port,
        health_check_path=SERVICES["gateway"].health_path,
        enable_https=cfg.serve_https,
        domain_name=cfg.domain_name if cfg.serve_https else None,
        hosted_zone_id=cfg.hosted_zone_id or None,
        certificate_arn=cfg.certificate_arn or None,
    ),
    shared,
)
api_key = AppSecret(f"{p}-api-key", AppSecretArgs(cfg.gateway_api_key, "Gateway admin API key"), owned["gateway"])

services: dict[str, EcsService] = {}
for name in SERVICE_NAMES:
    callers = [alb.security_group_id] if name == "gateway" else [services["gateway"].security_group_id]
    services[name] = EcsService(
        f"{p}-{name}",
        service_args(cfg, name, network, cluster, storage, images, alb, api_key, gpu, callers),
        owned[name],
    )
    sizing = cfg.services[name]
    if cfg.enable_autoscaling:
        ServiceAutoscaling(
            f"{p}-{name}-scaling",
            ServiceAutoscalingArgs(
                cluster_name=cluster.cluster_name,
                service_name=services[name].service_name,
                autoscaling_min_capacity=sizing.min_tasks,
                autoscaling_max_capacity=sizing.max_tasks,
                cpu_target=sizing.cpu_target,
                memory_target=sizing.memory_target,
                scale_out_cooldown=sizing.scale_out_cooldown,
                scale_in_cooldown=sizing.scale_in_cooldown,
                requests_per_target=cfg.gateway_requests_per_target if name == "gateway" else None,
                alb_resource_label=alb.resource_label if name == "gateway" else None,
                schedule=(
                    ScheduledScaling(cfg.scale_up_schedule, cfg.scale_down_schedule)
                    if cfg.enable_scheduled_scaling
                    else None
                ),
            ),
            owned[name],
        )

if cfg.enable_waf:
    WebAcl(
        f"{p}-waf",
        WebAclArgs(load_balancer_arn=alb.arn, max_body_bytes=cfg.max_body_bytes, rate_limit=cfg.waf_rate_limit),
        shared,
    )
monitoring = Monitoring(
    f"{p}-monitoring",
    MonitoringArgs(
        alb_arn_suffix=alb.arn_suffix,
        cluster_name=cluster.cluster_name,
        service_names={name: service.service_name for name, service in services.items()},
        region=region,
        enable_alarms=cfg.enable_alarms,
        alarm_email=cfg.alarm_email,
    ),
    shared,
)
CostBudget(
    f"{p}-budget",
    CostBudgetArgs(
        cfg.monthly_budget_usd,
        monitoring.topic_arn,
        cost_allocation_tag=(STACK_TAG, default_tags(cfg.project, cfg.stack, SHARED)[STACK_TAG]),
        email=cfg.alarm_email,
    ),
    shared,
)

pulumi.export("url", f"https://{cfg.domain_name}" if cfg.serve_https else pulumi.Output.concat("http://", alb.dns_name))
pulumi.export("loadBalancerDns", alb.dns_name)
pulumi.export("clusterName", cluster.cluster_name)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("imagesBucket", storage.bucket_name)
pulumi.export("imageRefs", images.image_refs)
pulumi.export("dashboardName", monitoring.dashboard_name)
pulumi.export("alarmTopicArn", monitoring.topic_arn)
pulumi.export("certificateValidationRecords", alb.certificate_validation)
