"""Estimated monthly cost of an offline plan from a dated eu-west-1 on-demand price table.

Prices are AWS list prices for eu-west-1 (Ireland), on-demand, in USD, as published on the date below; Fargate
Spot varies by the hour and is taken at about 67 % off. Usage-driven charges (NAT and LCU traffic, log volume,
stored bytes) use the assumptions in :data:`USAGE`. Free items (VPCs, subnets, IAM, security groups, the S3
gateway endpoint, the first two budgets) cost 0. The result is an estimate for planning, not a bill.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from components.plan.recorder import Plan, Registration

PRICES_AS_OF = "2025-06-01"
REGION = "eu-west-1"
HOURS_PER_MONTH = 730

PRICES: Mapping[str, float] = {
    "fargate_vcpu_hour": 0.04048,
    "fargate_gb_hour": 0.004445,
    "fargate_spot_vcpu_hour": 0.013358,
    "fargate_spot_gb_hour": 0.001467,
    "g4dn.xlarge_hour": 0.587,
    "g4dn.2xlarge_hour": 0.838,
    "ebs_gp3_gb_month": 0.088,
    "nat_gateway_hour": 0.048,
    "nat_gateway_gb": 0.048,
    "public_ipv4_hour": 0.005,
    "alb_hour": 0.0252,
    "alb_lcu_hour": 0.008,
    "interface_endpoint_az_hour": 0.011,
    "logs_ingest_gb": 0.57,
    "efs_standard_gb_month": 0.33,
    "efs_backup_warm_gb_month": 0.055,
    "s3_standard_gb_month": 0.023,
    "ecr_gb_month": 0.10,
    "secret_month": 0.40,
    "dashboard_month": 3.00,
    "alarm_metric_month": 0.10,
    "custom_metric_month": 0.30,
    "waf_acl_month": 5.00,
    "waf_rule_month": 1.00,
    "waf_million_requests": 0.60,
    "hosted_zone_month": 0.50,
    "kms_key_month": 1.00,
}
"""USD list prices, eu-west-1, on-demand, as of :data:`PRICES_AS_OF`."""

USAGE: Mapping[str, float] = {
    "nat_gb_per_gateway": 20,
    "alb_average_lcu": 0.25,
    "log_gb_per_service": 2,
    "efs_gb": 5,
    "efs_backup_daily_change_share": 0.2,
    "s3_gb": 10,
    "ecr_gb_per_repository": 2,
    "waf_million_requests": 5,
    "insights_metrics_per_cluster": 8,
    "insights_metrics_per_service": 10,
}
"""Monthly usage assumed for usage-priced items (a small collection, modest traffic)."""


@dataclasses.dataclass(frozen=True)
class CostLine:
    """One resource's estimated monthly cost and how it was reached."""

    registration: Registration
    monthly_usd: float
    basis: str


def _hours(price_key: str, count: float = 1) -> float:
    return PRICES[price_key] * HOURS_PER_MONTH * count


def _daytime_hours(plan: Plan, service_name: str) -> float:
    """Hours a day at the scheduled (doubled) minimum, from the scale-up/scale-down crons; 0 without a schedule."""
    hours = []
    for action in (r for r in plan.registrations if r.type == "aws:appautoscaling/scheduledAction:ScheduledAction"):
        if str(action.inputs.get("resourceId", "")).endswith(f"/{service_name}"):
            match = re.match(r"cron\(\d+ (\d+) ", str(action.inputs.get("schedule", "")))
            hours.append(int(match.group(1)) if match else 0)
    return float(max(hours) - min(hours)) if len(hours) == 2 else 0.0


