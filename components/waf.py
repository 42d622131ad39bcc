"""WAF: a regional web ACL with AWS managed rule groups, body-size rules and a per-IP rate rule, on the ALB.

``AWSManagedRulesCommonRuleSet`` includes ``SizeRestrictions_BODY``, which blocks any body over 8 KB: every photo
sent to ``/identify`` and every curator upload. That one rule is set to count; our own rules then block bodies over
8 KB everywhere except the upload paths, and uploads whose declared length exceeds the gateway's own body limit.
An ALB hands WAF only the first 8 KB of a body, so the gateway's limit is checked on ``Content-Length``; the gateway
still enforces it on the bytes it reads (a chunked upload declares no length). Every other managed rule still blocks.
"""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

MANAGED_RULE_GROUPS: tuple[str, ...] = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
"""AWS managed rule groups evaluated in this order, before our body-size and rate rules."""

COUNTED_MANAGED_RULES: dict[str, tuple[str, ...]] = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}
"""Managed rules set to count instead of block (each replaced by our own rules below); no other rule is touched."""

UPLOAD_PATHS: tuple[str, ...] = ("/identify", "/objects")
"""Path prefixes of the gateway's routes that take a photo in the body (``POST /identify``, ``POST /objects``,
``PUT /objects/{id}``)."""

ALB_BODY_INSPECTION_BYTES = 8192
"""What an ALB forwards of a body to WAF (fixed), and the managed rule's own limit."""


def greater_than_pattern(limit: int) -> str:
    """A regular expression that matches exactly the decimal integers greater than ``limit`` (leading zeros allowed).

    WAF compares no numbers, so a ``Content-Length`` above the gateway's limit is matched as text: any longer
    number, or one of the same length that is larger at its first differing digit.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    digits = str(limit)
    branches = [f"[1-9][0-9]{{{len(digits)},}}"]
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            branches.append(f"{digits[:i]}[{int(digit) + 1}-9]" + (f"[0-9]{{{rest}}}" if rest else ""))
    return f"^0*({'|'.join(branches)})$"


@dataclasses.dataclass(frozen=True)
class WebAclArgs:
    """Inputs of :class:`WebAcl`."""

    load_balancer_arn: pulumi.Input[str]
    max_body_bytes: int
    """The gateway's request body limit (``GATEWAY_MAX_BODY_BYTES``); larger declared uploads are refused here."""
    rate_limit: int = 2000
    """Requests per 5 minutes from one IP above which requests are blocked."""

    def __post_init__(self) -> None:
        if self.rate_limit < 100:
            raise ValueError("rate_limit below 100 is not accepted by WAF")
        if self.max_body_bytes < ALB_BODY_INSPECTION_BYTES:
            raise ValueError(f"max_body_bytes below {ALB_BODY_INSPECTION_BYTES} would refuse what WAF lets through")


def _visibility(metric: str) -> dict[str, object]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


def _managed(group: str) -> dict[str, object]:
    statement: dict[str, object] = {"name": group, "vendor_name": "AWS"}
    if group in COUNTED_MANAGED_RULES:
        statement["rule_action_overrides"] = [
            {"name": rule, "action_to_use": {"count": {}}} for rule in COUNTED_MANAGED_RULES[group]
        ]
    return {"managed_rule_group_statement": statement}


def _too_large() -> dict[str, object]:
    return {"block": {"custom_response": {"response_code": 413}}}


def _body_size_rules(max_body_bytes: int) -> list[dict[str, object]]:
    uploads = "^(" + "|".join(UPLOAD_PATHS) + ")(/|$)"
    no_transformation = [{"priority": 0, "type": "NONE"}]
    outside_uploads = {
        "and_statement": {
            "statements": [
                {
                    "size_constraint_statement": {
                        "comparison_operator": "GT",
                        "size": ALB_BODY_INSPECTION_BYTES,
                        "field_to_match": {"body": {"oversize_handling": "MATCH"}},
                        "text_transformations": no_transformation,
                    }
                },
                {
                    "not_statement": {
                        "statement": {
                            "regex_match_statement": {
                                "regex_string": uploads,
                                "field_to_match": {"uri_path": {}},
                                "text_transformations": no_transformation,
                            }
                        }
                    }
                },
            ]
        }
    }
    over_limit = {
        "regex_match_statement": {
            "regex_string": greater_than_pattern(max_body_bytes),
            "field_to_match": {"single_header": {"name": "content-length"}},
            "text_transformations": no_transformation,
        }
    }
    return [
        {"name": "body-over-8kb-outside-uploads", "action": _too_large(), "statement": outside_uploads},
        {"name": "body-over-gateway-limit", "action": _too_large(), "statement": over_limit},
    ]


def waf_rules(rate_limit: int, max_body_bytes: int) -> list[dict[str, object]]:
    """The ACL's rules in priority order: the managed groups (only :data:`COUNTED_MANAGED_RULES` counted), our
    body-size rules (413), then the per-IP rate rule that blocks."""
    rules: list[dict[str, object]] = [
        {"name": group, "override_action": {"none": {}}, "statement": _managed(group)} for group in MANAGED_RULE_GROUPS
    ]
    rules.extend(_body_size_rules(max_body_bytes))
    rules.append(
        {
            "name": "rate-per-ip",
            "action": {"block": {}},
            "statement": {"rate_based_statement": {"limit": rate_limit, "aggregate_key_type": "IP"}},
        }
    )
    return [
        {**rule, "priority": priority, "visibility_config": _visibility(str(rule["name"]))}
        for priority, rule in enumerate(rules)
    ]


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
            rules=waf_rules(args.rate_limit, args.max_body_bytes),
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
