"""ECS service: one component used for each of the four services."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import iam
from components.container import ContainerSpec, MountPoint, container_definitions
from services.common.topology import HEALTH_PATH

EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def capacity_strategy(
    spot_percent: int, capacity_provider: pulumi.Input[str] | None = None
) -> list[aws.ecs.ServiceCapacityProviderStrategyArgsDict]:
    """The capacity provider strategy: an EC2 provider, or Fargate with a FARGATE_SPOT share.

    Below 100 % Spot, one on-demand task is kept as the base and the rest is split by the smallest integer weights.
    """
    if capacity_provider:
        return [{"capacity_provider": capacity_provider, "weight": 1, "base": 1}]
    if spot_percent == 0:
        return [{"capacity_provider": "FARGATE", "weight": 1, "base": 1}]
    if spot_percent == 100:
        return [{"capacity_provider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    divisor = math.gcd(spot_percent, 100 - spot_percent)
    return [
        {"capacity_provider": "FARGATE", "weight": (100 - spot_percent) // divisor, "base": 1},
        {"capacity_provider": "FARGATE_SPOT", "weight": spot_percent // divisor, "base": 0},
    ]


@dataclasses.dataclass(frozen=True)
class EfsMount:
    """An EFS access point mounted into the task; the component admits its own group to the EFS group."""

    file_system_id: pulumi.Input[str]
    file_system_arn: pulumi.Input[str]
    access_point_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    """The file system's mount-target security group."""
    container_path: str
    read_only: bool = True


@dataclasses.dataclass(frozen=True)
class EcsServiceArgs:
    """Inputs of :class:`EcsService`."""

    service_name: str
    """Short name (``gateway``); also the container and Cloud Map name."""
    env_prefix: str
    port: int
    cpu: int
    memory: int
    image: pulumi.Input[str]
    """Image pinned by digest."""
    cluster_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    namespace_id: pulumi.Input[str]
    allowed_caller_security_group_ids: Sequence[pulumi.Input[str]]
    """The only security groups admitted to ``port``: the callers that need this service."""
    bucket_arns: Sequence[pulumi.Input[str]]
    """Buckets the task role may read and write (and nothing else in S3)."""
    desired_count: int = 1
    log_retention_days: int = 7
    environment: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    secrets: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    """Environment name to Secrets Manager ARN; the execution role may read exactly these."""
    capacity_provider: pulumi.Input[str] | None = None
    """An EC2 capacity provider (the GPU group); None runs on Fargate."""
    gpu_count: int = 0
    spot_percent: int = 0
    efs: EfsMount | None = None
    target_group_arn: pulumi.Input[str] | None = None
    """Register the tasks with this ALB target group."""
    enable_autoscaling: bool = False
    """Autoscaling owns the task count: ECS ignores later changes to ``desired_count``."""
    health_start_period_s: int = 60
    health_path: str = HEALTH_PATH
    """Path the container answers 200 on while healthy (its health check)."""
    wait_for_steady_state: bool = False
    """``pulumi up`` waits until the service is stable, so a task that keeps failing fails the update."""
    assign_public_ip: bool = False
    """A public IP per task, for tasks in public subnets without NAT (image pulls, logs, AWS APIs); the security
    group still admits only ``allowed_caller_security_group_ids``, so nothing on the internet reaches the task."""

    def __post_init__(self) -> None:
        if not self.allowed_caller_security_group_ids:
            raise ValueError(f"{self.service_name}: allowed_caller_security_group_ids must name at least one caller")
        if self.gpu_count and self.capacity_provider is None:
            raise ValueError(f"{self.service_name}: gpu_count needs capacity_provider (GPUs are EC2-only)")
        if self.spot_percent and self.capacity_provider is not None:
            raise ValueError(f"{self.service_name}: spot_percent conflicts with capacity_provider (Spot is Fargate)")


