"""Application secret: a Secrets Manager secret whose value comes from a Pulumi secret config value."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws


@dataclasses.dataclass(frozen=True)
class AppSecretArgs:
    """Inputs of :class:`AppSecret`."""

    value: pulumi.Input[str]
    """The secret value (a Pulumi secret; it stays encrypted in state)."""
    description: str = ""
    recovery_window_days: int = 7


class AppSecret(pulumi.ComponentResource):
    """A secret and its current version; tasks receive it through their definition's ``secrets``.

    Attributes:
        secret_arn: What a container definition's ``valueFrom`` names.
    """

    def __init__(self, name: str, args: AppSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:secrets:AppSecret", name, None, opts)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            description=args.description,
            recovery_window_in_days=args.recovery_window_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-version",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.secret(args.value),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_arn = self.secret.arn
        self.register_outputs({"secret_arn": self.secret_arn})
