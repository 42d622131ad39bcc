"""Load balancer, WAF, images, storage, monitoring, budget and secret components: exact children and key inputs."""

from __future__ import annotations

import json

import pytest

from components.alb import TLS_POLICY, LoadBalancer, LoadBalancerArgs
from components.budget import CostBudget, CostBudgetArgs
from components.images import ContainerImages, ContainerImagesArgs, ImageSpec
from components.monitoring import Monitoring, MonitoringArgs
from components.secrets import AppSecret, AppSecretArgs
from components.storage import Storage, StorageArgs
from components.waf import MANAGED_RULE_GROUPS, WebAcl, WebAclArgs
from services.common.topology import SERVICES

GATEWAY = SERVICES["gateway"]


def test_http_load_balancer_forwards_port_80_to_a_health_checked_ip_target_group(run_component) -> None:
    plan = run_component(
        lambda: LoadBalancer("lb", LoadBalancerArgs("vpc-1", "10.0.0.0/16", ["p1", "p2"], GATEWAY.port))
    )
    component = plan.of_type("artwork-matcher:alb:LoadBalancer")[0]
    assert plan.child_types(component) == sorted(
        [
            "SecurityGroup",
            "SecurityGroupIngressRule",
            "SecurityGroupEgressRule",
            "LoadBalancer",
            "TargetGroup",
            "Listener",
        ]
    )
    alb = plan.named("lb-alb").inputs
    assert (alb["internal"], alb["loadBalancerType"], alb["dropInvalidHeaderFields"]) == (False, "application", True)
    group = plan.named("lb-tg").inputs
    assert (group["port"], group["targetType"], group["healthCheck"]["path"]) == (
        GATEWAY.port,
        "ip",
        GATEWAY.health_path,
    )
    assert plan.named("lb-http").inputs["defaultActions"][0]["type"] == "forward"
    assert plan.named("lb-out-vpc").inputs["cidrIpv4"] == "10.0.0.0/16"


def test_https_load_balancer_validates_its_certificate_in_the_zone_and_aliases_the_domain(run_component) -> None:
    args = LoadBalancerArgs(
        "vpc-1",
        "10.0.0.0/16",
        ["p1", "p2"],
        GATEWAY.port,
        enable_https=True,
        domain_name="a.example",
        hosted_zone_id="Z1",
    )
    plan = run_component(lambda: LoadBalancer("lb", args))
    assert plan.named("lb-cert").inputs == {"domainName": "a.example", "validationMethod": "DNS"}
    record = plan.named("lb-cert-validation-record").inputs
    assert (record["zoneId"], record["name"], record["type"]) == ("Z1", "_x.example.org.", "CNAME")
    assert record["records"] == ["_y.acm-validations.aws."]
    assert plan.named("lb-cert-validation").inputs["validationRecordFqdns"] == ["_x.example.org"]
    alias = plan.named("lb-alias").inputs
    assert (alias["zoneId"], alias["name"], alias["type"]) == ("Z1", "a.example", "A")
    assert alias["aliases"][0]["name"] == "alb.test"
    redirect = plan.named("lb-http").inputs["defaultActions"][0]
    assert redirect["redirect"] == {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}
    https = plan.named("lb-https").inputs
    assert (https["port"], https["sslPolicy"]) == (443, TLS_POLICY)
    assert https["certificateArn"] == "arn:aws:acm:eu-west-1:123456789012:lb-cert"
    assert sorted(
        r.inputs["fromPort"] for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    ) == [80, 443]


