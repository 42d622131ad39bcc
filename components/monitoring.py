"""Monitoring: an SNS topic, a CloudWatch dashboard and the latency, 5xx and running-task alarms.

The topic is encrypted with a customer-managed KMS key: CloudWatch alarms cannot publish to a topic under the
AWS-managed ``alias/aws/sns`` key (its policy cannot be changed to let the CloudWatch service use it), and the
notifications would be dropped without an error anywhere a deployer looks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

TOPIC_PUBLISHERS: tuple[str, ...] = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")
"""Services that publish to the alarm topic (alarms, the cost budget): the topic policy and the key policy admit
exactly these, from this account only."""


def topic_key_policy(account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The alarm topic key's policy: the account administers it (through IAM), and the publishing services may
    generate data keys and decrypt with it (what SNS needs on a publisher's behalf)."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersThroughIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", account_id, ":root")},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "AlarmPublishersEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": list(TOPIC_PUBLISHERS)},
                    "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


@dataclasses.dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of :class:`Monitoring`."""

    alb_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_names: Mapping[str, pulumi.Input[str]]
    """Short name to ECS service name, for CPU widgets and running-task alarms."""
    region: str
    enable_alarms: bool = True
    alarm_email: str = ""
    """Subscribed to the topic when not empty."""
    latency_threshold_s: float = 2.0
    error_rate_percent: float = 5.0


def dashboard_body(args: MonitoringArgs) -> pulumi.Output[str]:
    """The dashboard JSON: ALB p99 latency, requests, and CPU per service (pure; no resources)."""
    alb = ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", args.alb_arn_suffix]
    requests = ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", args.alb_arn_suffix]
    cpu = [
        ["AWS/ECS", "CPUUtilization", "ClusterName", args.cluster_name, "ServiceName", service]
        for service in args.service_names.values()
    ]

    def widget(title: str, metrics: list[object], stat: str, x: int, y: int) -> dict[str, object]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "metrics": metrics, "stat": stat, "period": 60, "region": args.region},
        }

    return pulumi.Output.json_dumps(
        {
            "widgets": [
                widget("ALB p99 latency (s)", [alb], "p99", 0, 0),
                widget("Requests", [requests], "Sum", 12, 0),
                widget("CPU per service (%)", list(cpu), "Average", 0, 6),
            ]
        }
    )


class Monitoring(pulumi.ComponentResource):
    """Alarm topic (with optional e-mail), dashboard, and alarms that notify the topic.

    Attributes:
        topic_arn: The SNS topic alarms and the budget publish to.
        dashboard_name: The dashboard's name.
    """

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        self.topic = self._create_topic()
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=name, dashboard_body=dashboard_body(args), opts=self._child()
        )
        if args.enable_alarms:
            self._create_alb_alarms()
            self._create_task_alarms()
        self.topic_arn = self.topic.arn
        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs({"topic_arn": self.topic_arn, "dashboard_name": self.dashboard_name})

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _create_topic(self) -> aws.sns.Topic:
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        key = aws.kms.Key(
            f"{self._name}-alarms-key",
            description=f"{self._name}: encrypts the alarm topic; CloudWatch and Budgets may use it",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=topic_key_policy(account),
            opts=self._child(),
        )
        aws.kms.Alias(
            f"{self._name}-alarms-key-alias",
            name=f"alias/{self._name}-alarms",
            target_key_id=key.id,
            opts=self._child(),
        )
        topic = aws.sns.Topic(f"{self._name}-alarms", kms_master_key_id=key.arn, opts=self._child())
        aws.sns.TopicPolicy(
            f"{self._name}-alarms-policy",
            arn=topic.arn,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": list(TOPIC_PUBLISHERS)},
                            "Action": ["sns:Publish"],
                            "Resource": [topic.arn],
                            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                        }
                    ],
                }
            ),
            opts=self._child(),
        )
        if self._args.alarm_email:
            aws.sns.TopicSubscription(
                f"{self._name}-alarms-email",
                topic=topic.arn,
                protocol="email",
                endpoint=self._args.alarm_email,
                opts=self._child(),
            )
        return topic

    def _alarm(self, label: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        """A CloudWatch alarm named after the component that notifies the topic when it fires and when it clears;
        ``kwargs`` are the alarm's own arguments (metric, statistic, threshold, ...)."""
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{label}",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            treat_missing_data="notBreaching",
            opts=self._child(),
            **kwargs,
        )

    def _create_alb_alarms(self) -> None:
        a = self._args
        self._alarm(
            "p99-latency",
            alarm_description=f"ALB p99 latency above {a.latency_threshold_s} s for 3 minutes",
            namespace="AWS/ApplicationELB",
            metric_name="TargetResponseTime",
            dimensions={"LoadBalancer": a.alb_arn_suffix},
            extended_statistic="p99",
            period=60,
            evaluation_periods=3,
            threshold=a.latency_threshold_s,
            comparison_operator="GreaterThanThreshold",
        )

        def metric(metric_id: str, name: str) -> dict[str, object]:
            return {
                "id": metric_id,
                "return_data": False,
                "metric": {
                    "namespace": "AWS/ApplicationELB",
                    "metric_name": name,
                    "dimensions": {"LoadBalancer": a.alb_arn_suffix},
                    "period": 60,
                    "stat": "Sum",
                },
            }

        self._alarm(
            "5xx-rate",
            alarm_description=f"5xx responses above {a.error_rate_percent} % of requests for 2 minutes",
            evaluation_periods=2,
            threshold=a.error_rate_percent,
            comparison_operator="GreaterThanThreshold",
            metric_queries=[
                metric("target5xx", "HTTPCode_Target_5XX_Count"),
                metric("elb5xx", "HTTPCode_ELB_5XX_Count"),
                metric("requests", "RequestCount"),
                {
                    "id": "rate",
                    "expression": "100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests",
                    "label": "5xx rate (%)",
                    "return_data": True,
                },
            ],
        )

    def _create_task_alarms(self) -> None:
        a = self._args
        for short, service in a.service_names.items():

            def metric(metric_id: str, name: str, service: pulumi.Input[str] = service) -> dict[str, object]:
                return {
                    "id": metric_id,
                    "return_data": False,
                    "metric": {
                        "namespace": "ECS/ContainerInsights",
                        "metric_name": name,
                        "dimensions": {"ClusterName": a.cluster_name, "ServiceName": service},
                        "period": 60,
                        "stat": "Average",
                    },
                }

            self._alarm(
                f"{short}-tasks-below-desired",
                alarm_description=f"{short}: running tasks below desired for 5 minutes",
                evaluation_periods=5,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                metric_queries=[
                    metric("desired", "DesiredTaskCount"),
                    metric("running", "RunningTaskCount"),
                    {"id": "missing", "expression": "desired - running", "label": "tasks missing", "return_data": True},
                ],
            )
