"""WAF: a regional web ACL with AWS managed rule groups and a per-IP rate rule, attached to the ALB."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

MANAGED_RULE_GROUPS: tuple[str, ...] = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
"""AWS managed rule groups evaluated in this order, before the rate rule."""


@dataclasses.dataclass(frozen=True)
class WebAclArgs:
    """Inputs of :class:`WebAcl`."""

    load_balancer_arn: pulumi.Input[str]
    rate_limit: int = 2000
    """Requests per 5 minutes from one IP above which requests are blocked."""

    def __post_init__(self) -> None:
        if self.rate_limit < 100:
            raise ValueError("rate_limit below 100 is not accepted by WAF")


def _visibility(metric: str) -> dict[str, object]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


def waf_rules(rate_limit: int) -> list[dict[str, object]]:
    """The ACL's rules: each managed group (overrides none), then the per-IP rate rule that blocks."""
    rules: list[dict[str, object]] = [
        {
            "name": group,
            "priority": priority,
            "override_action": {"none": {}},
            "statement": {"managed_rule_group_statement": {"name": group, "vendor_name": "AWS"}},
            "visibility_config": _visibility(group),
        }
        for priority, group in enumerate(MANAGED_RULE_GROUPS)
    ]
    rules.append(
        {
            "name": "rate-per-ip",
            "priority": len(rules),
            "action": {"block": {}},
            "statement": {"rate_based_statement": {"limit": rate_limit, "aggregate_key_type": "IP"}},
            "visibility_config": _visibility("rate-per-ip"),
        }
    )
    return rules


class WebAcl(pulumi.ComponentResource):
    """The web ACL (default allow) and its association with the load balancer.

    Attributes:
        web_acl_arn: The ACL's ARN.
    """

    def __init__(self, name: str, args: WebAclArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:waf:WebAcl", name, None, opts)
        self.acl = aws.wafv2.WebAcl(  # type: ignore[call-overload]
            f"{name}-acl",
            scope="REGIONAL",
            default_action={"allow": {}},
            rules=waf_rules(args.rate_limit),
            visibility_config=_visibility(name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-association",
            resource_arn=args.load_balancer_arn,
            web_acl_arn=self.acl.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.web_acl_arn = self.acl.arn
        self.register_outputs({"web_acl_arn": self.web_acl_arn})