def test_https_with_an_issued_certificate_uses_it_and_requests_nothing(run_component) -> None:
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    args = LoadBalancerArgs("vpc-1", "10.0.0.0/16", ["p1"], GATEWAY.port, True, "a.example", certificate_arn=arn)
    plan = run_component(lambda: LoadBalancer("lb", args))
    assert plan.named("lb-https").inputs["certificateArn"] == arn
    assert not [r for r in plan.registrations if r.type.startswith(("aws:acm/", "aws:route53/"))]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "needs hosted_zone_id .* or certificate_arn"),
        ({"hosted_zone_id": "Z1", "certificate_arn": "arn:c"}, "hosted_zone_id and certificate_arn conflict"),
    ],
)
def test_https_that_could_never_get_a_certificate_is_rejected(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadBalancerArgs("vpc-1", "10.0.0.0/16", ["p1"], GATEWAY.port, True, "a.example", **extra)


def test_https_without_a_domain_name_is_rejected_naming_both() -> None:
    with pytest.raises(ValueError, match="enable_https and domain_name"):
        LoadBalancerArgs("vpc-1", "10.0.0.0/16", ["p1"], GATEWAY.port, enable_https=True)


def test_web_acl_evaluates_managed_groups_then_blocks_by_rate_and_attaches_to_the_alb(run_component) -> None:
    plan = run_component(lambda: WebAcl("waf", WebAclArgs("arn:alb", max_body_bytes=10_000_000, rate_limit=1500)))
    acl = plan.named("waf-acl").inputs
    assert acl["scope"] == "REGIONAL" and acl["defaultAction"] == {"allow": {}}
    names = [rule["name"] for rule in sorted(acl["rules"], key=lambda r: r["priority"])]
    assert names == [*MANAGED_RULE_GROUPS, "body-over-8kb-outside-uploads", "body-over-gateway-limit", "rate-per-ip"]
    rate = acl["rules"][-1]
    assert rate["statement"]["rateBasedStatement"] == {"limit": 1500, "aggregateKeyType": "IP"}
    assert rate["action"] == {"block": {}}
    assert plan.named("waf-association").inputs["resourceArn"] == "arn:alb"


def test_images_are_built_from_each_service_dockerfile_and_build_args_pushed_with_ecr_credentials_by_digest(
    run_component,
) -> None:
    args = ContainerImagesArgs("p", [ImageSpec("gateway"), ImageSpec("embeddings", target="gpu")])
    holder: dict[str, ContainerImages] = {}
    plan = run_component(lambda: holder.setdefault("c", ContainerImages("img", args)))
    component = plan.of_type("artwork-matcher:images:ContainerImages")[0]
    assert plan.child_types(component) == sorted(["Repository", "LifecyclePolicy", "Image"] * 2)
    repo = plan.named("img-gateway").inputs
    assert repo["name"] == "p/gateway" and repo["imageScanningConfiguration"] == {"scanOnPush": True}
    rules = json.loads(plan.named("img-gateway-lifecycle").inputs["policy"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["tagged"]
    image = plan.named("img-embeddings-image").inputs
    assert image["build"]["dockerfile"] == "./services/embeddings/Dockerfile"
    assert image["build"]["target"] == "gpu"
    assert image["build"]["args"] == SERVICES["embeddings"].build_args()
    gateway = plan.named("img-gateway-image").inputs["build"]
    assert (gateway["dockerfile"], gateway["args"]) == ("./services/Dockerfile", GATEWAY.build_args())
    assert "target" not in gateway
    assert image["registry"]["username"] == "AWS" and image["registry"]["password"] == "offline-token"


def test_prebuilt_images_replace_the_build_and_must_be_pinned_by_digest(run_component) -> None:
    ref = "123.dkr.ecr.eu-west-1.amazonaws.com/p/gateway@sha256:" + "a" * 64
    args = ContainerImagesArgs("p", [ImageSpec("gateway", prebuilt=ref)], build=False)
    plan = run_component(lambda: ContainerImages("img", args))
    assert not [r for r in plan.registrations if r.type == "docker:index/image:Image"]
    with pytest.raises(ValueError, match="pinned by digest"):
        ContainerImagesArgs("p", [ImageSpec("gateway", prebuilt="repo:latest")], build=False)
    with pytest.raises(ValueError, match="build=True conflicts with prebuilt"):
        ContainerImagesArgs("p", [ImageSpec("gateway", prebuilt=ref)], build=True)


def test_storage_creates_a_private_encrypted_versioned_bucket_and_an_encrypted_efs_with_access_point(
    run_component,
) -> None:
    plan = run_component(lambda: Storage("st", StorageArgs("bucket", "vpc-1", ["s1", "s2", "s3"])))
    component = plan.of_type("artwork-matcher:storage:Storage")[0]
    assert plan.child_types(component) == sorted(
        ["Bucket", "BucketPublicAccessBlock", "BucketOwnershipControls", "BucketVersioning"]
        + ["BucketLifecycleConfiguration"]
        + ["BucketServerSideEncryptionConfiguration", "FileSystem", "SecurityGroup", "AccessPoint"]
        + ["MountTarget"] * 3
    )
    assert plan.named("st-index").inputs["encrypted"] is True
    access_point = plan.named("st-index-ap").inputs
    assert access_point["rootDirectory"]["path"] == "/index"
    assert access_point["posixUser"] == {"uid": 1000, "gid": 1000}
    assert not plan.named("st-efs-sg").inputs.get("ingress")


def test_monitoring_alarms_on_p99_latency_5xx_rate_and_missing_tasks(run_component) -> None:
    args = MonitoringArgs("app/lb/1", "cluster", {"gateway": "c-gateway", "search": "c-search"}, "eu-west-1")
    plan = run_component(lambda: Monitoring("mon", args))
    latency = plan.named("mon-p99-latency").inputs
    assert (latency["extendedStatistic"], latency["threshold"], latency["period"]) == ("p99", 2.0, 60)
    assert latency["evaluationPeriods"] == 3
    errors = plan.named("mon-5xx-rate").inputs
    assert (errors["threshold"], errors["evaluationPeriods"]) == (5.0, 2)
    assert [q["id"] for q in errors["metricQueries"] if q.get("returnData")] == ["rate"]
    tasks = plan.named("mon-search-tasks-below-desired").inputs
    assert tasks["metricQueries"][-1]["expression"] == "desired - running"
    for alarm in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        assert alarm.inputs["alarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:mon-alarms"]
    widgets = json.loads(plan.named("mon-dashboard").inputs["dashboardBody"])["widgets"]
    assert [w["properties"]["title"] for w in widgets] == ["ALB p99 latency (s)", "Requests", "CPU per service (%)"]
    assert len(widgets[2]["properties"]["metrics"]) == 2


def test_monitoring_without_alarms_keeps_topic_and_dashboard_and_subscribes_email(run_component) -> None:
    args = MonitoringArgs("app/lb/1", "c", {"gateway": "g"}, "eu-west-1", enable_alarms=False, alarm_email="o@x.org")
    plan = run_component(lambda: Monitoring("mon", args))
    component = plan.of_type("artwork-matcher:monitoring:Monitoring")[0]
    assert plan.child_types(component) == ["Alias", "Dashboard", "Key", "Topic", "TopicPolicy", "TopicSubscription"]
    assert plan.named("mon-alarms-email").inputs["endpoint"] == "o@x.org"


def test_budget_notifies_the_topic_at_80_percent_actual_and_100_percent_forecast(run_component) -> None:
    plan = run_component(lambda: CostBudget("b", CostBudgetArgs(150, "arn:topic", ("stack", "p-demo"))))
    budget = plan.named("b-monthly").inputs
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": ["user:stack$p-demo"]}]
    assert (budget["budgetType"], budget["limitAmount"], budget["timeUnit"]) == ("COST", "150", "MONTHLY")
    kinds = {n["notificationType"]: n["threshold"] for n in budget["notifications"]}
    assert kinds == {"ACTUAL": 80, "FORECASTED": 100}
    assert all(n["subscriberSnsTopicArns"] == ["arn:topic"] for n in budget["notifications"])


def test_app_secret_stores_the_value_as_a_secret_version(run_component) -> None:
    plan = run_component(lambda: AppSecret("k", AppSecretArgs("s3cret")))
    component = plan.of_type("artwork-matcher:secrets:AppSecret")[0]
    assert plan.child_types(component) == ["Secret", "SecretVersion"]
    assert plan.named("k-version").inputs["secretId"] == "k-secret-id"
