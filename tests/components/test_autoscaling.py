"""Autoscaling equals the ARCHITECTURE.md table; scheduled actions exist only in production."""

from __future__ import annotations

from typing import Any

import pytest

from components.autoscaling import ScheduledScaling, ServiceAutoscaling, ServiceAutoscalingArgs, scheduled_capacities
from components.plan.recorder import Plan

# service: (min, max, cpu %, memory %, scale-out s, scale-in s), from ARCHITECTURE.md "Autoscaling".
DESIGN = {
    "gateway": (2, 20, 60, 70, 60, 300),
    "embeddings": (1, 10, 70, 80, 120, 600),
    "search": (2, 8, 80, 70, 180, 600),
    "geometric": (1, 20, 70, 80, 30, 180),
}


def policies(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    prefix = f"{plan.project}-{plan.stack}-{service}-scaling"
    found = [p for p in plan.of_type("aws:appautoscaling/policy:Policy") if p.name.startswith(prefix)]
    return {
        p.name.removeprefix(prefix + "-"): dict(p.inputs["targetTrackingScalingPolicyConfiguration"]) for p in found
    }


@pytest.mark.parametrize("service", sorted(DESIGN))
def test_each_service_scales_between_the_design_bounds_on_the_design_targets(
    production_plan: Plan, service: str
) -> None:
    low, high, cpu, memory, out, cooldown_in = DESIGN[service]
    target = production_plan.named(f"artwork-matcher-production-{service}-scaling-target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (low, high)
    assert target.inputs["resourceId"] == f"service/artwork-matcher-production/artwork-matcher-production-{service}"
    found = policies(production_plan, service)
    assert found["cpu"]["targetValue"] == cpu
    assert found["cpu"]["predefinedMetricSpecification"]["predefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert found["memory"]["targetValue"] == memory
    for policy in found.values():
        assert (policy["scaleOutCooldown"], policy["scaleInCooldown"]) == (out, cooldown_in)
    assert ("requests" in found) is (service == "gateway")


def test_gateway_tracks_500_alb_requests_per_target_of_its_own_target_group(production_plan: Plan) -> None:
    requests = policies(production_plan, "gateway")["requests"]
    metric = requests["predefinedMetricSpecification"]
    assert requests["targetValue"] == 500
    assert metric["predefinedMetricType"] == "ALBRequestCountPerTarget"
    assert metric["resourceLabel"] == (
        "app/artwork-matcher-production-lb-alb/0123456789/targetgroup/artwork-matcher-production-lb-tg/0123456789"
    )


def test_production_doubles_the_minimum_at_eight_and_halves_the_maximum_at_nineteen(production_plan: Plan) -> None:
    actions = production_plan.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")
    assert len(actions) == 8
    for service, (low, high, *_) in DESIGN.items():
        prefix = f"artwork-matcher-production-{service}-scaling"
        up = production_plan.named(f"{prefix}-scale-up").inputs
        down = production_plan.named(f"{prefix}-scale-down").inputs
        assert up["schedule"] == "cron(0 8 * * ? *)" and down["schedule"] == "cron(0 19 * * ? *)"
        assert up["timezone"] == down["timezone"] == "UTC"
        assert up["scalableTargetAction"] == {"minCapacity": min(2 * low, high), "maxCapacity": high}
        assert down["scalableTargetAction"] == {"minCapacity": low, "maxCapacity": max(high // 2, low)}


def test_demo_has_no_autoscaling_and_no_scheduled_actions(demo_plan: Plan) -> None:
    types = {r.type for r in demo_plan.registrations}
    assert not any(t.startswith("aws:appautoscaling/") for t in types)
    assert all(not s.ignore_changes for s in demo_plan.of_type("aws:ecs/service:Service"))


def test_ecs_ignores_desired_count_once_autoscaling_owns_it(production_plan: Plan) -> None:
    services = production_plan.of_type("aws:ecs/service:Service")
    assert [s.ignore_changes for s in services] == [("desiredCount",)] * 4


def test_scheduled_capacities_never_exceed_the_maximum_nor_fall_below_the_minimum() -> None:
    assert scheduled_capacities(2, 20) == {"scale-up": (4, 20), "scale-down": (2, 10)}
    assert scheduled_capacities(1, 1) == {"scale-up": (1, 1), "scale-down": (1, 1)}


def test_component_registers_target_two_policies_and_a_schedule_without_alb(run_component) -> None:
    args = ServiceAutoscalingArgs("c", "s", 1, 4, 70, 80, 30, 60, schedule=ScheduledScaling())
    plan = run_component(lambda: ServiceAutoscaling("x", args))
    component = plan.of_type("artwork-matcher:autoscaling:ServiceAutoscaling")[0]
    assert sorted(r.name for r in plan.children(component)) == [
        "x-cpu",
        "x-memory",
        "x-scale-down",
        "x-scale-up",
        "x-target",
    ]


def test_request_tracking_needs_the_alb_label_too() -> None:
    with pytest.raises(ValueError, match="requests_per_target and alb_resource_label"):
        ServiceAutoscalingArgs("c", "s", 1, 4, 70, 80, 30, 60, requests_per_target=500)
