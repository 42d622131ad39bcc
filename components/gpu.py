"""GPU node group: EC2 instances from the ECS GPU-optimised AMI behind an ECS capacity provider."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import iam


@dataclasses.dataclass(frozen=True)
class GpuInstanceType:
    """What one GPU instance type offers ECS tasks."""

    vcpus: int
    memory_mib: int
    gpus: int

    @property
    def task_cpu(self) -> int:
        """CPU units a task may reserve (1024 per vCPU)."""
        return self.vcpus * 1024

    @property
    def task_memory_mib(self) -> int:
        """Memory a task may reserve: ECS registers less than the instance has (OS, agent), so 90 % is assumed."""
        return self.memory_mib * 9 // 10


GPU_INSTANCE_TYPES: dict[str, GpuInstanceType] = {
    "g4dn.xlarge": GpuInstanceType(vcpus=4, memory_mib=16384, gpus=1),
    "g4dn.2xlarge": GpuInstanceType(vcpus=8, memory_mib=32768, gpus=1),
}
"""GPU instance types the node group supports (one NVIDIA T4 each), with what they offer; each is priced in
:mod:`components.plan.pricing`."""


def check_task_fits(instance_type: str, cpu: int, memory_mib: int, gpus: int = 1) -> None:
    """Raise unless one task of this size fits on one instance of the type (a plan-time check: ECS would otherwise
    leave the task pending forever and ``up`` would wait for a steady state that never comes)."""
    spec = GPU_INSTANCE_TYPES.get(instance_type)
    if spec is None:
        raise ValueError(f"gpuInstanceType={instance_type} is not one of {sorted(GPU_INSTANCE_TYPES)}")
    if cpu > spec.task_cpu:
        raise ValueError(f"embeddingsCpu={cpu} does not fit gpuInstanceType={instance_type} (at most {spec.task_cpu})")
    if memory_mib > spec.task_memory_mib:
        raise ValueError(
            f"embeddingsMemory={memory_mib} does not fit gpuInstanceType={instance_type} "
            f"(at most {spec.task_memory_mib} MiB of its {spec.memory_mib} MiB for tasks)"
        )
    if gpus > spec.gpus:
        raise ValueError(f"{gpus} GPUs per task do not fit gpuInstanceType={instance_type} ({spec.gpus} GPU)")


ECS_INSTANCE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def user_data(cluster_name: str) -> str:
    """The base64 boot script that joins a node to the cluster with GPU support on."""
    script = (
        "#!/bin/bash\n"
        "cat >> /etc/ecs/ecs.config <<'EOF'\n"
        f"ECS_CLUSTER={cluster_name}\n"
        "ECS_ENABLE_GPU_SUPPORT=true\n"
        "EOF\n"
    )
    return base64.b64encode(script.encode()).decode()


@dataclasses.dataclass(frozen=True)
class GpuNodeGroupArgs:
    """Inputs of :class:`GpuNodeGroup`."""

    cluster_name: pulumi.Input[str]
    """Name of the ECS cluster the nodes join; given as the cluster's output, the nodes wait for the cluster and
    are deleted before it."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets the auto-scaling group spreads over."""
    ami_parameter: str
    """SSM parameter with the ECS GPU-optimised AMI id (read at deploy time)."""
    instance_type: str = "g4dn.xlarge"
    root_volume_gb: int = 60
    """Encrypted gp3 root volume size, GiB (the GPU AMI needs at least 30)."""
    min_size: int = 1
    max_size: int = 10
    target_capacity: int = 100
    """Managed scaling's target utilisation of the group, percent."""
    launch_tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Tags of the instances and volumes the group launches: provider default tags do not reach what an
    auto-scaling group launches, and the nodes are the largest cost the stack's budget must see."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_size <= self.max_size:
            raise ValueError("need 0 <= min_size <= max_size")
        if self.root_volume_gb < 30:
            raise ValueError("root_volume_gb below 30 cannot hold the ECS GPU AMI")


class GpuNodeGroup(pulumi.ComponentResource):
    """Launch template (IMDSv2, encrypted gp3), auto-scaling group and ECS capacity provider with managed scaling.

    Attributes:
        capacity_provider_name: The ECS capacity provider services on the GPU group use.
        security_group_id: The nodes' security group (no ingress: tasks use awsvpc with their own groups).
    """

    def __init__(self, name: str, args: GpuNodeGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:gpu:GpuNodeGroup", name, None, opts)
        self._name = name
        self._args = args
        profile = self._create_instance_profile()
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="GPU nodes: no ingress; tasks have their own awsvpc security groups",
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"])],
            opts=pulumi.ResourceOptions(parent=self),
        )
        template = self._create_launch_template(profile)
        group = self._create_group(template)
        self.capacity_provider = aws.ecs.CapacityProvider(
            f"{name}-cp",
            name=f"{name}-cp",
            auto_scaling_group_provider=aws.ecs.CapacityProviderAutoScalingGroupProviderArgs(
                auto_scaling_group_arn=group.arn,
                managed_termination_protection="ENABLED",
                managed_scaling=aws.ecs.CapacityProviderAutoScalingGroupProviderManagedScalingArgs(
                    status="ENABLED", target_capacity=args.target_capacity
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.capacity_provider_name = self.capacity_provider.name
        self.security_group_id = self.security_group.id
        self.register_outputs(
            {"capacity_provider_name": self.capacity_provider_name, "security_group_id": self.security_group_id}
        )

    def _create_instance_profile(self) -> aws.iam.InstanceProfile:
        role = aws.iam.Role(
            f"{self._name}-role",
            assume_role_policy=iam.assume_role("ec2.amazonaws.com"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for label, arn in (("ecs", ECS_INSTANCE_POLICY), ("ssm", SSM_CORE_POLICY)):
            aws.iam.RolePolicyAttachment(
                f"{self._name}-{label}", role=role.name, policy_arn=arn, opts=pulumi.ResourceOptions(parent=self)
            )
        return aws.iam.InstanceProfile(
            f"{self._name}-profile", role=role.name, opts=pulumi.ResourceOptions(parent=self)
        )

    def _create_launch_template(self, profile: aws.iam.InstanceProfile) -> aws.ec2.LaunchTemplate:
        ami = aws.ssm.get_parameter_output(
            name=self._args.ami_parameter, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        return aws.ec2.LaunchTemplate(
            f"{self._name}-lt",
            image_id=ami,
            instance_type=self._args.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            vpc_security_group_ids=[self.security_group.id],
            user_data=pulumi.Output.from_input(self._args.cluster_name).apply(user_data),
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=dict(self._args.launch_tags))
                for kind in ("instance", "volume")
                if self._args.launch_tags
            ],
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=self._args.root_volume_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_group(self, template: aws.ec2.LaunchTemplate) -> aws.autoscaling.Group:
        return aws.autoscaling.Group(
            f"{self._name}-asg",
            min_size=self._args.min_size,
            max_size=self._args.max_size,
            vpc_zone_identifiers=list(self._args.subnet_ids),
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version="$Latest"),
            # ECS managed termination protection needs scale-in protection; force_delete lets a deliberate
            # destroy terminate the protected nodes instead of waiting for a scale-in that never comes
            protect_from_scale_in=True,
            force_delete=True,
            tags=[aws.autoscaling.GroupTagArgs(key="AmazonECSManaged", value="", propagate_at_launch=True)],
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desiredCapacity"]),
        )
