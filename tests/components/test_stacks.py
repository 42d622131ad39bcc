"""Both stacks end to end under mocks: golden resource tables, exports, and the design values per stack."""

from __future__ import annotations

import collections
import json

import pytest

from components.config import SERVICE_NAMES
from components.plan import recorder as offline
from components.plan.recorder import Plan
from services.common.topology import SERVICES

DEMO_TYPES = {
    "artwork-matcher:alb:LoadBalancer": 1,
    "artwork-matcher:budget:CostBudget": 1,
    "artwork-matcher:cluster:EcsCluster": 1,
    "artwork-matcher:images:ContainerImages": 1,
    "artwork-matcher:monitoring:Monitoring": 1,
    "artwork-matcher:network:Network": 1,
    "artwork-matcher:secrets:AppSecret": 1,
    "artwork-matcher:service:EcsService": 4,
    "artwork-matcher:storage:Storage": 1,
    "aws:budgets/budget:Budget": 1,
    "aws:cloudwatch/dashboard:Dashboard": 1,
    "aws:cloudwatch/logGroup:LogGroup": 4,
    "aws:ec2/internetGateway:InternetGateway": 1,
    "aws:ec2/route:Route": 1,
    "aws:ec2/routeTable:RouteTable": 3,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": 4,
    "aws:ec2/securityGroup:SecurityGroup": 6,
    "aws:ec2/subnet:Subnet": 4,
    "aws:ec2/vpc:Vpc": 1,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": 4,
    "aws:ecr/repository:Repository": 4,
    "aws:ecs/cluster:Cluster": 1,
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": 1,
    "aws:ecs/service:Service": 4,
    "aws:ecs/taskDefinition:TaskDefinition": 4,
    "aws:efs/accessPoint:AccessPoint": 1,
    "aws:efs/fileSystem:FileSystem": 1,
    "aws:efs/mountTarget:MountTarget": 2,
    "aws:iam/role:Role": 8,
    "aws:iam/rolePolicy:RolePolicy": 5,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 4,
    "aws:kms/alias:Alias": 1,
    "aws:kms/key:Key": 1,
    "aws:lb/listener:Listener": 1,
    "aws:lb/loadBalancer:LoadBalancer": 1,
    "aws:lb/targetGroup:TargetGroup": 1,
    "aws:s3/bucket:Bucket": 1,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
    "aws:s3/bucketVersioning:BucketVersioning": 1,
    "aws:secretsmanager/secret:Secret": 1,
    "aws:secretsmanager/secretVersion:SecretVersion": 1,
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": 1,
    "aws:servicediscovery/service:Service": 4,
    "aws:sns/topic:Topic": 1,
    "aws:sns/topicPolicy:TopicPolicy": 1,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": 5,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 8,
    "docker:index/image:Image": 4,
    "pulumi:providers:aws": 5,
}

