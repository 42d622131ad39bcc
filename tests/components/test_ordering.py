"""Creation order over the whole recorded graph of both stacks: what ``pulumi up`` would wait for.

Echo mocks accept any order, but AWS does not: a service registered with a target group no listener uses, a task on
a capacity provider not yet associated, a mount before its mount target all fail the update. Each registration's
dependencies (explicit ``depends_on`` and output dependencies, as the engine receives them) are recorded by
:class:`components.plan.recorder.RecordingMonitor`; :meth:`components.plan.recorder.Plan.waits_for` follows them
transitively.
"""

from __future__ import annotations

import json

import pytest

from components.plan import recorder as offline
from components.plan.recorder import Plan, Registration

SERVICE = "aws:ecs/service:Service"
LISTENER = "aws:lb/listener:Listener"


@pytest.fixture(scope="module")
def demo_with_nat_plan() -> Plan:
    """The demo stack with a shared NAT gateway, so the NAT ordering is checked on a two-zone network too."""
    return offline.run("demo", overrides={"natGateways": "single"})


def by_name(plan: Plan, type_token: str) -> dict[str, Registration]:
    return {r.name: r for r in plan.of_type(type_token)}


def task_of(plan: Plan, service: Registration) -> Registration:
    return next(r for r in plan.of_type("aws:ecs/taskDefinition:TaskDefinition") if r.parent_urn == service.parent_urn)


# The recorder itself: without these, a recorder that drops dependencies would make every check below vacuous.


def test_the_recorder_sees_a_subnet_wait_for_its_vpc(any_plan: Plan) -> None:
    vpc = any_plan.of_type("aws:ec2/vpc:Vpc")[0]
    for subnet in any_plan.of_type("aws:ec2/subnet:Subnet"):
        assert vpc.urn in subnet.dependencies
        assert subnet.property_dependencies["vpcId"] == {vpc.urn}
        assert any_plan.waits_for(subnet, vpc)
        assert not any_plan.waits_for(vpc, subnet)


def test_the_recorder_follows_dependencies_transitively_and_records_explicit_depends_on(run_component) -> None:
    import pulumi
    import pulumi_aws as aws

    def body() -> None:
        vpc = aws.ec2.Vpc("v", cidr_block="10.0.0.0/16")
        subnet = aws.ec2.Subnet("s", vpc_id=vpc.id, cidr_block="10.0.0.0/20")
        table = aws.ec2.RouteTable("t", vpc_id="vpc-x", opts=pulumi.ResourceOptions(depends_on=[subnet]))
        aws.ec2.RouteTableAssociation("a", route_table_id=table.id, subnet_id="subnet-x")

    plan = run_component(body)
    vpc, subnet, table, association = (plan.named(n) for n in ("v", "s", "t", "a"))
    assert table.dependencies == {subnet.urn} and not table.property_dependencies["vpcId"]
    assert plan.upstream(association) == {table.urn, subnet.urn, vpc.urn}
    assert not plan.waits_for(subnet, table)


# The invariants, on both stacks.


