"""Run the Pulumi program offline under mocks, recording every resource it registers.

Used by ``artwork-matcher infra plan`` and by ``tests/components``. No cloud account, Pulumi CLI or network is
needed: :class:`RecordingMocks` answers every resource registration and the few invokes the program makes
(zones, region, the GPU AMI parameter, the ECR token) with fixed, plausible values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import runpy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.settings import SETTINGS, get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: ``Pulumi.yaml``, the stack files and ``__main__.py`` live here."""

ACCOUNT = "123456789012"
PLACEHOLDER_SECRET = "offline-plan-placeholder"


@dataclasses.dataclass(frozen=True)
class Registration:
    """One resource the program registered: its type token, logical name, inputs and place in the tree."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    parent_urn: str
    urn: str
    custom: bool
    ignore_changes: tuple[str, ...]
    dependencies: frozenset[str] = frozenset()
    """URNs this resource waits for: its explicit ``depends_on`` and every resource an input's output came from."""
    property_dependencies: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    """Per input property (camelCase), the URNs its value came from."""
    provider: str = ""
    """The provider reference (``<provider urn>::<id>``) the engine would use; empty for components."""

    @property
    def parent_name(self) -> str:
        """The logical name of the parent (the stack's name for top-level components)."""
        return self.parent_urn.rsplit("::", 1)[-1]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one offline run produced: every registration in order, and the resolved stack exports."""

    project: str
    stack: str
    registrations: list[Registration]
    exports: Mapping[str, Any]
    warnings: list[str] = dataclasses.field(default_factory=list)
    """Messages the program logged with ``pulumi.log.warn`` (``pulumi up`` prints them too)."""

    def of_type(self, type_token: str) -> list[Registration]:
        """Registrations of one type; raises if there are none, so a check over them cannot pass vacuously."""
        found = [r for r in self.registrations if r.type == type_token]
        if not found:
            raise AssertionError(f"no {type_token} was registered")
        return found

    def named(self, name: str) -> Registration:
        """The one registration with this logical name."""
        found = [r for r in self.registrations if r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one resource named {name!r}, found {len(found)}")
        return found[0]

    def children(self, parent: Registration) -> list[Registration]:
        """Direct children of a resource (a component's own resources)."""
        return [r for r in self.registrations if r.parent_urn == parent.urn]

    def child_types(self, parent: Registration) -> list[str]:
        """Sorted short type names (``Subnet``) of a component's direct children."""
        return sorted(r.type.rsplit(":", 1)[-1] for r in self.children(parent))

    def upstream(self, resource: Registration) -> set[str]:
        """Every URN ``resource`` waits for before the engine creates it, directly or through what it waits for.

        Built from the dependencies each registration carried (explicit ``depends_on`` and output dependencies),
        so it is the order ``pulumi up`` would create things in, and the reverse of the order ``destroy`` uses.
        """
        by_urn = {r.urn: r for r in self.registrations}
        seen: set[str] = set()
        pending = list(resource.dependencies)
        while pending:
            urn = pending.pop()
            if urn not in seen:
                seen.add(urn)
                pending.extend(by_urn[urn].dependencies if urn in by_urn else ())
        return seen

    def waits_for(self, resource: Registration, other: Registration) -> bool:
        """Whether ``resource`` is created only after ``other`` exists (directly or transitively)."""
        return other.urn in self.upstream(resource)


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs back with plausible computed outputs and answer the program's invokes."""

    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Return a deterministic id and the inputs plus the outputs the program reads."""
        state = dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        state.setdefault("arn", f"arn:aws:{service}:{self.region}:{ACCOUNT}:{args.name}")
        state.setdefault("name", args.name)
        computed: dict[str, dict[str, Any]] = {
            "aws:lb/loadBalancer:LoadBalancer": {
                "arnSuffix": f"app/{args.name}/0123456789",
                "dnsName": "alb.test",
                "zoneId": "Z32O12XQLNTSW2",
            },
            "aws:route53/record:Record": {"fqdn": str(args.inputs.get("name", "")).rstrip(".")},
            "aws:lb/targetGroup:TargetGroup": {"arnSuffix": f"targetgroup/{args.name}/0123456789"},
            "aws:ecr/repository:Repository": {
                "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{state['name']}",
                "registryId": ACCOUNT,
            },
            "aws:acm/certificate:Certificate": {
                "domainValidationOptions": [
                    {
                        "domainName": args.inputs.get("domainName", ""),
                        "resourceRecordName": "_x.example.org.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": "_y.acm-validations.aws.",
                    }
                ]
            },
        }
        state.update(computed.get(args.typ, {}))
        if args.typ == "docker:index/image:Image":
            repo = str(args.inputs.get("imageName", args.name)).rsplit(":", 1)[0]
            digest = hashlib.sha256(args.name.encode()).hexdigest()
            state["repoDigest"] = f"{repo}@sha256:{digest}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Answer the invokes the program makes; any other invoke is an error, so new ones get mocked on purpose."""
        zones = [f"{self.region}{z}" for z in "abc"]
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": {
                "names": zones,
                "zoneIds": [f"euw1-az{i}" for i in (1, 2, 3)],
                "id": self.region,
            },
            "aws:index/getRegion:getRegion": {"region": self.region, "name": self.region, "id": self.region},
            "aws:index/getCallerIdentity:getCallerIdentity": {"accountId": ACCOUNT, "id": ACCOUNT},
            "aws:ssm/getParameter:getParameter": {
                "name": args.args.get("name", ""),
                "value": "ami-0offline0gpu00000",
                "insecureValue": "ami-0offline0gpu00000",
                "type": "String",
                "id": args.args.get("name", ""),
            },
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": {
                "userName": "AWS",
                "password": "offline-token",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com",
                "authorizationToken": "QVdTOm9mZmxpbmU=",
                "expiresAt": "2099-01-01T00:00:00Z",
                "id": self.region,
            },
        }
        if args.token not in answers:
            raise NotImplementedError(f"offline mocks do not answer invoke {args.token}")
        return answers[args.token], []


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps, in order, each registration's parent, ``ignore_changes``, provider and the
    resources it waits for.

    Pulumi's ``MockMonitor`` passes only inputs to :meth:`RecordingMocks.new_resource`; the register request itself
    carries ``dependencies`` (explicit ``depends_on`` plus every output dependency) and ``propertyDependencies``,
    which is what lets tests check creation order.
    """

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method's name
        """Record the request, then let the mocks answer it."""
        # pulumi's MockMonitor is unannotated
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    inputs=_plain(inputs),
                    parent_urn=request.parent,
                    urn=response.urn,
                    custom=bool(request.custom),
                    ignore_changes=tuple(request.ignoreChanges),
                    dependencies=frozenset(request.dependencies),
                    property_dependencies={
                        key: frozenset(deps.urns) for key, deps in request.propertyDependencies.items()
                    },
                    provider=request.provider,
                )
            )
        return response


def stack_config(stack: str, root: Path = ROOT, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Merge ``Pulumi.yaml`` defaults, ``Pulumi.<stack>.yaml`` values and overrides into Pulumi's config map.

    Keys come back fully qualified (``artwork-matcher:azCount``) with string values, as the engine passes them.
    A declared secret with no value gets a placeholder, since an offline run never deploys it.
    """
    project_file = yaml.safe_load((root / "Pulumi.yaml").read_text())
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise FileNotFoundError(f"no stack file {stack_file.name}; stacks are demo and production")
    project = project_file["name"]
    merged: dict[str, Any] = {}
    for key, decl in project_file.get("config", {}).items():
        if "default" in decl:
            merged[f"{project}:{key}"] = decl["default"]
        elif decl.get("secret"):
            merged[f"{project}:{key}"] = PLACEHOLDER_SECRET
    merged.update((yaml.safe_load(stack_file.read_text()) or {}).get("config", {}))
    for key, value in (overrides or {}).items():
        merged[key if ":" in key else f"{project}:{key}"] = value
    return {key: _config_string(value) for key, value in merged.items()}


