"""Storage: the images bucket (versioned, encrypted, private, old versions expiring) and EFS for the search index."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.ordering import after


@dataclasses.dataclass(frozen=True)
class StorageArgs:
    """Inputs of :class:`Storage`."""

    bucket_name: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets; EFS gets a mount target in each."""
    index_path: str = "/index"
    """Directory of the EFS access point (owned by the services' non-root user)."""
    posix_uid: int = 1000
    posix_gid: int = 1000
    force_destroy: bool = False
    """Let ``pulumi destroy`` empty and delete the bucket (every version); a throw-away stack only."""
    noncurrent_version_days: int = 30
    """Days a replaced or deleted object's old version is kept before S3 expires it (the undo window)."""
    abort_incomplete_upload_days: int = 7
    """Days after which parts of an unfinished multipart upload are deleted."""

    def __post_init__(self) -> None:
        if self.noncurrent_version_days < 1 or self.abort_incomplete_upload_days < 1:
            raise ValueError("imagesNoncurrentVersionDays and the multipart clean-up must be at least one day")


class Storage(pulumi.ComponentResource):
    """An S3 bucket and an encrypted EFS file system with an access point and mount targets.

    The EFS security group starts with no ingress: each service that mounts it admits itself (see
    :class:`components.service.EcsService`).

    Attributes:
        bucket_arn: The images bucket.
        file_system_arn: The index file system (what a backup plan selects).
        file_system_id: The index file system, resolved only once every mount target exists: a task mounting it
            earlier fails to start.
        access_point_id: The index access point.
        efs_security_group_id: The mount targets' security group.
    """

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:storage:Storage", name, None, opts)
        self._name = name
        self._args = args
        self.bucket = self._create_bucket()
        self._create_file_system()
        self.bucket_arn = self.bucket.arn
        self.bucket_name = self.bucket.bucket
        self.register_outputs(
            {
                "bucket_arn": self.bucket_arn,
                "file_system_id": self.file_system_id,
                "file_system_arn": self.file_system_arn,
                "access_point_id": self.access_point_id,
                "efs_security_group_id": self.efs_security_group_id,
            }
        )

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _create_bucket(self) -> aws.s3.Bucket:
        bucket = aws.s3.Bucket(
            f"{self._name}-images",
            bucket=self._args.bucket_name,
            force_destroy=self._args.force_destroy,
            opts=self._child(),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{self._name}-images-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child(),
        )
        aws.s3.BucketOwnershipControls(
            f"{self._name}-images-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self._child(),
        )
        versioning = aws.s3.BucketVersioning(
            f"{self._name}-images-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=self._child(),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{self._name}-images-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms"
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=self._child(),
        )
        self._create_lifecycle(bucket, versioning)
        return bucket

    def _create_lifecycle(self, bucket: aws.s3.Bucket, versioning: aws.s3.BucketVersioning) -> None:
        """Old versions expire after the undo window; S3 wants versioning on before such a rule."""
        a = self._args
        aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-images-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=a.noncurrent_version_days
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=a.abort_incomplete_upload_days
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )

    def _create_file_system(self) -> None:
        a = self._args
        file_system = aws.efs.FileSystem(
            f"{self._name}-index",
            encrypted=True,
            performance_mode="generalPurpose",
            throughput_mode="elastic",
            tags={"Name": f"{self._name}-index"},
            opts=self._child(),
        )
        group = aws.ec2.SecurityGroup(
            f"{self._name}-efs-sg",
            vpc_id=a.vpc_id,
            description="EFS mount targets: NFS from the services that mount the index only",
            opts=self._child(),
        )
        mount_targets = [
            aws.efs.MountTarget(
                f"{self._name}-index-mount-{i}",
                file_system_id=file_system.id,
                subnet_id=subnet,
                security_groups=[group.id],
                opts=self._child(),
            )
            for i, subnet in enumerate(a.subnet_ids)
        ]
        access_point = aws.efs.AccessPoint(
            f"{self._name}-index-ap",
            file_system_id=file_system.id,
            posix_user=aws.efs.AccessPointPosixUserArgs(uid=a.posix_uid, gid=a.posix_gid),
            root_directory=aws.efs.AccessPointRootDirectoryArgs(
                path=a.index_path,
                creation_info=aws.efs.AccessPointRootDirectoryCreationInfoArgs(
                    owner_uid=a.posix_uid, owner_gid=a.posix_gid, permissions="750"
                ),
            ),
            opts=self._child(),
        )
        self.file_system_id = after(file_system.id, *mount_targets)
        self.file_system_arn = file_system.arn
        self.access_point_id = access_point.id
        self.efs_security_group_id = group.id
