"""Creation order expressed through outputs: a value that resolves only once other resources exist."""

from __future__ import annotations

from typing import Any

import pulumi


def after(value: pulumi.Input[Any], *resources: pulumi.Resource) -> pulumi.Output[Any]:
    """``value``, resolved only once every one of ``resources`` has been created.

    Whatever takes the result as an input gets ``resources`` as output dependencies, so ``pulumi up`` creates it
    after them (and ``destroy`` deletes it first). Components expose values this way when using them too early
    fails in AWS: a cluster ARN before its capacity providers are associated, a target group before a listener
    forwards to it, a file system before its mount targets exist. The URNs are known in a preview, so the value
    stays as known as it was.

    Args:
        value: The value to hand on.
        resources: What any consumer of the value must wait for.

    Returns:
        The same value, carrying the extra dependencies.
    """
    return pulumi.Output.all(value, *[r.urn for r in resources]).apply(lambda values: values[0])
