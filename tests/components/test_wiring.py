"""components/wiring.py: every task is placed by the services' one environment builder, from their declared facts."""

from __future__ import annotations

import json

from components.container import health_command
from components.plan.recorder import Plan
from components.wiring import EFS_CLIENTS, SNAPSHOT_DIR
from services.common.topology import SERVICES, service_environment


def container(plan: Plan, service: str) -> dict[str, object]:
    task = plan.named(f"{plan.project}-{plan.stack}-{service}-task").inputs
    return dict(json.loads(str(task["containerDefinitions"]))[0])


def test_each_task_has_the_environment_the_shared_builder_gives_it_under_service_discovery(any_plan: Plan) -> None:
    namespace = f"{any_plan.project}-{any_plan.stack}.internal"
    for name in SERVICES:
        env = {e["name"]: e["value"] for e in container(any_plan, name)["environment"]}  # type: ignore[attr-defined]
        placed = service_environment(name, host="0.0.0.0", snapshot_dir=SNAPSHOT_DIR, backend_domain=namespace)
        assert placed.items() <= env.items(), name
        assert {key for key in env if key.endswith("_URL")} == {key for key in placed if key.endswith("_URL")}


def test_each_task_listens_and_is_health_checked_where_its_facts_say(any_plan: Plan) -> None:
    for name, facts in SERVICES.items():
        definition = container(any_plan, name)
        assert definition["portMappings"] == [{"containerPort": facts.port, "protocol": "tcp"}]
        check = definition["healthCheck"]
        assert check["command"] == health_command(facts.port, facts.health_path)  # type: ignore[index]
        assert check["startPeriod"] == facts.start_period_s  # type: ignore[index]
    assert {name for name, facts in SERVICES.items() if facts.reads_snapshot} == EFS_CLIENTS


def test_the_load_balancer_checks_the_gateways_health_path_on_its_port(any_plan: Plan) -> None:
    [group] = any_plan.of_type("aws:lb/targetGroup:TargetGroup")
    gateway = SERVICES["gateway"]
    assert (group.inputs["port"], group.inputs["healthCheck"]["path"]) == (gateway.port, gateway.health_path)
