"""``artwork-matcher infra plan``: the AWS deployment of a stack, offline, with an estimated monthly cost.

``infra verify`` (the smoke test of a running deployment) lives in :mod:`tools.cli.verify`.

The Pulumi program runs under mocks (:mod:`components.plan.recorder`), so no cloud account, Pulumi CLI or network is
needed. Only the ``infra`` dependency group is imported, and only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from typing import Any

STACKS = ("demo", "production")

KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone"),
    "aws:ecs/cluster:Cluster": ("name", "settings"),
    "aws:ecs/taskDefinition:TaskDefinition": ("cpu", "memory", "requiresCompatibilities"),
    "aws:ecs/service:Service": ("desiredCount", "capacityProviderStrategies"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:appautoscaling/target:Target": ("minCapacity", "maxCapacity"),
    "aws:appautoscaling/policy:Policy": ("targetTrackingScalingPolicyConfiguration",),
    "aws:appautoscaling/scheduledAction:ScheduledAction": ("schedule", "scalableTargetAction"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("fromPort", "cidrIpv4", "referencedSecurityGroupId"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("instanceType", "metadataOptions"),
    "aws:autoscaling/group:Group": ("minSize", "maxSize"),
    "aws:lb/listener:Listener": ("port", "protocol"),
    "aws:lb/targetGroup:TargetGroup": ("port", "healthCheck"),
    "aws:ecr/repository:Repository": ("name",),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("serviceName", "vpcEndpointType"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("alarmDescription",),
    "aws:budgets/budget:Budget": ("limitAmount",),
    "aws:efs/fileSystem:FileSystem": ("encrypted",),
    "aws:backup/plan:Plan": ("rules",),
    "aws:backup/selection:Selection": ("resources",),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("rules",),
}
"""The inputs shown for each resource type (others show none)."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``infra plan --stack demo|production [--json]`` and ``infra verify --url URL`` (see
    :mod:`tools.cli.verify`) on the main command's subparsers."""
    from tools.cli import verify

    infra = subparsers.add_parser("infra", help="AWS deployment (Pulumi): offline plan and cost, post-deploy check")
    infra_sub = infra.add_subparsers(dest="infra_command", required=True)
    plan = infra_sub.add_parser("plan", help="list the resources a stack would create, with an estimated monthly cost")
    plan.add_argument("--stack", choices=STACKS, required=True, help="which Pulumi stack's configuration to use")
    plan.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack config value for this plan only (repeatable), e.g. --config hostedZoneId=",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")
    plan.set_defaults(func=run_plan)
    verify.add_parser(infra_sub)


def _summary(type_token: str, inputs: dict[str, Any]) -> str:
    shown = {k: inputs[k] for k in KEY_SETTINGS.get(type_token, ()) if inputs.get(k) not in (None, "", [], {})}
    return ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in shown.items())


def _overrides(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--config takes KEY=VALUE, got {pair!r}")
        found[key] = value
    return found


def build_report(stack: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the stack's program offline and return the plan: resources by component, costs, total and warnings."""
    from components.plan import pricing
    from components.plan import recorder as offline

    plan = offline.run(stack, overrides=overrides)
    costs = {line.registration.urn: line for line in pricing.estimate(plan)}
    by_urn = {r.urn: r for r in plan.registrations}

    def top_component(urn: str) -> str:
        node = by_urn[urn]
        while node.parent_urn in by_urn:
            node = by_urn[node.parent_urn]
        return node.name

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in plan.registrations:
        if not r.custom or r.type.startswith("pulumi:providers:"):
            continue
        line = costs.get(r.urn)
        groups[top_component(r.urn)].append(
            {
                "type": r.type,
                "name": r.name,
                "settings": _summary(r.type, dict(r.inputs)),
                "monthly_usd": line.monthly_usd if line else 0.0,
                "cost_basis": line.basis if line else "",
            }
        )
    return {
        "project": plan.project,
        "stack": stack,
        "resource_count": sum(len(v) for v in groups.values()),
        "components": dict(groups),
        "monthly_total_usd": pricing.total(list(costs.values())),
        "prices": pricing.price_table(),
        "exports": plan.exports,
        "warnings": list(plan.warnings),
    }


def _print_table(report: dict[str, Any]) -> None:
    prices = report["prices"]
    print(f"Plan for stack {report['stack']!r} ({report['resource_count']} resources, offline, mocked cloud)\n")
    for component, resources in report["components"].items():
        subtotal = sum(r["monthly_usd"] for r in resources)
        print(f"{component}  (${subtotal:,.2f}/month)")
        for r in resources:
            cost = f"${r['monthly_usd']:>9,.2f}" if r["monthly_usd"] else " " * 10
            short_type = r["type"].split(":")[-1]
            print(f"  {cost}  {short_type:<34} {r['name']}")
            details = "; ".join(filter(None, [r["settings"], r["cost_basis"]]))
            if details:
                print(f"  {'':10}    {details}")
        print()
    print(
        f"Estimated total: ${report['monthly_total_usd']:,.2f}/month "
        f"({prices['region']} on-demand list prices as of {prices['as_of']}; see components/plan/pricing.py)"
    )
    for warning in report["warnings"]:
        print(f"\nWARNING (pulumi up prints this too): {warning}")


def run_plan(args: argparse.Namespace) -> int:
    """Print the offline plan and cost of ``args.stack``; returns the exit code."""
    started = time.perf_counter()
    try:
        report = build_report(args.stack, _overrides(args.config))
    except (ValueError, FileNotFoundError) as exc:
        print(f"infra plan: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_table(report)
        print(f"(planned in {time.perf_counter() - started:.1f} s)")
    return 0