class EcsService(pulumi.ComponentResource):
    """Task definition, service, security group, log group, IAM roles and a Cloud Map name for one service.

    Attributes:
        service_name: The ECS service's name.
        security_group_id: The tasks' security group (callers of this service are admitted by it).
        log_group_name: The CloudWatch log group.
    """

    def __init__(self, name: str, args: EcsServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:service:EcsService", name, None, opts)
        self._name = name
        self._args = args
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/ecs/{name}", retention_in_days=args.log_retention_days, opts=self._child()
        )
        execution_role, task_role = self._create_roles()
        self.security_group, rules = self._create_security_group()
        registry = aws.servicediscovery.Service(
            f"{name}-discovery",
            name=args.service_name,
            dns_config=aws.servicediscovery.ServiceDnsConfigArgs(
                namespace_id=args.namespace_id,
                routing_policy="MULTIVALUE",
                dns_records=[aws.servicediscovery.ServiceDnsConfigDnsRecordArgs(type="A", ttl=10)],
            ),
            health_check_custom_config=aws.servicediscovery.ServiceHealthCheckCustomConfigArgs(),
            # ECS registers the instances; a destroy must not fail on ones it has not deregistered yet
            force_destroy=True,
            opts=self._child(),
        )
        self.task_definition = self._create_task_definition(execution_role, task_role)
        self.service = self._create_service(registry, rules)
        self.service_name = self.service.name
        self.security_group_id = self.security_group.id
        self.log_group_name = self.log_group.name
        self.register_outputs(
            {
                "service_name": self.service_name,
                "security_group_id": self.security_group_id,
                "log_group_name": self.log_group_name,
            }
        )

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_roles(self) -> tuple[aws.iam.Role, aws.iam.Role]:
        a = self._args
        execution = aws.iam.Role(
            f"{self._name}-execution-role",
            assume_role_policy=iam.assume_role("ecs-tasks.amazonaws.com"),
            opts=self._child(),
        )
        aws.iam.RolePolicyAttachment(
            f"{self._name}-execution-managed", role=execution.name, policy_arn=EXECUTION_POLICY, opts=self._child()
        )
        if a.secrets:
            aws.iam.RolePolicy(
                f"{self._name}-execution-secrets",
                role=execution.id,
                policy=iam.policy([iam.statement(["secretsmanager:GetSecretValue"], list(a.secrets.values()))]),
                opts=self._child(),
            )
        task = aws.iam.Role(
            f"{self._name}-task-role",
            assume_role_policy=iam.assume_role("ecs-tasks.amazonaws.com"),
            opts=self._child(),
        )
        objects = [pulumi.Output.concat(arn, "/*") for arn in a.bucket_arns]
        statements = [
            iam.statement(["s3:ListBucket"], list(a.bucket_arns)),
            iam.statement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], objects),
        ]
        if a.efs is not None:
            efs_actions = ["elasticfilesystem:ClientMount"]
            if not a.efs.read_only:
                efs_actions.append("elasticfilesystem:ClientWrite")
            statements.append(iam.statement(efs_actions, [a.efs.file_system_arn]))
        aws.iam.RolePolicy(f"{self._name}-task-policy", role=task.id, policy=iam.policy(statements), opts=self._child())
        return execution, task

    def _create_security_group(self) -> tuple[aws.ec2.SecurityGroup, list[pulumi.Resource]]:
        """The tasks' group and the rules a task needs before it starts (egress for its image, NFS into EFS)."""
        a = self._args
        group = aws.ec2.SecurityGroup(
            f"{self._name}-sg",
            vpc_id=a.vpc_id,
            description=f"{a.service_name} tasks: port {a.port} from its callers only",
            opts=self._child(),
        )
        for i, caller in enumerate(a.allowed_caller_security_group_ids):
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-from-caller-{i}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=a.port,
                to_port=a.port,
                referenced_security_group_id=caller,
                opts=self._child(),
            )
        needed: list[pulumi.Resource] = []
        egress = aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-egress",
            security_group_id=group.id,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="Image pulls, AWS APIs and the other services",
            opts=self._child(),
        )
        needed.append(egress)
        if a.efs is not None:
            to_efs = aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-to-efs",
                security_group_id=a.efs.security_group_id,
                ip_protocol="tcp",
                from_port=2049,
                to_port=2049,
                referenced_security_group_id=group.id,
                opts=self._child(),
            )
            needed.append(to_efs)
        return group, needed

    def _create_task_definition(self, execution: aws.iam.Role, task: aws.iam.Role) -> aws.ecs.TaskDefinition:
        a = self._args
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        mounts = [MountPoint("index", a.efs.container_path, a.efs.read_only)] if a.efs else []
        spec = ContainerSpec(
            name=a.service_name,
            image=a.image,
            port=a.port,
            env_prefix=a.env_prefix,
            log_group=self.log_group.name,
            region=region,
            environment=a.environment,
            secrets=a.secrets,
            gpu_count=a.gpu_count,
            mount_points=mounts,
            health_start_period_s=a.health_start_period_s,
            health_path=a.health_path,
        )
        volumes = []
        if a.efs is not None:
            volumes.append(
                aws.ecs.TaskDefinitionVolumeArgs(
                    name="index",
                    efs_volume_configuration=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationArgs(
                        file_system_id=a.efs.file_system_id,
                        transit_encryption="ENABLED",
                        authorization_config=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfigArgs(
                            access_point_id=a.efs.access_point_id, iam="ENABLED"
                        ),
                    ),
                )
            )
        return aws.ecs.TaskDefinition(
            f"{self._name}-task",
            family=self._name,
            cpu=str(a.cpu),
            memory=str(a.memory),
            network_mode="awsvpc",
            requires_compatibilities=["EC2"] if a.capacity_provider is not None else ["FARGATE"],
            execution_role_arn=execution.arn,
            task_role_arn=task.arn,
            container_definitions=container_definitions(spec),
            volumes=volumes,
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            opts=self._child(),
        )

    def _create_service(self, registry: aws.servicediscovery.Service, rules: list[pulumi.Resource]) -> aws.ecs.Service:
        a = self._args
        balancers = []
        if a.target_group_arn is not None:
            balancers.append(
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=a.target_group_arn, container_name=a.service_name, container_port=a.port
                )
            )
        return aws.ecs.Service(
            f"{self._name}-service",
            name=self._name,
            cluster=a.cluster_arn,
            task_definition=self.task_definition.arn,
            desired_count=a.desired_count,
            capacity_provider_strategies=capacity_strategy(a.spot_percent, a.capacity_provider),
            deployment_maximum_percent=200,
            deployment_minimum_healthy_percent=100,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=list(a.subnet_ids),
                security_groups=[self.security_group.id],
                assign_public_ip=a.assign_public_ip,
            ),
            load_balancers=balancers,
            health_check_grace_period_seconds=a.health_start_period_s if balancers else None,
            service_registries=aws.ecs.ServiceServiceRegistriesArgs(registry_arn=registry.arn),
            propagate_tags="SERVICE",
            enable_execute_command=False,
            wait_for_steady_state=a.wait_for_steady_state,
            opts=self._child(
                ignore_changes=["desiredCount"] if a.enable_autoscaling else None,
                # a task started before its group lets it out (image pull) or into EFS (mount) fails to start
                depends_on=rules,
            ),
        )