def _ecs_service(plan: Plan, r: Registration) -> tuple[float, str]:
    siblings = [s for s in plan.registrations if s.parent_urn == r.parent_urn]
    task = next(s for s in siblings if s.type == "aws:ecs/taskDefinition:TaskDefinition")
    if "EC2" in task.inputs.get("requiresCompatibilities", []):
        return 0.0, "runs on the GPU node group (priced there)"
    vcpu, gb = int(task.inputs["cpu"]) / 1024, int(task.inputs["memory"]) / 1024
    tasks = float(r.inputs.get("desiredCount", 1))
    tasks += tasks * _daytime_hours(plan, str(r.inputs.get("name", ""))) / 24
    strategy = r.inputs.get("capacityProviderStrategies", [])
    weights = {s["capacityProvider"]: s.get("weight", 0) for s in strategy}
    base = sum(s.get("base", 0) for s in strategy if s["capacityProvider"] == "FARGATE")
    spot_share = weights.get("FARGATE_SPOT", 0) / max(1, sum(weights.values()))
    spot_tasks = max(0.0, tasks - base) * spot_share
    on_demand = tasks - spot_tasks
    cost = _hours("fargate_vcpu_hour", vcpu * on_demand) + _hours("fargate_gb_hour", gb * on_demand)
    cost += _hours("fargate_spot_vcpu_hour", vcpu * spot_tasks) + _hours("fargate_spot_gb_hour", gb * spot_tasks)
    basis = f"{tasks:.3g} task(s) x {vcpu:g} vCPU/{gb:g} GB, {spot_tasks:.2g} on Spot"
    if r.inputs.get("networkConfiguration", {}).get("assignPublicIp"):
        cost += _hours("public_ipv4_hour", tasks)
        basis += ", a public IPv4 each"
    return cost, basis


def _gpu_group(plan: Plan, r: Registration) -> tuple[float, str]:
    template = next(s for s in plan.registrations if s.type == "aws:ec2/launchTemplate:LaunchTemplate")
    instance = str(template.inputs["instanceType"])
    disk_gb = template.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"]
    nodes = float(r.inputs["minSize"])
    for service in (s for s in plan.registrations if s.type == "aws:ecs/service:Service"):
        providers = [p["capacityProvider"] for p in service.inputs.get("capacityProviderStrategies", [])]
        if any(not p.startswith("FARGATE") for p in providers):
            tasks = float(service.inputs.get("desiredCount", 1))
            tasks += tasks * _daytime_hours(plan, str(service.inputs.get("name", ""))) / 24
            nodes = max(nodes, tasks)
    cost = _hours(f"{instance}_hour", nodes) + PRICES["ebs_gp3_gb_month"] * disk_gb * nodes
    return cost, f"{nodes:.3g} x {instance} + {disk_gb:g} GB gp3 (one GPU task per node)"


def _alarm(plan: Plan, r: Registration) -> tuple[float, str]:
    metrics = sum(1 for q in r.inputs.get("metricQueries", []) if "metric" in q) or 1
    return PRICES["alarm_metric_month"] * metrics, f"{metrics} metric(s)"


def _cluster(plan: Plan, r: Registration) -> tuple[float, str]:
    enabled = any(s.get("value") == "enabled" for s in r.inputs.get("settings", []))
    if not enabled:
        return 0.0, "Container Insights off"
    services = len([s for s in plan.registrations if s.type == "aws:ecs/service:Service"])
    metrics = USAGE["insights_metrics_per_cluster"] + USAGE["insights_metrics_per_service"] * services
    return PRICES["custom_metric_month"] * metrics, f"Container Insights, ~{metrics:g} metrics"


def _endpoint(plan: Plan, r: Registration) -> tuple[float, str]:
    if r.inputs.get("vpcEndpointType") != "Interface":
        return 0.0, "gateway endpoint (free)"
    zones = len(r.inputs.get("subnetIds", []))
    return _hours("interface_endpoint_az_hour", zones), f"interface endpoint in {zones} zone(s)"


def _load_balancer(plan: Plan, r: Registration) -> tuple[float, str]:
    zones = len(r.inputs.get("subnets", []))
    cost = _hours("alb_hour") + _hours("alb_lcu_hour", USAGE["alb_average_lcu"]) + _hours("public_ipv4_hour", zones)
    return cost, f"ALB hours, {USAGE['alb_average_lcu']:g} LCU, {zones} public IPv4"