PRODUCTION_TYPES = {
    "artwork-matcher:alb:LoadBalancer": 1,
    "artwork-matcher:autoscaling:ServiceAutoscaling": 4,
    "artwork-matcher:backup:IndexBackup": 1,
    "artwork-matcher:budget:CostBudget": 1,
    "artwork-matcher:cluster:EcsCluster": 1,
    "artwork-matcher:gpu:GpuNodeGroup": 1,
    "artwork-matcher:images:ContainerImages": 1,
    "artwork-matcher:monitoring:Monitoring": 1,
    "artwork-matcher:network:Network": 1,
    "artwork-matcher:secrets:AppSecret": 1,
    "artwork-matcher:service:EcsService": 4,
    "artwork-matcher:storage:Storage": 1,
    "artwork-matcher:waf:WebAcl": 1,
    "aws:acm/certificate:Certificate": 1,
    "aws:acm/certificateValidation:CertificateValidation": 1,
    "aws:appautoscaling/policy:Policy": 9,
    "aws:appautoscaling/scheduledAction:ScheduledAction": 8,
    "aws:appautoscaling/target:Target": 4,
    "aws:autoscaling/group:Group": 1,
    "aws:backup/plan:Plan": 1,
    "aws:backup/selection:Selection": 1,
    "aws:backup/vault:Vault": 1,
    "aws:budgets/budget:Budget": 1,
    "aws:cloudwatch/dashboard:Dashboard": 1,
    "aws:cloudwatch/logGroup:LogGroup": 4,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 6,
    "aws:ec2/eip:Eip": 3,
    "aws:ec2/internetGateway:InternetGateway": 1,
    "aws:ec2/launchTemplate:LaunchTemplate": 1,
    "aws:ec2/natGateway:NatGateway": 3,
    "aws:ec2/route:Route": 4,
    "aws:ec2/routeTable:RouteTable": 4,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": 6,
    "aws:ec2/securityGroup:SecurityGroup": 8,
    "aws:ec2/subnet:Subnet": 6,
    "aws:ec2/vpc:Vpc": 1,
    "aws:ec2/vpcEndpoint:VpcEndpoint": 5,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": 4,
    "aws:ecr/repository:Repository": 4,
    "aws:ecs/capacityProvider:CapacityProvider": 1,
    "aws:ecs/cluster:Cluster": 1,
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": 1,
    "aws:ecs/service:Service": 4,
    "aws:ecs/taskDefinition:TaskDefinition": 4,
    "aws:efs/accessPoint:AccessPoint": 1,
    "aws:efs/fileSystem:FileSystem": 1,
    "aws:efs/mountTarget:MountTarget": 3,
    "aws:iam/instanceProfile:InstanceProfile": 1,
    "aws:iam/role:Role": 10,
    "aws:iam/rolePolicy:RolePolicy": 5,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 8,
    "aws:kms/alias:Alias": 1,
    "aws:kms/key:Key": 1,
    "aws:lb/listener:Listener": 2,
    "aws:lb/loadBalancer:LoadBalancer": 1,
    "aws:lb/targetGroup:TargetGroup": 1,
    "aws:route53/record:Record": 2,
    "aws:s3/bucket:Bucket": 1,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
    "aws:s3/bucketVersioning:BucketVersioning": 1,
    "aws:secretsmanager/secret:Secret": 1,
    "aws:secretsmanager/secretVersion:SecretVersion": 1,
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": 1,
    "aws:servicediscovery/service:Service": 4,
    "aws:sns/topic:Topic": 1,
    "aws:sns/topicPolicy:TopicPolicy": 1,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": 5,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 10,
    "aws:wafv2/webAcl:WebAcl": 1,
    "aws:wafv2/webAclAssociation:WebAclAssociation": 1,
    "docker:index/image:Image": 4,
    "pulumi:providers:aws": 5,
}

EXPORTS = {
    "url",
    "loadBalancerDns",
    "clusterName",
    "vpcId",
    "imagesBucket",
    "imageRefs",
    "dashboardName",
    "alarmTopicArn",
}


def type_counts(plan: Plan) -> dict[str, int]:
    return dict(collections.Counter(r.type for r in plan.registrations))


def task_definition(plan: Plan, service: str) -> dict[str, object]:
    return dict(plan.named(f"{plan.project}-{plan.stack}-{service}-task").inputs)


def test_demo_creates_exactly_the_golden_resource_table(demo_plan: Plan) -> None:
    assert type_counts(demo_plan) == DEMO_TYPES


def test_production_creates_exactly_the_golden_resource_table(production_plan: Plan) -> None:
    assert type_counts(production_plan) == PRODUCTION_TYPES


def test_every_stack_exports_url_cluster_images_and_monitoring(any_plan: Plan) -> None:
    assert set(any_plan.exports) >= EXPORTS
    assert set(any_plan.exports["imageRefs"]) == set(SERVICE_NAMES)
    scheme = "https://" if any_plan.stack == "production" else "http://"
    assert any_plan.exports["url"].startswith(scheme)


