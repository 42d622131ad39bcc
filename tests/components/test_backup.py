"""Index backups (AWS Backup) and the images bucket's lifecycle, as components and in both stacks."""

from __future__ import annotations

import json

import pytest

from components.backup import BACKUP_MANAGED_POLICIES, IndexBackup, IndexBackupArgs
from components.plan import recorder as offline
from components.plan.pricing import estimate
from components.plan.recorder import Plan
from components.storage import StorageArgs

FS_ARN = "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-1"


def test_backup_takes_one_daily_recovery_point_of_the_file_system_and_keeps_it_the_configured_days(
    run_component,
) -> None:
    plan = run_component(lambda: IndexBackup("bk", IndexBackupArgs(FS_ARN, "cron(0 3 * * ? *)", 12)))
    component = plan.of_type("artwork-matcher:backup:IndexBackup")[0]
    assert plan.child_types(component) == sorted(["Vault", "Plan", "Role", "Selection"] + ["RolePolicyAttachment"] * 2)
    [rule] = plan.named("bk-plan").inputs["rules"]
    assert rule["schedule"] == "cron(0 3 * * ? *)"
    assert rule["scheduleExpressionTimezone"] == "Etc/UTC"
    assert rule["lifecycle"] == {"deleteAfter": 12}
    assert (rule["startWindow"], rule["completionWindow"]) == (60, 360)
    assert rule["targetVaultName"] == plan.named("bk-vault").inputs["name"]
    assert plan.waits_for(plan.named("bk-plan"), plan.named("bk-vault"))
    selection = plan.named("bk-index").inputs
    assert selection["resources"] == [FS_ARN]
    assert selection["planId"] == "bk-plan-id"
    assert "selectionTags" not in selection and "conditions" not in selection, "selects one resource, not by tag"


def test_backup_role_is_assumable_by_aws_backup_only_and_ready_before_the_selection(run_component) -> None:
    plan = run_component(lambda: IndexBackup("bk", IndexBackupArgs(FS_ARN, "cron(30 1 * * ? *)", 7)))
    role = plan.named("bk-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    attachments = plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert sorted(a.inputs["policyArn"] for a in attachments) == sorted(BACKUP_MANAGED_POLICIES.values())
    assert {a.inputs["role"] for a in attachments} == {"bk-role"}
    selection = plan.named("bk-index")
    assert selection.inputs["iamRoleArn"] == "arn:aws:iam:eu-west-1:123456789012:bk-role"
    assert all(plan.waits_for(selection, a) for a in attachments)


@pytest.mark.parametrize(
    ("schedule", "days", "message"),
    [
        ("daily", 7, "backupSchedule must be an AWS cron expression"),
        ("cron(0 3 * * ?)", 7, "backupSchedule must be an AWS cron expression"),
        ("cron(0 3 * * ? *)", 0, "backupRetentionDays must be between 1 and 36500"),
    ],
)
def test_a_bad_schedule_or_retention_is_refused_naming_the_key(schedule: str, days: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IndexBackupArgs(FS_ARN, schedule, days)


def test_production_backs_up_exactly_its_index_file_system_daily_for_35_days(production_plan: Plan) -> None:
    [backup_plan] = production_plan.of_type("aws:backup/plan:Plan")
    [rule] = backup_plan.inputs["rules"]
    assert (rule["schedule"], rule["lifecycle"]["deleteAfter"]) == ("cron(0 3 * * ? *)", 35)
    [file_system] = production_plan.of_type("aws:efs/fileSystem:FileSystem")
    [selection] = production_plan.of_type("aws:backup/selection:Selection")
    assert selection.inputs["resources"] == [f"arn:aws:efs:eu-west-1:123456789012:{file_system.name}"]
    assert production_plan.waits_for(selection, file_system)
    [line] = [c for c in estimate(production_plan) if c.registration.type == "aws:backup/plan:Plan"]
    assert line.monthly_usd == pytest.approx(0.055 * 5 * (1 + 35 * 0.2), abs=0.01)


def test_retention_and_schedule_come_from_the_stack_config() -> None:
    plan = offline.run("production", overrides={"backupRetentionDays": 90, "backupSchedule": "cron(15 2 * * ? *)"})
    [rule] = plan.of_type("aws:backup/plan:Plan")[0].inputs["rules"]
    assert (rule["schedule"], rule["lifecycle"]["deleteAfter"]) == ("cron(15 2 * * ? *)", 90)


def test_demo_has_no_backup_resources(demo_plan: Plan) -> None:
    assert not [r for r in demo_plan.registrations if r.type.startswith(("aws:backup/", "artwork-matcher:backup:"))]


@pytest.mark.parametrize(("stack", "days"), [("demo", 7), ("production", 90)])
def test_old_image_versions_expire_after_the_configured_days_once_versioning_is_on(
    stack: str, days: int, demo_plan: Plan, production_plan: Plan
) -> None:
    plan = demo_plan if stack == "demo" else production_plan
    [lifecycle] = plan.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    [bucket] = plan.of_type("aws:s3/bucket:Bucket")
    assert lifecycle.inputs["bucket"] == f"{bucket.name}-id"
    [rule] = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": days}
    assert rule["expiration"] == {"expiredObjectDeleteMarker": True}, "current objects never expire"
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    [versioning] = plan.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert plan.waits_for(lifecycle, versioning)


def test_storage_refuses_an_undo_window_under_a_day() -> None:
    with pytest.raises(ValueError, match="imagesNoncurrentVersionDays"):
        StorageArgs("bucket", "vpc-1", ["s1"], noncurrent_version_days=0)


def test_the_plan_command_refuses_a_bad_retention_naming_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.cli.main import main

    assert main(["infra", "plan", "--stack", "production", "--config", "backupRetentionDays=0"]) == 2
    assert "backupRetentionDays must be between 1 and 36500, got 0" in capsys.readouterr().err