def _waf(plan: Plan, r: Registration) -> tuple[float, str]:
    rules = len(r.inputs.get("rules", []))
    cost = PRICES["waf_acl_month"] + PRICES["waf_rule_month"] * rules
    cost += PRICES["waf_million_requests"] * USAGE["waf_million_requests"]
    return cost, f"web ACL, {rules} rules, {USAGE['waf_million_requests']:g} M requests"


def _backup_plan(plan: Plan, r: Registration) -> tuple[float, str]:
    """A full first copy of the index plus the increments still retained (EFS backups copy changed files whole)."""
    retention = max(int(rule["lifecycle"]["deleteAfter"]) for rule in r.inputs["rules"])
    share = USAGE["efs_backup_daily_change_share"]
    stored_gb = USAGE["efs_gb"] * (1 + retention * share)
    cost = PRICES["efs_backup_warm_gb_month"] * stored_gb
    basis = f"~{stored_gb:g} GB warm backup ({USAGE['efs_gb']:g} GB, {share:.0%} rewritten a day, {retention} days)"
    return cost, basis


def _flat(value: float, basis: str) -> Callable[[Plan, Registration], tuple[float, str]]:
    return lambda plan, r: (value, basis)


RULES: Mapping[str, Callable[[Plan, Registration], tuple[float, str]]] = {
    "aws:ecs/service:Service": _ecs_service,
    "aws:autoscaling/group:Group": _gpu_group,
    "aws:ecs/cluster:Cluster": _cluster,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _endpoint,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:wafv2/webAcl:WebAcl": _waf,
    "aws:backup/plan:Plan": _backup_plan,
    "aws:ec2/natGateway:NatGateway": _flat(
        _hours("nat_gateway_hour") + PRICES["nat_gateway_gb"] * USAGE["nat_gb_per_gateway"],
        f"NAT hours + {USAGE['nat_gb_per_gateway']:g} GB processed",
    ),
    "aws:ec2/eip:Eip": _flat(_hours("public_ipv4_hour"), "public IPv4 address"),
    "aws:cloudwatch/logGroup:LogGroup": _flat(
        PRICES["logs_ingest_gb"] * USAGE["log_gb_per_service"], f"{USAGE['log_gb_per_service']:g} GB ingested"
    ),
    "aws:efs/fileSystem:FileSystem": _flat(
        PRICES["efs_standard_gb_month"] * USAGE["efs_gb"], f"{USAGE['efs_gb']:g} GB Standard"
    ),
    "aws:s3/bucket:Bucket": _flat(PRICES["s3_standard_gb_month"] * USAGE["s3_gb"], f"{USAGE['s3_gb']:g} GB Standard"),
    "aws:ecr/repository:Repository": _flat(
        PRICES["ecr_gb_month"] * USAGE["ecr_gb_per_repository"], f"{USAGE['ecr_gb_per_repository']:g} GB of images"
    ),
    "aws:secretsmanager/secret:Secret": _flat(PRICES["secret_month"], "one secret"),
    "aws:cloudwatch/dashboard:Dashboard": _flat(PRICES["dashboard_month"], "one dashboard"),
    "aws:kms/key:Key": _flat(PRICES["kms_key_month"], "customer-managed key (requests within the free tier)"),
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": _flat(
        PRICES["hosted_zone_month"], "private hosted zone"
    ),
}
"""How each priced resource type is estimated; every other type is free or negligible."""


def estimate(plan: Plan) -> list[CostLine]:
    """Price every registration of a plan that costs money (others are left out).

    Args:
        plan: An offline run's registrations.

    Returns:
        One line per priced resource, in registration order.
    """
    lines = []
    for r in plan.registrations:
        rule = RULES.get(r.type)
        if rule is not None:
            cost, basis = rule(plan, r)
            lines.append(CostLine(r, round(cost, 2), basis))
    return lines


def total(lines: list[CostLine]) -> float:
    """The monthly total of priced lines, USD."""
    return round(sum(line.monthly_usd for line in lines), 2)


def price_table() -> dict[str, Any]:
    """The table and its provenance, for ``infra plan --json`` and the README."""
    return {"as_of": PRICES_AS_OF, "region": REGION, "prices_usd": dict(PRICES), "usage": dict(USAGE)}
