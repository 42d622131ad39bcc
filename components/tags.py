"""Default tags: every taggable AWS resource carries its project, stack and service, set once on the providers.

The program creates one explicit AWS provider per service plus one for shared infrastructure, each with
``default_tags``; components inherit the provider of their parent, so no resource can miss the tags and no
component repeats them. The ``stack`` tag (``<project>-<stack>``) is unique in an account and is what the stack's
cost budget filters on (activate it once under Billing, Cost allocation tags).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

SHARED = "shared"
"""The ``service`` tag of resources that no single service owns (network, cluster, load balancer...)."""

STACK_TAG = "stack"
"""The cost-allocation tag key the budget filters on."""


def default_tags(project: str, stack: str, service: str) -> dict[str, str]:
    """The tags of every resource of one service (or :data:`SHARED`) in one stack."""
    return {"project": project, STACK_TAG: f"{project}-{stack}", "service": service}


def tagged_provider(name: str, region: str, tags: dict[str, str]) -> aws.Provider:
    """An AWS provider for ``region`` that puts ``tags`` on every taggable resource it creates."""
    return aws.Provider(name, region=region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))


def with_provider(provider: aws.Provider) -> pulumi.ResourceOptions:
    """Options giving a component (and so all its children) ``provider`` for AWS."""
    return pulumi.ResourceOptions(providers={"aws": provider})
