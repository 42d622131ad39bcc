"""IAM policy documents, built as data so tests can read every statement (no ``*`` action on ``*``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi


def assume_role(service: str) -> str:
    """A trust policy letting one AWS service principal assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def statement(actions: Sequence[str], resources: Sequence[pulumi.Input[str]]) -> dict[str, object]:
    """One Allow statement; rejects the ``*``-on-``*`` grant outright."""
    if "*" in actions and "*" in resources:
        raise ValueError("refusing an IAM statement allowing every action on every resource")
    return {"Effect": "Allow", "Action": list(actions), "Resource": list(resources)}


def policy(statements: Sequence[dict[str, object]]) -> pulumi.Output[str]:
    """A policy document from statements whose resources may be outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})
