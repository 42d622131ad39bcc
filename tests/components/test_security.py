"""Security invariants over every resource each stack's program registers."""

from __future__ import annotations

import json

import pytest

from components.plan.recorder import Plan, Registration
from services.common.topology import facts

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
OPEN = {"0.0.0.0/0", "::/0"}


def component_of(plan: Plan, r: Registration) -> Registration:
    return next(p for p in plan.registrations if p.urn == r.parent_urn)


def test_a_missing_resource_type_fails_loudly_instead_of_passing_vacuously(demo_plan: Plan) -> None:
    with pytest.raises(AssertionError, match="no aws:ec2/instance:Instance was registered"):
        demo_plan.of_type("aws:ec2/instance:Instance")


def test_only_the_load_balancer_admits_the_internet_and_only_on_80_and_443(any_plan: Plan) -> None:
    open_rules = [r for r in any_plan.of_type(INGRESS) if r.inputs.get("cidrIpv4") in OPEN or r.inputs.get("cidrIpv6")]
    assert open_rules
    for rule in open_rules:
        assert component_of(any_plan, rule).type == "artwork-matcher:alb:LoadBalancer", rule.name
        assert rule.inputs["fromPort"] == rule.inputs["toPort"] and rule.inputs["fromPort"] in (80, 443), rule.name
    expected = {80, 443} if any_plan.stack == "production" else {80}
    assert {r.inputs["fromPort"] for r in open_rules} == expected
    for group in any_plan.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert not group.inputs.get("ingress"), f"{group.name} has inline ingress rules"


def test_each_service_admits_only_its_callers_on_its_own_port(any_plan: Plan) -> None:
    prefix = f"{any_plan.project}-{any_plan.stack}"
    callers = {
        "gateway": f"{prefix}-lb-sg-id",
        "embeddings": f"{prefix}-gateway-sg-id",
        "search": f"{prefix}-gateway-sg-id",
        "geometric": f"{prefix}-gateway-sg-id",
    }
    for service, caller in callers.items():
        own_group = f"{prefix}-{service}-sg-id"
        rules = [r for r in any_plan.of_type(INGRESS) if r.inputs["securityGroupId"] == own_group]
        assert len(rules) == 1, service
        assert rules[0].inputs["referencedSecurityGroupId"] == caller
        assert "cidrIpv4" not in rules[0].inputs
        assert (rules[0].inputs["fromPort"], rules[0].inputs["toPort"]) == (facts(service).port,) * 2


def test_efs_admits_nfs_only_from_the_services_that_mount_it(any_plan: Plan) -> None:
    prefix = f"{any_plan.project}-{any_plan.stack}"
    rules = [r for r in any_plan.of_type(INGRESS) if r.inputs["securityGroupId"] == f"{prefix}-data-efs-sg-id"]
    sources = sorted(r.inputs["referencedSecurityGroupId"] for r in rules)
    assert sources == sorted(f"{prefix}-{s}-sg-id" for s in ("gateway", "search", "geometric"))
    assert {(r.inputs["fromPort"], r.inputs["toPort"]) for r in rules} == {(2049, 2049)}


def test_every_bucket_blocks_public_access_and_is_encrypted_and_versioned(any_plan: Plan) -> None:
    buckets = {f"{b.name}-id" for b in any_plan.of_type("aws:s3/bucket:Bucket")}
    blocks = any_plan.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert {b.inputs["bucket"] for b in blocks if all(b.inputs[f] is True for f in flags)} == buckets
    encryption = any_plan.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert {e.inputs["bucket"] for e in encryption} == buckets
    for e in encryption:
        algorithm = e.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        assert algorithm in ("aws:kms", "AES256")
    versioning = any_plan.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert {v.inputs["bucket"] for v in versioning if v.inputs["versioningConfiguration"]["status"] == "Enabled"} == (
        buckets
    )


def test_every_file_system_is_encrypted(any_plan: Plan) -> None:
    assert all(fs.inputs["encrypted"] is True for fs in any_plan.of_type("aws:efs/fileSystem:FileSystem"))


def test_gpu_nodes_require_imdsv2_and_encrypt_their_root_volume(production_plan: Plan) -> None:
    for template in production_plan.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"


def test_every_task_runs_an_image_pinned_by_digest(any_plan: Plan) -> None:
    tasks = any_plan.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert len(tasks) == 4
    for task in tasks:
        for container in json.loads(task.inputs["containerDefinitions"]):
            assert "@sha256:" in container["image"], task.name
            assert not container["image"].endswith(":latest")


