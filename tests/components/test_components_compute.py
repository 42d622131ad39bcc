"""Network, cluster, GPU node group and ECS service components: exact children, names and key inputs."""

from __future__ import annotations

import base64
import json

import pulumi
import pytest

from components.cluster import EcsCluster, EcsClusterArgs
from components.container import ContainerSpec, container_definitions, health_command
from components.gpu import GpuNodeGroup, GpuNodeGroupArgs
from components.network import Network, NetworkArgs, subnet_cidrs
from components.service import EcsService, EcsServiceArgs, EfsMount, capacity_strategy
from services.common.topology import SERVICES

SEARCH, EMBEDDINGS = SERVICES["search"], SERVICES["embeddings"]


def test_subnet_cidrs_are_deterministic_public_first_private_from_the_ninth_block() -> None:
    assert subnet_cidrs("10.0.0.0/16", 3) == (
        ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"],
        ["10.0.128.0/20", "10.0.144.0/20", "10.0.160.0/20"],
    )
    with pytest.raises(ValueError, match="cannot hold"):
        subnet_cidrs("10.0.0.0/24", 2)


def test_network_with_single_nat_routes_every_private_subnet_through_it(run_component) -> None:
    plan = run_component(lambda: Network("n", NetworkArgs(az_count=2)))
    network = plan.of_type("artwork-matcher:network:Network")[0]
    assert plan.child_types(network) == sorted(
        ["Vpc", "InternetGateway", "Eip", "NatGateway"]
        + ["Subnet"] * 4
        + ["RouteTable"] * 3
        + ["Route"] * 3
        + ["RouteTableAssociation"] * 4
    )
    routes = [plan.named(f"n-private-default-{i}").inputs["natGatewayId"] for i in range(2)]
    assert routes == ["n-nat-0-id", "n-nat-0-id"]
    assert plan.named("n-private-1").inputs["availabilityZone"] == "eu-west-1b"
    assert plan.named("n-vpc").inputs["cidrBlock"] == "10.0.0.0/16"


def test_network_without_nat_leaves_private_subnets_without_a_route_out(run_component) -> None:
    plan = run_component(lambda: Network("n", NetworkArgs(az_count=2, enable_nat_gateway=False)))
    network = plan.of_type("artwork-matcher:network:Network")[0]
    assert plan.child_types(network) == sorted(
        ["Vpc", "InternetGateway", "Route"] + ["Subnet"] * 4 + ["RouteTable"] * 3 + ["RouteTableAssociation"] * 4
    )
    assert plan.named("n-public-default").inputs["gatewayId"] == "n-igw-id"


