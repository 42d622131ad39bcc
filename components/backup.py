"""Backups of the search index: an AWS Backup vault, a daily plan and a selection of the index's EFS file system."""

from __future__ import annotations

import dataclasses
import re

import pulumi
import pulumi_aws as aws

from components.iam import assume_role

BACKUP_MANAGED_POLICIES: dict[str, str] = {
    "backup": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "restores": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
}
"""AWS's managed policies for the role AWS Backup assumes to take recovery points and to restore them."""

_SCHEDULE = re.compile(r"^cron\((\S+ ){5}\S+\)$")


@dataclasses.dataclass(frozen=True)
class IndexBackupArgs:
    """Inputs of :class:`IndexBackup`."""

    file_system_arn: pulumi.Input[str]
    """The EFS file system holding the index snapshot; the plan selects exactly this resource."""
    schedule: str
    """When the daily recovery point is taken: an AWS cron expression in UTC, ``cron(0 3 * * ? *)``."""
    retention_days: int
    """Days each recovery point is kept before AWS Backup deletes it."""
    start_window_minutes: int = 60
    """How long after the scheduled time a job may still start before AWS Backup counts it as missed."""
    completion_window_minutes: int = 360
    """How long a started job may run before AWS Backup cancels it."""

    def __post_init__(self) -> None:
        if not _SCHEDULE.match(self.schedule):
            raise ValueError(f"backupSchedule must be an AWS cron expression with six fields, got {self.schedule!r}")
        if not 1 <= self.retention_days <= 36500:
            raise ValueError(f"backupRetentionDays must be between 1 and 36500, got {self.retention_days}")
        if self.start_window_minutes < 60 or self.completion_window_minutes <= self.start_window_minutes:
            raise ValueError("the start window must be at least 60 minutes and shorter than the completion window")


class IndexBackup(pulumi.ComponentResource):
    """A backup vault, a plan with one daily rule, the service role AWS Backup assumes, and a selection of one EFS.

    EFS backups are incremental at file level; the index files are replaced atomically (written beside, renamed
    over), so every recovery point holds whole files, never a torn one. Restoring is described in
    ``components/README.md`` (Operations).

    Attributes:
        vault_name: The vault the recovery points land in.
        plan_id: The backup plan.
        role_arn: The role AWS Backup assumes for backup and restore jobs.
    """

    def __init__(self, name: str, args: IndexBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:backup:IndexBackup", name, None, opts)
        self._name = name
        vault = aws.backup.Vault(f"{name}-vault", name=f"{name}-vault", opts=self._child())
        plan = self._create_plan(vault, args)
        role, attachments = self._create_role()
        aws.backup.Selection(
            f"{name}-index",
            name=f"{name}-index",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=[args.file_system_arn],
            # a job that starts before the role can read EFS fails; the first one may start within minutes
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )
        self.vault_name = vault.name
        self.plan_id = plan.id
        self.role_arn = role.arn
        self.register_outputs({"vault_name": self.vault_name, "plan_id": self.plan_id, "role_arn": self.role_arn})

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _create_plan(self, vault: aws.backup.Vault, args: IndexBackupArgs) -> aws.backup.Plan:
        return aws.backup.Plan(
            f"{self._name}-plan",
            name=f"{self._name}-plan",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="daily",
                    target_vault_name=vault.name,
                    schedule=args.schedule,
                    schedule_expression_timezone="Etc/UTC",
                    start_window=args.start_window_minutes,
                    completion_window=args.completion_window_minutes,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days),
                )
            ],
            opts=self._child(),
        )

    def _create_role(self) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        role = aws.iam.Role(
            f"{self._name}-role",
            assume_role_policy=assume_role("backup.amazonaws.com"),
            description="AWS Backup: take and restore recovery points of the index file system",
            opts=self._child(),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{self._name}-role-{purpose}",
                role=role.name,
                policy_arn=policy,
                opts=self._child(),
            )
            for purpose, policy in BACKUP_MANAGED_POLICIES.items()
        ]
        return role, attachments