def test_no_iam_policy_allows_every_action_or_every_resource_wildcard(any_plan: Plan) -> None:
    documents = [
        json.loads(r.inputs["policy"])
        for r in any_plan.registrations
        if r.type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")
    ]
    assert documents
    for document in documents:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
            assert "*" not in resources, statement


def test_task_roles_reach_only_the_projects_bucket(any_plan: Plan) -> None:
    bucket_arns = {f"arn:aws:s3:eu-west-1:123456789012:{b.name}" for b in any_plan.of_type("aws:s3/bucket:Bucket")}
    policies = [r for r in any_plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-task-policy")]
    assert len(policies) == 4
    for policy in policies:
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            if any(a.startswith("s3:") for a in statement["Action"]):
                assert {r.removesuffix("/*") for r in statement["Resource"]} <= bucket_arns


def test_alarm_topic_uses_a_key_of_its_own_that_cloudwatch_and_budgets_may_use(any_plan: Plan) -> None:
    [topic] = any_plan.of_type("aws:sns/topic:Topic")
    [key] = any_plan.of_type("aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == f"arn:aws:kms:eu-west-1:123456789012:{key.name}"
    assert not topic.inputs["kmsMasterKeyId"].startswith("alias/aws/")
    assert any_plan.waits_for(topic, key)
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    [publishers] = [s for s in statements if "Service" in s["Principal"]]
    assert sorted(publishers["Principal"]["Service"]) == ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"]
    assert sorted(publishers["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    [admin] = [s for s in statements if "AWS" in s["Principal"]]
    assert admin["Principal"]["AWS"] == "arn:aws:iam::123456789012:root"
    budget_topics = [
        n["subscriberSnsTopicArns"] for n in any_plan.of_type("aws:budgets/budget:Budget")[0].inputs["notifications"]
    ]
    assert all(arns == [f"arn:aws:sns:eu-west-1:123456789012:{topic.name}"] for arns in budget_topics)


def owner_of(plan: Plan, r: Registration) -> str:
    """The service a resource belongs to, from its top-level component (``<prefix>-search-scaling`` -> search)."""
    by_urn = {x.urn: x for x in plan.registrations}
    node = r
    while node.parent_urn in by_urn:
        node = by_urn[node.parent_urn]
    part = node.name.removeprefix(f"{plan.project}-{plan.stack}-").removesuffix("-scaling")
    return {"api-key": "gateway"}.get(part, part if part in SERVICES else "shared")


SERVICES = ("gateway", "embeddings", "search", "geometric")


def test_every_aws_resource_gets_project_stack_and_service_tags_from_its_provider(any_plan: Plan) -> None:
    providers = {f"{r.urn}::{r.name}-id": r for r in any_plan.registrations if r.type == "pulumi:providers:aws"}
    assert len(providers) == 5
    resources = [r for r in any_plan.registrations if r.custom and r.type.startswith("aws:")]
    owners = set()
    for r in resources:
        assert r.provider in providers, f"{r.name} uses the default provider, without default tags"
        provider = providers[r.provider]
        assert provider.inputs["region"] == "eu-west-1"
        tags = json.loads(provider.inputs["defaultTags"])["tags"]
        owner = owner_of(any_plan, r)
        owners.add(owner)
        assert tags == {"project": "artwork-matcher", "stack": f"artwork-matcher-{any_plan.stack}", "service": owner}
    assert owners == {"shared", *SERVICES}


def test_the_budget_counts_only_this_stacks_tagged_cost(any_plan: Plan) -> None:
    [budget] = any_plan.of_type("aws:budgets/budget:Budget")
    assert budget.inputs["costFilters"] == [
        {"name": "TagKeyValue", "values": [f"user:stack$artwork-matcher-{any_plan.stack}"]}
    ]


def test_gpu_nodes_and_their_volumes_carry_the_stacks_tags_though_an_auto_scaling_group_launches_them(
    production_plan: Plan,
) -> None:
    [template] = production_plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    expected = {"project": "artwork-matcher", "stack": "artwork-matcher-production", "service": "embeddings"}
    specs = {spec["resourceType"]: spec["tags"] for spec in template.inputs["tagSpecifications"]}
    assert specs == {"instance": expected, "volume": expected}