def test_every_service_waits_for_the_clusters_capacity_provider_association(any_plan: Plan) -> None:
    [association] = any_plan.of_type("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    services = any_plan.of_type(SERVICE)
    assert len(services) == 4
    for service in services:
        assert any_plan.waits_for(service, association), service.name


def test_every_service_waits_for_its_egress_rule_and_the_efs_rule_admitting_it(any_plan: Plan) -> None:
    rules = any_plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    rules += any_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    for service in any_plan.of_type(SERVICE):
        group = service.name.removesuffix("-service") + "-sg-id"
        own = [r for r in rules if group in (r.inputs["securityGroupId"], r.inputs.get("referencedSecurityGroupId"))]
        needed = [r for r in own if r.name.endswith(("-egress", "-to-efs"))]
        assert len(needed) == (2 if task_of(any_plan, service).inputs.get("volumes") else 1), service.name
        for rule in needed:
            assert any_plan.waits_for(service, rule), (service.name, rule.name)


def test_a_service_on_the_gpu_group_waits_for_its_capacity_provider(production_plan: Plan) -> None:
    [provider] = production_plan.of_type("aws:ecs/capacityProvider:CapacityProvider")
    embeddings = production_plan.named("artwork-matcher-production-embeddings-service")
    assert production_plan.waits_for(embeddings, provider)


def test_services_that_mount_efs_wait_for_every_mount_target(any_plan: Plan) -> None:
    mount_targets = any_plan.of_type("aws:efs/mountTarget:MountTarget")
    mounting = [s for s in any_plan.of_type(SERVICE) if task_of(any_plan, s).inputs.get("volumes")]
    assert len(mounting) == 3
    for service in mounting:
        for target in mount_targets:
            assert any_plan.waits_for(service, target), (service.name, target.name)


def forwarding_listeners(plan: Plan, target_group_arn: str) -> list[Registration]:
    return [
        listener
        for listener in plan.of_type(LISTENER)
        if any(a.get("targetGroupArn") == target_group_arn for a in listener.inputs["defaultActions"])
    ]


def test_services_behind_a_target_group_wait_for_every_listener_forwarding_to_it(any_plan: Plan) -> None:
    attached = [s for s in any_plan.of_type(SERVICE) if s.inputs.get("loadBalancers")]
    assert [s.name.rsplit("-", 2)[-2] for s in attached] == ["gateway"]
    for service in attached:
        for balancer in service.inputs["loadBalancers"]:
            listeners = forwarding_listeners(any_plan, balancer["targetGroupArn"])
            assert listeners, "no listener forwards to the gateway's target group"
            for listener in listeners:
                assert any_plan.waits_for(service, listener), (service.name, listener.name)


def test_request_count_scaling_waits_for_the_listener_that_attaches_its_target_group(production_plan: Plan) -> None:
    policy = production_plan.named("artwork-matcher-production-gateway-scaling-requests")
    [https] = [r for r in production_plan.of_type(LISTENER) if r.inputs["protocol"] == "HTTPS"]
    assert production_plan.waits_for(policy, https)


@pytest.mark.parametrize("stack", ["demo", "production"])
def test_nat_gateways_wait_for_the_internet_gateway(
    stack: str, demo_with_nat_plan: Plan, production_plan: Plan
) -> None:
    plan = demo_with_nat_plan if stack == "demo" else production_plan
    [igw] = plan.of_type("aws:ec2/internetGateway:InternetGateway")
    for nat in plan.of_type("aws:ec2/natGateway:NatGateway"):
        assert plan.waits_for(nat, igw), nat.name


def test_task_definitions_wait_for_the_images_they_run_by_digest(any_plan: Plan) -> None:
    images = by_name(any_plan, "docker:index/image:Image")
    for task in any_plan.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        [container] = json.loads(task.inputs["containerDefinitions"])
        service = container["name"]
        image = images[f"{any_plan.project}-{any_plan.stack}-images-{service}-image"]
        assert any_plan.waits_for(task, image), task.name
        assert "@sha256:" in container["image"]


def test_production_services_make_up_wait_for_a_steady_state(production_plan: Plan) -> None:
    services = production_plan.of_type(SERVICE)
    assert len(services) == 4
    assert {s.inputs["waitForSteadyState"] for s in services} == {True}


def test_production_certificate_is_validated_through_records_the_program_creates(production_plan: Plan) -> None:
    [certificate] = production_plan.of_type("aws:acm/certificate:Certificate")
    [validation] = production_plan.of_type("aws:acm/certificateValidation:CertificateValidation")
    records = production_plan.of_type("aws:route53/record:Record")
    validation_records = [r for r in records if production_plan.waits_for(r, certificate)]
    assert validation_records, "no Route 53 record is made from the certificate's validation options"
    for record in validation_records:
        assert production_plan.waits_for(validation, record)
        assert record.inputs["type"] == "CNAME" and record.inputs["records"] == ["_y.acm-validations.aws."]
    fqdns = sorted(r.inputs["name"].rstrip(".") for r in validation_records)
    assert sorted(validation.inputs["validationRecordFqdns"]) == fqdns
    [https] = [r for r in production_plan.of_type(LISTENER) if r.inputs["protocol"] == "HTTPS"]
    assert production_plan.waits_for(https, validation)


def test_production_points_its_domain_at_the_load_balancer(production_plan: Plan) -> None:
    [alb] = production_plan.of_type("aws:lb/loadBalancer:LoadBalancer")
    [alias] = [r for r in production_plan.of_type("aws:route53/record:Record") if r.inputs["type"] == "A"]
    assert alias.inputs["name"] == "artworks.example.org"
    assert alias.inputs["aliases"] == [{"name": "alb.test", "zoneId": "Z32O12XQLNTSW2", "evaluateTargetHealth": True}]
    assert production_plan.waits_for(alias, alb)
