"""Stack configuration (declared keys, validation) and the offline ``infra plan`` command."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pulumi
import pytest
import yaml

from components.config import StackConfig, all_keys
from components.plan import recorder as offline
from tools.cli import infra

ROOT = Path(__file__).resolve().parents[2]
PULUMI_TYPES = {"int": "integer", "bool": "boolean", "str": "string", "secret": "string"}


def declared() -> dict[str, dict[str, object]]:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]


def test_every_key_the_program_reads_is_declared_with_type_default_and_description() -> None:
    declarations = declared()
    assert set(declarations) == set(all_keys())
    for key, kind in all_keys().items():
        decl = declarations[key]
        assert decl["type"] == PULUMI_TYPES[kind], key
        assert str(decl.get("description", "")).strip(), key
        assert ("default" in decl) is (kind != "secret"), key


@pytest.mark.parametrize("stack", ["demo", "production"])
def test_stack_files_set_only_declared_keys_and_the_region(stack: str) -> None:
    values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert values.pop("aws:region") == "eu-west-1"
    assert {key.removeprefix("artwork-matcher:") for key in values} <= set(declared())


def load(stack: str, **overrides: object) -> StackConfig:
    config = offline.stack_config(stack, overrides=overrides)
    holder: list[StackConfig] = []
    pulumi.runtime.set_all_config(config)
    pulumi.runtime.set_mocks(offline.RecordingMocks("eu-west-1"), "artwork-matcher", stack, preview=False)
    holder.append(StackConfig.load())
    return holder[0]


def test_stacks_differ_only_in_values_read_into_one_frozen_object() -> None:
    demo, production = load("demo"), load("production")
    assert (demo.az_count, production.az_count) == (2, 3)
    assert (demo.embeddings_on_gpu, production.embeddings_on_gpu) == (False, True)
    assert production.services["gateway"].max_tasks == 20
    with pytest.raises(AttributeError):
        demo.az_count = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"embeddingsMemory": 16384}, "embeddingsMemory=16384 does not fit gpuInstanceType=g4dn.xlarge"),
        ({"embeddingsCpu": 8192}, "embeddingsCpu=8192 does not fit gpuInstanceType=g4dn.xlarge"),
        ({"gpuInstanceType": "p9.mega"}, "gpuInstanceType=p9.mega is not one of"),
    ],
)
def test_gpu_tasks_that_would_not_fit_the_instance_type_are_rejected(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load("production", **overrides)
    assert load("production", embeddingsMemory=16384, gpuInstanceType="g4dn.2xlarge").gpu_instance_type


def test_every_supported_gpu_instance_type_is_priced() -> None:
    from components.gpu import GPU_INSTANCE_TYPES
    from components.plan.pricing import PRICES

    assert all(f"{name}_hour" in PRICES for name in GPU_INSTANCE_TYPES)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"enableHttps": True, "domainName": ""}, "enableHttps=true needs domainName"),
        ({"enableScheduledScaling": True}, "needs enableAutoscaling=true"),
        ({"gatewayImage": "repo@sha256:" + "a" * 64}, "buildImages=true conflicts"),
        ({"buildImages": False, "gatewayImage": "repo:latest"}, "pinned by digest"),
        ({"searchCpu": 256, "searchMemory": 4096}, "is not a Fargate size"),
        ({"gatewayMinTasks": 3, "gatewayMaxTasks": 2}, "gatewayMinTasks <= gatewayMaxTasks"),
        ({"azCount": 1}, "azCount must be between 2"),
        ({"natGateways": "two"}, "natGateways must be one of none, single, per-az"),
        ({"embeddingsOnGpu": True, "embeddingsCpu": 1024, "gpuNodesMax": 1}, "embeddingsOnGpu=true needs natGateways"),
        ({"enableHttps": True, "domainName": "a.b", "hostedZoneId": "Z1", "certificateArn": "arn:c"}, "conflict"),
        ({"certificateArn": "arn:c"}, "need enableHttps=true"),
    ],
)
def test_bad_configuration_is_rejected_with_the_keys_to_fix(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load("demo", **overrides)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="artwork-matcher")
    infra.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def test_plan_prints_resources_by_component_and_a_demo_total_within_budget(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    args = parse("infra", "plan", "--stack", "demo", "--json")
    assert args.func(args) == 0
    assert time.perf_counter() - started < 30
    report = json.loads(capsys.readouterr().out)
    assert 50 <= report["monthly_total_usd"] <= 100, "the demo tier is at most $100 a month"
    assert "artwork-matcher-demo-net" in report["components"]
    services = [
        r for r in report["components"]["artwork-matcher-demo-embeddings"] if r["type"] == "aws:ecs/service:Service"
    ]
    assert services and services[0]["monthly_usd"] > 0
    assert report["prices"]["region"] == "eu-west-1" and report["prices"]["as_of"]


def test_plan_table_for_production_prices_the_gpu_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("infra", "plan", "--stack", "production")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "g4dn.xlarge" in out and "Estimated total: $" in out
    assert "eu-west-1 on-demand list prices as of" in out


def test_plan_says_what_to_do_when_https_cannot_get_a_certificate(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("infra", "plan", "--stack", "production", "--config", "hostedZoneId=")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "WARNING (pulumi up prints this too): enableHttps=true but neither hostedZoneId" in out
    assert "pulumi config set hostedZoneId" in out
    assert "Listener" in out and "Certificate" not in out


def test_plan_rejects_a_config_override_without_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("infra", "plan", "--stack", "demo", "--config", "hostedZoneId")
    assert args.func(args) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_plan_rejects_an_unknown_stack() -> None:
    with pytest.raises(SystemExit):
        parse("infra", "plan", "--stack", "staging")


def header(stack: str) -> str:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    return text[: text.index("config:")]


@pytest.mark.parametrize("stack", ["demo", "production"])
def test_each_stack_file_says_how_to_set_every_key_without_a_default(stack: str) -> None:
    required = [key for key, decl in declared().items() if "default" not in decl]
    assert required == ["gatewayApiKey"]
    for key in required:
        kind = "--secret " if declared()[key].get("secret") else ""
        assert f"pulumi config set {kind}{key} " in header(stack), key
        assert f"--stack {stack}" in header(stack)


def test_production_says_how_to_set_its_domain_and_the_source_of_its_certificate() -> None:
    for key in ("domainName", "hostedZoneId", "certificateArn", "alarmEmail"):
        assert f"pulumi config set {key} " in header("production"), key


def test_the_preview_workflow_sets_the_secret_in_the_stack_where_pulumi_reads_it() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = workflow["jobs"]["preview"]["steps"]
    everywhere = [workflow["jobs"]["preview"].get("env", {}), *(step.get("env", {}) for step in steps)]
    assert not [
        k for env in everywhere for k in env if k.startswith("PULUMI_CONFIG_") and k != "PULUMI_CONFIG_PASSPHRASE"
    ]
    [setter] = [i for i, step in enumerate(steps) if "pulumi config set --secret gatewayApiKey" in step.get("run", "")]
    assert steps[setter]["env"]["GATEWAY_API_KEY"] == "${{ secrets.GATEWAY_API_KEY }}"
    assert '"$GATEWAY_API_KEY" | pulumi config set --secret gatewayApiKey' in steps[setter]["run"]
    [preview] = [i for i, step in enumerate(steps) if step.get("with", {}).get("command") == "preview"]
    assert setter < preview
    assert [s for s in steps[:setter] if s.get("uses", "").startswith("pulumi/actions@") and not s.get("with")]
