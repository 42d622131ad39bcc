"""What ``pulumi destroy`` and later deployments need: deletable throw-away stacks, immutable content tags and an
image history deep enough for rollbacks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from components.images import TAG_PREFIX, ContainerImages, ContainerImagesArgs, ImageSpec, content_tag, lifecycle_policy
from components.plan.recorder import Plan
from services.common.topology import SERVICES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("stack", "deletable"), [("demo", True), ("production", False)])
def test_only_the_demo_stack_deletes_repositories_and_bucket_with_their_contents(
    stack: str, deletable: bool, demo_plan: Plan, production_plan: Plan
) -> None:
    plan = demo_plan if stack == "demo" else production_plan
    repositories = plan.of_type("aws:ecr/repository:Repository")
    assert len(repositories) == 4
    assert {r.inputs.get("forceDelete", False) for r in repositories} == {deletable}
    assert {b.inputs.get("forceDestroy", False) for b in plan.of_type("aws:s3/bucket:Bucket")} == {deletable}


def test_destroy_is_not_blocked_by_registered_instances_or_protected_gpu_nodes(any_plan: Plan) -> None:
    for registry in any_plan.of_type("aws:servicediscovery/service:Service"):
        assert registry.inputs["forceDestroy"] is True, registry.name
    if any_plan.stack == "production":
        [group] = any_plan.of_type("aws:autoscaling/group:Group")
        assert (group.inputs["protectFromScaleIn"], group.inputs["forceDelete"]) == (True, True)


def test_image_tags_are_immutable_and_name_the_content(any_plan: Plan) -> None:
    assert {r.inputs["imageTagMutability"] for r in any_plan.of_type("aws:ecr/repository:Repository")} == {"IMMUTABLE"}
    tags = [image.inputs["imageName"].rsplit(":", 1)[1] for image in any_plan.of_type("docker:index/image:Image")]
    assert len(tags) == 4 and all(re.fullmatch(TAG_PREFIX + "[0-9a-f]{24}", tag) for tag in tags)
    assert len(set(tags)) == 4, "each image's tag names its own Dockerfile, stage and build arguments"


def test_images_are_pushed_under_the_tag_of_their_build_context(run_component, tmp_path: Path) -> None:
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    for service in ("gateway", "embeddings"):
        (tmp_path / SERVICES[service].dockerfile).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / SERVICES[service].dockerfile).write_text(f"FROM {service}\n")
    specs = [ImageSpec("gateway"), ImageSpec("search"), ImageSpec("embeddings", "cpu")]
    plan = run_component(lambda: ContainerImages("img", ContainerImagesArgs("p", specs, context=str(tmp_path))))
    tags = {}
    for spec in specs:
        facts = SERVICES[spec.service]
        tags[spec.service] = content_tag(tmp_path, facts.dockerfile, spec.target, facts.build_args())
        name = plan.named(f"img-{spec.service}-image").inputs["imageName"]
        assert name == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/p/{spec.service}:{tags[spec.service]}"
    assert tags["gateway"] != tags["search"], "one Dockerfile, two services: the build arguments tell them apart"


def test_content_tag_changes_with_kept_files_only(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    (tmp_path / "services" / "gateway").mkdir(parents=True)
    (tmp_path / "services" / "gateway" / "Dockerfile").write_text("FROM python\n")
    (tmp_path / "services" / "gateway" / "app.py").write_text("print(1)\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "tests").mkdir()
    first = content_tag(tmp_path, "services/gateway/Dockerfile", None)
    assert first.startswith(TAG_PREFIX) and len(first) == len(TAG_PREFIX) + 24
    (tmp_path / "tests" / "test_x.py").write_text("x = 1\n")
    (tmp_path / "services" / "gateway" / "__pycache__").mkdir()
    (tmp_path / "services" / "gateway" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    assert content_tag(tmp_path, "services/gateway/Dockerfile", None) == first
    assert content_tag(tmp_path, "services/gateway/Dockerfile", "cpu") != first
    assert content_tag(tmp_path, "services/gateway/Dockerfile", None, {"PORT": "1"}) != first
    assert content_tag(tmp_path, "services/gateway/Dockerfile", None, {"PORT": "1", "SERVICE": "a"}) == content_tag(
        tmp_path, "services/gateway/Dockerfile", None, {"SERVICE": "a", "PORT": "1"}
    )
    (tmp_path / "services" / "gateway" / "app.py").write_text("print(2)\n")
    assert content_tag(tmp_path, "services/gateway/Dockerfile", None) != first


def test_editing_one_dockerfile_changes_only_the_tags_of_the_images_it_builds(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    (tmp_path / "services" / "embeddings").mkdir(parents=True)
    (tmp_path / "services" / "Dockerfile").write_text("FROM python\n")
    (tmp_path / "services" / "embeddings" / "Dockerfile").write_text("FROM cuda\n")
    slim = content_tag(tmp_path, "services/Dockerfile", None, {"SERVICE": "search"})
    embeddings = content_tag(tmp_path, "services/embeddings/Dockerfile", "cpu")
    (tmp_path / "services" / "embeddings" / "Dockerfile").write_text("FROM cuda:12\n")
    assert content_tag(tmp_path, "services/Dockerfile", None, {"SERVICE": "search"}) == slim
    assert content_tag(tmp_path, "services/embeddings/Dockerfile", "cpu") != embeddings


def test_lifecycle_keeps_thirty_builds_and_never_expires_by_age_or_untagged(any_plan: Plan) -> None:
    policies = any_plan.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert len(policies) == 4
    for policy in policies:
        [rule] = json.loads(policy.inputs["policy"])["rules"]
        selection = rule["selection"]
        assert (selection["tagStatus"], selection["tagPrefixList"]) == ("tagged", [TAG_PREFIX])
        assert (selection["countType"], selection["countNumber"]) == ("imageCountMoreThan", 30)


def test_a_shallow_image_history_is_refused() -> None:
    assert json.loads(lifecycle_policy(12))["rules"][0]["selection"]["countNumber"] == 12
    with pytest.raises(ValueError, match="keep_images below 10"):
        ContainerImagesArgs("p", [ImageSpec("gateway")], keep_images=3)