def run(stack: str, root: Path = ROOT, overrides: Mapping[str, Any] | None = None) -> Plan:
    """Run ``__main__.py`` for one stack under mocks (``preview=False``, so every output is known).

    Args:
        stack: ``demo`` or ``production``.
        root: The directory holding ``Pulumi.yaml`` and ``__main__.py``.
        overrides: Extra config values (short or qualified keys) applied over the stack file.

    Returns:
        Every registration and the resolved exports.
    """
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())["name"]
    program = str(root / "__main__.py")

    def program_main() -> None:
        # the CLI runs a program from its project directory; relative paths (the image build context) need that
        with contextlib.chdir(root):
            runpy.run_path(program, run_name="__pulumi_main__")

    return run_function(program_main, project, stack, stack_config(stack, root, overrides))


def run_function(body: Callable[[], None], project: str, stack: str, config: Mapping[str, str] | None = None) -> Plan:
    """Run ``body`` (a program, or a test's components) under recording mocks and wait for every registration.

    Args:
        body: Creates resources; it runs inside the Pulumi runtime.
        project: Project name the mocks report (``pulumi.get_project()``).
        stack: Stack name the mocks report.
        config: Fully qualified config map (see :func:`stack_config`).

    Returns:
        The registrations and resolved exports of this run only.
    """
    config = dict(config or {})
    mocks = RecordingMocks(config.get("aws:region", "eu-west-1"))
    monitor = RecordingMonitor(mocks)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    log = _WarningLog()
    pulumi.runtime.set_all_config(config, [k for k, v in config.items() if v == PLACEHOLDER_SECRET])
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=log.logger)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    outputs: dict[str, Any] = getattr(get_root_resource(), "outputs", {})
    outputs.clear()
    _sync_await(run_pulumi_func(body))
    exports = _sync_await(pulumi.Output.from_input(dict(outputs)).future()) if outputs else {}
    return Plan(project, stack, list(monitor.registrations), exports or {}, list(log.messages))


class _WarningLog(logging.Handler):
    """Collects what the program logs at warning level or above through the mocked engine."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.logger = logging.Logger("artwork-matcher.offline")
        self.logger.addHandler(self)
        self.logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _plain(value: Any) -> Any:
    """Strip Pulumi's secret wrappers and unknowns from deserialized inputs so tests see plain data."""
    if isinstance(value, dict):
        if value.get(pulumi.runtime.rpc._special_sig_key) == pulumi.runtime.rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
