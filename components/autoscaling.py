"""Service autoscaling: target tracking on CPU, memory and ALB requests per target, plus scheduled actions."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws


@dataclasses.dataclass(frozen=True)
class ScheduledScaling:
    """Daily capacity changes: ``min`` doubled at ``scale_up_schedule``, ``max`` halved at ``scale_down_schedule``."""

    scale_up_schedule: str = "cron(0 8 * * ? *)"
    scale_down_schedule: str = "cron(0 19 * * ? *)"


@dataclasses.dataclass(frozen=True)
class ServiceAutoscalingArgs:
    """Inputs of :class:`ServiceAutoscaling` (one column of the ARCHITECTURE.md table)."""

    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    autoscaling_min_capacity: int
    autoscaling_max_capacity: int
    cpu_target: int
    """Average CPU utilisation to hold, percent."""
    memory_target: int
    """Average memory utilisation to hold, percent."""
    scale_out_cooldown: int
    scale_in_cooldown: int
    requests_per_target: int | None = None
    """ALB requests per target to hold; needs ``alb_resource_label``."""
    alb_resource_label: pulumi.Input[str] | None = None
    """``app/<lb>/<id>/targetgroup/<tg>/<id>``, the request-count metric's label."""
    schedule: ScheduledScaling | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.autoscaling_min_capacity <= self.autoscaling_max_capacity:
            raise ValueError("need 1 <= autoscaling_min_capacity <= autoscaling_max_capacity")
        if (self.requests_per_target is None) != (self.alb_resource_label is None):
            raise ValueError("requests_per_target and alb_resource_label must be given together")


def scheduled_capacities(min_capacity: int, max_capacity: int) -> dict[str, tuple[int, int]]:
    """(min, max) of the scale-up and scale-down actions: min doubled in the morning, max halved at night."""
    up_min = min(2 * min_capacity, max_capacity)
    return {
        "scale-up": (up_min, max_capacity),
        "scale-down": (min_capacity, max(max_capacity // 2, min_capacity)),
    }


class ServiceAutoscaling(pulumi.ComponentResource):
    """A scalable target on an ECS service's desired count with its policies and optional schedule.

    Attributes:
        resource_id: ``service/<cluster>/<service>``, the scalable target's id.
    """

    def __init__(self, name: str, args: ServiceAutoscalingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:autoscaling:ServiceAutoscaling", name, None, opts)
        self._name = name
        self._args = args
        self.resource_id = pulumi.Output.concat("service/", args.cluster_name, "/", args.service_name)
        self.target = aws.appautoscaling.Target(
            f"{name}-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=self.resource_id,
            min_capacity=args.autoscaling_min_capacity,
            max_capacity=args.autoscaling_max_capacity,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._create_policy("cpu", "ECSServiceAverageCPUUtilization", args.cpu_target)
        self._create_policy("memory", "ECSServiceAverageMemoryUtilization", args.memory_target)
        if args.requests_per_target is not None:
            self._create_policy(
                "requests", "ALBRequestCountPerTarget", args.requests_per_target, args.alb_resource_label
            )
        if args.schedule is not None:
            self._create_schedule(args.schedule)
        self.register_outputs({"resource_id": self.resource_id})

    def _create_policy(
        self, label: str, metric: str, target: int, resource_label: pulumi.Input[str] | None = None
    ) -> None:
        aws.appautoscaling.Policy(
            f"{self._name}-{label}",
            policy_type="TargetTrackingScaling",
            resource_id=self.target.resource_id,
            scalable_dimension=self.target.scalable_dimension,
            service_namespace=self.target.service_namespace,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(target),
                scale_out_cooldown=self._args.scale_out_cooldown,
                scale_in_cooldown=self._args.scale_in_cooldown,
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=metric, resource_label=resource_label
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_schedule(self, schedule: ScheduledScaling) -> None:
        capacities = scheduled_capacities(self._args.autoscaling_min_capacity, self._args.autoscaling_max_capacity)
        cron = {"scale-up": schedule.scale_up_schedule, "scale-down": schedule.scale_down_schedule}
        for label, (low, high) in capacities.items():
            aws.appautoscaling.ScheduledAction(
                f"{self._name}-{label}",
                service_namespace=self.target.service_namespace,
                resource_id=self.target.resource_id,
                scalable_dimension=self.target.scalable_dimension,
                schedule=cron[label],
                timezone="UTC",
                scalable_target_action=aws.appautoscaling.ScheduledActionScalableTargetActionArgs(
                    min_capacity=low, max_capacity=high
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
