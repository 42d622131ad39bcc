"""Container images: an ECR repository per service and, in the same run, images built and pushed by digest.

Tags are immutable and named after the content they were built from (the files the build context keeps, the
Dockerfile and its stage), so a tag never moves, an unchanged tree builds nothing new, and every digest a task
definition still names stays in its repository until the lifecycle policy's history depth is exceeded.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from services.common.topology import facts

TAG_PREFIX = "src-"
"""Every tag this program pushes starts with this, followed by the content digest."""


def _ignore_rules(context: Path) -> list[tuple[bool, str]]:
    path = context / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    rules = []
    for line in (raw.strip() for raw in lines):
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.removeprefix("!").strip("/")))
    return rules


def _kept(relative: str, rules: list[tuple[bool, str]]) -> bool:
    """Whether the build context keeps a file (``.dockerignore``: the last matching line wins; a line matching a
    parent directory matches what is inside it)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    kept = True
    for keep, pattern in rules:
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            kept = keep
    return kept


def content_tag(context: Path, dockerfile: str, target: str | None, build_args: Mapping[str, str] | None = None) -> str:
    """The immutable tag of an image: a digest of every file its build context keeps, its Dockerfile, stage and
    build arguments (one Dockerfile builds several services' images).

    Args:
        context: The build context directory (the repository root).
        dockerfile: The Dockerfile's path relative to ``context``.
        target: The stage built, or None for the last.
        build_args: The build arguments passed to the Dockerfile.

    Returns:
        ``src-`` and 24 hex digits; equal trees give equal tags.
    """
    rules = _ignore_rules(context)
    digest = hashlib.sha256(f"{dockerfile}\0{target or ''}\0".encode())
    for key, value in sorted((build_args or {}).items()):
        digest.update(f"{key}={value}\0".encode())
    for relative in sorted(_context_files(context, rules) | {dockerfile}):
        digest.update(relative.encode() + b"\0" + hashlib.sha256((context / relative).read_bytes()).digest())
    return TAG_PREFIX + digest.hexdigest()[:24]


def _context_files(context: Path, rules: list[tuple[bool, str]]) -> set[str]:
    """Relative paths of the files the build context keeps, not descending into directories it drops whole."""
    keep_patterns = [pattern for keep, pattern in rules if keep]
    found: set[str] = set()
    for directory, subdirectories, files in os.walk(context):
        base = Path(directory).relative_to(context).as_posix()
        prefix = "" if base == "." else f"{base}/"
        subdirectories[:] = [
            d
            for d in subdirectories
            if _kept(prefix + d, rules) or any(p.startswith(prefix + d + "/") for p in keep_patterns)
        ]
        found.update(prefix + f for f in files if _kept(prefix + f, rules))
    return found


def lifecycle_policy(keep_images: int) -> str:
    """ECR lifecycle: only images beyond the newest ``keep_images`` pushes of this program expire.

    Nothing expires by age and untagged images are left alone: a task definition (the one a rollback returns to)
    names its image by digest, and that digest must still exist when ECS pulls it again.
    """
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Keep the newest {keep_images} builds (rollback history)",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPrefixList": [TAG_PREFIX],
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_images,
                    },
                    "action": {"type": "expire"},
                }
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
    """Build each image from its service's Dockerfile with the service's build arguments
    (:mod:`services.common.topology`; context: the repository root) and push it; false uses ``prebuilt``."""
    context: str = "."
    platform: str = "linux/amd64"
    keep_images: int = 30
    """Builds kept per repository: the deployments a task definition can be rolled back across."""
    force_delete: bool = False
    """Let ``pulumi destroy`` delete the repositories with their images (a throw-away stack only)."""

    def __post_init__(self) -> None:
        for spec in self.images:
            if self.build and spec.prebuilt:
                raise ValueError(f"build=True conflicts with prebuilt image for {spec.service}; choose one")
            if not self.build and "@sha256:" not in spec.prebuilt:
                raise ValueError(f"build=False needs a prebuilt image pinned by digest for {spec.service}")
        if self.keep_images < 10:
            raise ValueError("keep_images below 10 would expire images that rollbacks still need")


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
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
            force_delete=self._args.force_delete,
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
        service = facts(spec.service)
        build_args = service.build_args()
        tag = content_tag(Path(self._args.context), service.dockerfile, spec.target, build_args)
        image = docker.Image(
            f"{self._name}-{spec.service}-image",
            image_name=pulumi.Output.concat(repo.repository_url, ":", tag),
            build=docker.DockerBuildArgs(
                context=self._args.context,
                dockerfile=f"{self._args.context}/{service.dockerfile}",
                args=build_args,
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