def test_network_with_nat_per_zone_and_endpoints(run_component) -> None:
    plan = run_component(
        lambda: Network("n", NetworkArgs(az_count=3, single_nat_gateway=False, enable_vpc_endpoints=True))
    )
    assert len(plan.of_type("aws:ec2/natGateway:NatGateway")) == 3
    routes = [plan.named(f"n-private-default-{i}").inputs["natGatewayId"] for i in range(3)]
    assert routes == ["n-nat-0-id", "n-nat-1-id", "n-nat-2-id"]
    endpoints = {e.name: e.inputs for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert endpoints["n-s3"]["vpcEndpointType"] == "Gateway"
    assert sorted(endpoints) == ["n-ecr-api", "n-ecr-dkr", "n-logs", "n-s3", "n-secretsmanager"]
    assert endpoints["n-ecr-dkr"]["serviceName"] == "com.amazonaws.eu-west-1.ecr.dkr"
    assert plan.named("n-endpoints-https").inputs["cidrIpv4"] == "10.0.0.0/16"


def test_cluster_has_insights_both_fargate_providers_its_gpu_group_and_a_namespace(run_component) -> None:
    gpu = GpuNodeGroupArgs("c", "vpc-1", ["s1", "s2"], ami_parameter="/ami/gpu")
    plan = run_component(lambda: EcsCluster("k", EcsClusterArgs("c", "vpc-1", "c.internal", gpu_node_group=gpu)))
    cluster = plan.of_type("artwork-matcher:cluster:EcsCluster")[0]
    assert plan.child_types(cluster) == ["Cluster", "ClusterCapacityProviders", "GpuNodeGroup", "PrivateDnsNamespace"]
    assert plan.named("k-cluster").inputs["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert plan.named("k-capacity").inputs["capacityProviders"] == ["FARGATE", "FARGATE_SPOT", "k-gpu-cp"]
    assert plan.named("k-namespace").inputs["name"] == "c.internal"
    # nodes join a cluster that exists, and destroy removes them (and their provider) before the cluster
    assert plan.waits_for(plan.named("k-gpu-asg"), plan.named("k-cluster"))
    assert plan.waits_for(plan.named("k-capacity"), plan.named("k-gpu-cp"))
    assert "ECS_CLUSTER=c\n" in base64.b64decode(plan.named("k-gpu-lt").inputs["userData"]).decode()


def test_a_gpu_group_for_another_cluster_is_rejected_naming_both() -> None:
    gpu = GpuNodeGroupArgs("other", "vpc-1", ["s1"], ami_parameter="/ami/gpu")
    with pytest.raises(ValueError, match=r"gpu_node_group\.cluster_name and cluster_name differ"):
        EcsClusterArgs("c", "vpc-1", "c.internal", gpu_node_group=gpu)


def test_gpu_node_group_reads_the_ami_from_ssm_and_scales_through_a_managed_capacity_provider(run_component) -> None:
    args = GpuNodeGroupArgs("c", "vpc-1", ["s1", "s2"], ami_parameter="/ami/gpu", min_size=1, max_size=4)
    plan = run_component(lambda: GpuNodeGroup("g", args))
    group = plan.of_type("artwork-matcher:gpu:GpuNodeGroup")[0]
    assert plan.child_types(group) == sorted(
        [
            "Role",
            "RolePolicyAttachment",
            "RolePolicyAttachment",
            "InstanceProfile",
            "SecurityGroup",
            "LaunchTemplate",
            "Group",
            "CapacityProvider",
        ]
    )
    template = plan.named("g-lt").inputs
    assert template["imageId"] == "ami-0offline0gpu00000"
    assert template["instanceType"] == "g4dn.xlarge"
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["blockDeviceMappings"][0]["ebs"] == {
        "volumeSize": 60,
        "volumeType": "gp3",
        "encrypted": "true",
        "deleteOnTermination": "true",
    }
    asg = plan.named("g-asg").inputs
    assert (asg["minSize"], asg["maxSize"], asg["protectFromScaleIn"]) == (1, 4, True)
    provider = plan.named("g-cp").inputs["autoScalingGroupProvider"]
    assert provider["managedTerminationProtection"] == "ENABLED"
    assert provider["managedScaling"] == {"status": "ENABLED", "targetCapacity": 100}
    assert not plan.named("g-sg").inputs.get("ingress")


def service_args(**overrides: object) -> EcsServiceArgs:
    base: dict[str, object] = dict(
        service_name="search",
        env_prefix="SEARCH",
        port=SEARCH.port,
        cpu=512,
        memory=1024,
        image="repo@sha256:abc",
        cluster_arn="arn:cluster",
        vpc_id="vpc-1",
        subnet_ids=["s1", "s2"],
        namespace_id="ns-1",
        allowed_caller_security_group_ids=["sg-gateway"],
        bucket_arns=["arn:aws:s3:::b"],
    )
    base.update(overrides)
    return EcsServiceArgs(**base)  # type: ignore[arg-type]


def test_service_creates_its_task_service_group_logs_roles_and_discovery_name(run_component) -> None:
    plan = run_component(lambda: EcsService("svc", service_args(log_retention_days=30)))
    component = plan.of_type("artwork-matcher:service:EcsService")[0]
    assert plan.child_types(component) == sorted(
        [
            "LogGroup",
            "Role",
            "Role",
            "RolePolicyAttachment",
            "RolePolicy",
            "SecurityGroup",
            "SecurityGroupIngressRule",
            "SecurityGroupEgressRule",
            "Service",
            "Service",
            "TaskDefinition",
        ]
    )
    assert plan.named("svc-logs").inputs["retentionInDays"] == 30
    service = plan.named("svc-service").inputs
    assert (service["deploymentMaximumPercent"], service["deploymentMinimumHealthyPercent"]) == (200, 100)
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["networkConfiguration"]["assignPublicIp"] is False
    assert service["serviceRegistries"]["registryArn"].endswith(":svc-discovery")
    rule = plan.named("svc-from-caller-0").inputs
    assert (rule["referencedSecurityGroupId"], rule["fromPort"]) == ("sg-gateway", SEARCH.port)


def test_service_with_efs_mounts_it_and_admits_itself_to_the_file_system(run_component) -> None:
    efs = EfsMount("fs-1", "arn:fs", "ap-1", "sg-efs", "/mnt/index", read_only=False)
    plan = run_component(lambda: EcsService("svc", service_args(efs=efs)))
    rule = plan.named("svc-to-efs").inputs
    assert (rule["securityGroupId"], rule["referencedSecurityGroupId"], rule["fromPort"]) == (
        "sg-efs",
        "svc-sg-id",
        2049,
    )
    volume = plan.named("svc-task").inputs["volumes"][0]["efsVolumeConfiguration"]
    assert volume["authorizationConfig"] == {"accessPointId": "ap-1", "iam": "ENABLED"}
    statements = json.loads(plan.named("svc-task-policy").inputs["policy"])["Statement"]
    assert statements[-1] == {
        "Effect": "Allow",
        "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
        "Resource": ["arn:fs"],
    }


def test_service_args_reject_conflicts_naming_both() -> None:
    with pytest.raises(ValueError, match="gpu_count needs capacity_provider"):
        service_args(gpu_count=1)
    with pytest.raises(ValueError, match="spot_percent conflicts with capacity_provider"):
        service_args(spot_percent=80, capacity_provider="gpu-cp")
    with pytest.raises(ValueError, match="at least one caller"):
        service_args(allowed_caller_security_group_ids=[])


def test_capacity_strategy_keeps_one_on_demand_base_and_splits_the_rest_by_weight() -> None:
    assert capacity_strategy(80) == [
        {"capacity_provider": "FARGATE", "weight": 1, "base": 1},
        {"capacity_provider": "FARGATE_SPOT", "weight": 4, "base": 0},
    ]
    assert capacity_strategy(0) == [{"capacity_provider": "FARGATE", "weight": 1, "base": 1}]
    assert capacity_strategy(100) == [{"capacity_provider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    assert capacity_strategy(0, "gpu-cp") == [{"capacity_provider": "gpu-cp", "weight": 1, "base": 1}]


@pulumi.runtime.test
def test_container_definitions_is_a_pure_function_of_the_spec() -> pulumi.Output[None]:
    spec = ContainerSpec(
        name="embeddings",
        image="repo@sha256:abc",
        port=EMBEDDINGS.port,
        env_prefix="EMBEDDINGS",
        log_group="/ecs/x",
        region="eu-west-1",
        environment={"EMBEDDINGS_DEVICE": "cuda"},
        gpu_count=1,
    )

    def check(text: str) -> None:
        [container] = json.loads(text)
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env == {
            "EMBEDDINGS_HOST": "0.0.0.0",
            "EMBEDDINGS_PORT": str(EMBEDDINGS.port),
            "EMBEDDINGS_DEVICE": "cuda",
        }
        assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
        assert container["healthCheck"]["command"] == health_command(EMBEDDINGS.port)
        assert f"http://127.0.0.1:{EMBEDDINGS.port}/health" in container["healthCheck"]["command"][-1]
        assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/x"

    return container_definitions(spec).apply(check)
