"""The web ACL lets photos through: an evaluator of the statements our rules use, over the registered ACL.

AWS's managed groups are opaque, so the evaluator models only what matters here: ``SizeRestrictions_BODY`` of the
common rule set blocks a body over 8 KB unless it is overridden. Every other managed rule is checked to stay as AWS
ships it (blocking).
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

import pytest

from components.plan.recorder import Plan
from components.waf import (
    ALB_BODY_INSPECTION_BYTES,
    MANAGED_RULE_GROUPS,
    UPLOAD_PATHS,
    WebAclArgs,
    greater_than_pattern,
)
from services.common.settings import ServiceSettings
from services.gateway import app as gateway_app

LIMIT = 25_000_000


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    body_bytes: int
    content_length: int | None = None

    def header(self, name: str) -> str | None:
        if name == "content-length":
            return str(self.body_bytes if self.content_length is None else self.content_length)
        return None


def matches(statement: dict[str, Any], request: Request) -> bool:
    """Whether a (camelCase, as registered) WAF statement matches the request."""
    if "andStatement" in statement:
        return all(matches(s, request) for s in statement["andStatement"]["statements"])
    if "notStatement" in statement:
        return not matches(statement["notStatement"]["statement"], request)
    if "regexMatchStatement" in statement:
        inner = statement["regexMatchStatement"]
        field = inner["fieldToMatch"]
        value = request.path if "uriPath" in field else request.header(field["singleHeader"]["name"])
        return value is not None and re.search(inner["regexString"], value) is not None
    if "sizeConstraintStatement" in statement:
        inner = statement["sizeConstraintStatement"]
        assert inner["comparisonOperator"] == "GT" and "body" in inner["fieldToMatch"]
        oversize = request.body_bytes > ALB_BODY_INSPECTION_BYTES
        if oversize and inner["fieldToMatch"]["body"]["oversizeHandling"] == "MATCH":
            return True
        return min(request.body_bytes, ALB_BODY_INSPECTION_BYTES) > inner["size"]
    if "managedRuleGroupStatement" in statement:
        group = statement["managedRuleGroupStatement"]
        if group["name"] != "AWSManagedRulesCommonRuleSet" or request.body_bytes <= ALB_BODY_INSPECTION_BYTES:
            return False
        counted = {o["name"] for o in group.get("ruleActionOverrides", []) if "count" in o["actionToUse"]}
        return "SizeRestrictions_BODY" not in counted
    if "rateBasedStatement" in statement:
        return False
    raise AssertionError(f"the evaluator does not know {sorted(statement)}")


def verdict(rules: list[dict[str, Any]], request: Request) -> int:
    """The HTTP status WAF answers with (403/413 block), or 200 when the request reaches the gateway."""
    for rule in sorted(rules, key=lambda r: r["priority"]):
        if matches(rule["statement"], request):
            action = rule.get("action") or {"block": {}}
            if "block" in action:
                return int(action["block"].get("customResponse", {}).get("responseCode", 403))
    return 200


@pytest.fixture(scope="module")
def production_rules(production_plan: Plan) -> list[dict[str, Any]]:
    [acl] = production_plan.of_type("aws:wafv2/webAcl:WebAcl")
    return list(acl.inputs["rules"])


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (Request("POST", "/identify", 3_000_000), 200),
        (Request("POST", "/objects", 12_000_000), 200),
        (Request("PUT", "/objects/louvre-123", LIMIT), 200),
        (Request("GET", "/health", 0), 200),
        (Request("POST", "/identify", LIMIT + 1), 413),
        (Request("POST", "/identify", 1_000, content_length=10 * LIMIT), 413),
        (Request("POST", "/objects-export", 20_000), 413),
        (Request("POST", "/info", 9_000), 413),
    ],
)
def test_production_waf_lets_photos_through_and_refuses_oversized_bodies(
    production_rules: list[dict[str, Any]], request_: Request, status: int
) -> None:
    assert verdict(production_rules, request_) == status


def test_without_the_override_the_common_rule_set_would_block_every_photo(
    production_rules: list[dict[str, Any]],
) -> None:
    stripped = [
        {**r, "statement": {"managedRuleGroupStatement": {"name": r["name"], "vendorName": "AWS"}}}
        if r["name"] in MANAGED_RULE_GROUPS
        else r
        for r in production_rules
    ]
    assert verdict(stripped, Request("POST", "/identify", 3_000_000)) == 403


def test_only_size_restrictions_body_is_counted_and_every_other_managed_rule_still_blocks(
    production_rules: list[dict[str, Any]],
) -> None:
    managed = [r for r in production_rules if "managedRuleGroupStatement" in r["statement"]]
    assert [r["name"] for r in managed] == list(MANAGED_RULE_GROUPS)
    for rule in managed:
        assert rule["overrideAction"] == {"none": {}}
        overrides = rule["statement"]["managedRuleGroupStatement"].get("ruleActionOverrides", [])
        expected = [{"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}]
        assert overrides == (expected if rule["name"] == "AWSManagedRulesCommonRuleSet" else [])
    assert {r["name"]: r["action"] for r in production_rules if "action" in r}["rate-per-ip"] == {"block": {}}


def test_the_waf_limit_is_the_gateways_body_limit(production_plan: Plan) -> None:
    import json

    task = production_plan.named("artwork-matcher-production-gateway-task")
    env = {e["name"]: e["value"] for e in json.loads(task.inputs["containerDefinitions"])[0]["environment"]}
    assert int(env["GATEWAY_MAX_BODY_BYTES"]) == LIMIT == ServiceSettings.model_fields["max_body_bytes"].default
    [acl] = production_plan.of_type("aws:wafv2/webAcl:WebAcl")
    [rule] = [r for r in acl.inputs["rules"] if r["name"] == "body-over-gateway-limit"]
    assert rule["statement"]["regexMatchStatement"]["regexString"] == greater_than_pattern(LIMIT)


def test_upload_paths_are_the_gateways_routes_that_take_a_body() -> None:
    handlers = [gateway_app.identify, gateway_app.add_object, gateway_app.replace_object]
    for handler in handlers:
        assert handler.http_methods & {"POST", "PUT"}
        assert all(re.match("^(" + "|".join(UPLOAD_PATHS) + ")(/|$)", path) for path in handler.paths)


def test_greater_than_pattern_matches_exactly_the_larger_numbers() -> None:
    rng = random.Random(7)
    for limit in [0, 9, 10, 99, 100, 8192, LIMIT, 19_999_999, 123_456_789]:
        pattern = re.compile(greater_than_pattern(limit))
        samples = {
            limit - 1,
            limit,
            limit + 1,
            limit * 10,
            0,
            1,
            *(rng.randrange(0, 3 * limit + 20) for _ in range(400)),
        }
        for n in (s for s in samples if s >= 0):
            assert bool(pattern.fullmatch(str(n))) is (n > limit), (limit, n)
            assert bool(pattern.fullmatch("00" + str(n))) is (n > limit), (limit, n)
        assert not pattern.fullmatch("") and not pattern.fullmatch("12a")


def test_web_acl_refuses_a_body_limit_below_what_waf_inspects() -> None:
    with pytest.raises(ValueError, match="max_body_bytes below 8192"):
        WebAclArgs("arn:alb", max_body_bytes=4096)