def test_production_exports_the_certificate_validation_records_it_created_and_its_domain(production_plan: Plan) -> None:
    assert production_plan.exports["certificateValidationRecords"] == [
        {"name": "_x.example.org.", "type": "CNAME", "value": "_y.acm-validations.aws."}
    ]
    assert production_plan.exports["url"] == "https://artworks.example.org"
    assert not production_plan.warnings


def test_https_without_a_zone_or_certificate_serves_http_and_says_what_to_do() -> None:
    plan = offline.run("production", overrides={"hostedZoneId": ""})
    [warning] = plan.warnings
    assert "serves plain HTTP only" in warning
    assert "pulumi config set hostedZoneId" in warning and "pulumi config set certificateArn" in warning
    assert not [r for r in plan.registrations if r.type.startswith(("aws:acm/", "aws:route53/"))]
    [listener] = plan.of_type("aws:lb/listener:Listener")
    assert (listener.inputs["port"], listener.inputs["defaultActions"][0]["type"]) == (80, "forward")
    assert plan.exports["url"] == "http://alb.test"


def test_an_issued_certificate_is_used_without_requesting_one() -> None:
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    plan = offline.run("production", overrides={"hostedZoneId": "", "certificateArn": arn})
    assert not plan.warnings
    https = [r for r in plan.of_type("aws:lb/listener:Listener") if r.inputs["protocol"] == "HTTPS"]
    assert [r.inputs["certificateArn"] for r in https] == [arn]
    assert not [r for r in plan.registrations if r.type.startswith("aws:acm/")]


@pytest.mark.parametrize(("stack", "days"), [("demo", 7), ("production", 30)])
def test_log_retention_is_seven_days_in_demo_and_thirty_in_production(
    stack: str, days: int, demo_plan: Plan, production_plan: Plan
) -> None:
    plan = demo_plan if stack == "demo" else production_plan
    groups = plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 4
    assert {g.inputs["retentionInDays"] for g in groups} == {days}


def test_gpu_is_required_only_by_embeddings_in_production(demo_plan: Plan, production_plan: Plan) -> None:
    for plan in (demo_plan, production_plan):
        for service in SERVICE_NAMES:
            container = json.loads(str(task_definition(plan, service)["containerDefinitions"]))[0]
            wants_gpu = plan.stack == "production" and service == "embeddings"
            assert ("resourceRequirements" in container) is wants_gpu, (plan.stack, service)
            if wants_gpu:
                assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    embeddings = task_definition(production_plan, "embeddings")
    assert embeddings["requiresCompatibilities"] == ["EC2"]
    ecs_service = production_plan.named("artwork-matcher-production-embeddings-service")
    assert ecs_service.inputs["capacityProviderStrategies"] == [
        {"capacityProvider": "artwork-matcher-production-ecs-gpu-cp", "weight": 1, "base": 1}
    ]


def test_demo_runs_one_task_of_each_service_on_fargate(demo_plan: Plan) -> None:
    services = demo_plan.of_type("aws:ecs/service:Service")
    assert len(services) == 4
    assert {s.inputs["desiredCount"] for s in services} == {1}
    for service in SERVICE_NAMES:
        assert task_definition(demo_plan, service)["requiresCompatibilities"] == ["FARGATE"]
    embeddings = task_definition(demo_plan, "embeddings")
    assert (embeddings["cpu"], embeddings["memory"]) == ("1024", "4096")


def test_demo_has_two_zones_no_nat_and_no_waf_alarms_or_scaling(demo_plan: Plan) -> None:
    counts = type_counts(demo_plan)
    assert "aws:ec2/natGateway:NatGateway" not in counts and "aws:ec2/eip:Eip" not in counts
    assert counts["aws:ec2/subnet:Subnet"] == 4
    [route] = demo_plan.of_type("aws:ec2/route:Route")
    assert route.inputs["gatewayId"] == "artwork-matcher-demo-net-igw-id", "private subnets have no route out"
    absent = ["aws:wafv2/webAcl:WebAcl", "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:appautoscaling/target:Target"]
    assert not set(absent) & set(counts)


