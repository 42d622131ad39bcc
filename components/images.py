"""Container images: an ECR repository per service and, in the same run, images built and pushed by digest."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker


def lifecycle_policy(keep_images: int) -> str:
    """ECR lifecycle rules: untagged images expire after 7 days; only the newest ``keep_images`` are kept."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "Expire untagged images after 7 days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 7,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the newest {keep_images} images",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_images},
                    "action": {"type": "expire"},
                },
            ]
        }
    )


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """One service's image."""

    service: str
    target: str | None = None
    """Dockerfile stage to build (``gpu`` for the CUDA embeddings image); None builds the last stage."""
    prebuilt: str = ""
    """An existing image pinned by digest, used instead of building."""


@dataclasses.dataclass(frozen=True)
class ContainerImagesArgs:
    """Inputs of :class:`ContainerImages`."""

    repository_prefix: str
    """Repositories are ``<prefix>/<service>``."""
    images: Sequence[ImageSpec]
    build: bool = True
    """Build ``services/<service>/Dockerfile`` (context: the repository root) and push it; false uses ``prebuilt``."""
    context: str = "."
    platform: str = "linux/amd64"
    keep_images: int = 10

    def __post_init__(self) -> None:
        for spec in self.images:
            if self.build and spec.prebuilt:
                raise ValueError(f"build=True conflicts with prebuilt image for {spec.service}; choose one")
            if not self.build and "@sha256:" not in spec.prebuilt:
                raise ValueError(f"build=False needs a prebuilt image pinned by digest for {spec.service}")


class ContainerImages(pulumi.ComponentResource):
    """ECR repositories (scan on push, lifecycle policy) and the images the task definitions use.

    Attributes:
        image_refs: Service name to ``repository@sha256:...``; task definitions use nothing else.
        repository_urls: Service name to its repository URL.
    """

    def __init__(self, name: str, args: ContainerImagesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:images:ContainerImages", name, None, opts)
        self._name = name
        self._args = args
        repositories = {spec.service: self._create_repository(spec.service) for spec in args.images}
        self.repository_urls = {service: repo.repository_url for service, repo in repositories.items()}
        self.image_refs: dict[str, pulumi.Output[str]] = {}
        if args.build:
            first = next(iter(repositories.values()))
            token = aws.ecr.get_authorization_token_output(
                registry_id=first.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            for spec in args.images:
                self.image_refs[spec.service] = self._create_image(spec, repositories[spec.service], token)
        else:
            self.image_refs = {spec.service: pulumi.Output.from_input(spec.prebuilt) for spec in args.images}
        self.register_outputs({"image_refs": self.image_refs, "repository_urls": self.repository_urls})

    def _create_repository(self, service: str) -> aws.ecr.Repository:
        repo = aws.ecr.Repository(
            f"{self._name}-{service}",
            name=f"{self._args.repository_prefix}/{service}",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            image_tag_mutability="MUTABLE",
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-{service}-lifecycle",
            repository=repo.name,
            policy=lifecycle_policy(self._args.keep_images),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return repo

    def _create_image(
        self, spec: ImageSpec, repo: aws.ecr.Repository, token: pulumi.Output[aws.ecr.GetAuthorizationTokenResult]
    ) -> pulumi.Output[str]:
        image = docker.Image(
            f"{self._name}-{spec.service}-image",
            image_name=pulumi.Output.concat(repo.repository_url, ":", spec.target or "latest"),
            build=docker.DockerBuildArgs(
                context=self._args.context,
                dockerfile=f"{self._args.context}/services/{spec.service}/Dockerfile",
                platform=self._args.platform,
                target=spec.target,
            ),
            registry=docker.RegistryArgs(
                server=repo.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return image.repo_digest