def test_production_has_three_zones_nat_per_zone_tls_and_waf(production_plan: Plan) -> None:
    counts = type_counts(production_plan)
    assert counts["aws:ec2/natGateway:NatGateway"] == 3
    assert counts["aws:ec2/subnet:Subnet"] == 6
    listeners = {r.inputs["protocol"]: r for r in production_plan.of_type("aws:lb/listener:Listener")}
    assert listeners["HTTPS"].inputs["port"] == 443
    assert listeners["HTTP"].inputs["defaultActions"][0]["type"] == "redirect"
    assert counts["aws:wafv2/webAclAssociation:WebAclAssociation"] == 1


def test_gateway_gets_backend_urls_by_service_discovery_and_the_api_key_as_a_secret(any_plan: Plan) -> None:
    container = json.loads(str(task_definition(any_plan, "gateway")["containerDefinitions"]))[0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    namespace = f"{any_plan.project}-{any_plan.stack}.internal"
    for backend in ("embeddings", "search", "geometric"):
        assert env[f"GATEWAY_{backend.upper()}_URL"] == f"http://{backend}.{namespace}:{SERVICES[backend].port}"
    assert "GATEWAY_API_KEY" not in env
    assert env["GATEWAY_TRUSTED_PROXY_HOPS"] == "1", "rate limits key on the visitor behind the ALB, not the ALB"
    assert [s["name"] for s in container["secrets"]] == ["GATEWAY_API_KEY"]
    assert container["secrets"][0]["valueFrom"].startswith("arn:aws:secretsmanager:")


def test_search_and_geometric_mount_the_index_from_efs(any_plan: Plan) -> None:
    for service in ("search", "geometric"):
        task = task_definition(any_plan, service)
        container = json.loads(str(task["containerDefinitions"]))[0]
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env[f"{service.upper()}_SNAPSHOT_DIR"] == "/mnt/index/snapshot"
        assert container["mountPoints"][0]["containerPath"] == "/mnt/index"
        volume = task["volumes"][0]["efsVolumeConfiguration"]  # type: ignore[index]
        assert volume["transitEncryption"] == "ENABLED"


def subnet_tiers(plan: Plan) -> dict[str, str]:
    return {f"{r.name}-id": r.inputs["tags"]["tier"] for r in plan.of_type("aws:ec2/subnet:Subnet")}


def test_demo_tasks_run_in_public_subnets_with_public_ips_behind_caller_only_groups(demo_plan: Plan) -> None:
    tiers = subnet_tiers(demo_plan)
    ingress = demo_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    for service in demo_plan.of_type("aws:ecs/service:Service"):
        network = service.inputs["networkConfiguration"]
        assert network["assignPublicIp"] is True
        assert {tiers[s] for s in network["subnets"]} == {"public"}
        [group] = network["securityGroups"]
        own = [r for r in ingress if r.inputs["securityGroupId"] == group]
        assert own and all("cidrIpv4" not in r.inputs and "cidrIpv6" not in r.inputs for r in own), service.name
        assert all(r.inputs["referencedSecurityGroupId"].endswith(("-lb-sg-id", "-gateway-sg-id")) for r in own)


def test_production_keeps_tasks_in_private_subnets_behind_a_nat_per_zone(production_plan: Plan) -> None:
    tiers = subnet_tiers(production_plan)
    for service in production_plan.of_type("aws:ecs/service:Service"):
        network = service.inputs["networkConfiguration"]
        assert network["assignPublicIp"] is False
        assert {tiers[s] for s in network["subnets"]} == {"private"}
    routes = [r for r in production_plan.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert sorted(r.inputs["natGatewayId"] for r in routes) == [
        f"artwork-matcher-production-net-nat-{i}-id" for i in range(3)
    ]
