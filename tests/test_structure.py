"""The layout's bars, checked on the real tree and shown to catch a bad synthetic one.

- A service package (gateway, embeddings, search, geometric: the names in ``services.common.topology.SERVICES``)
  imports no other service's modules, and the shared packages (``services.common``, ``services.collection``,
  ``services.decision``) import no service at all.
- ``tools/`` reaches service code only through the shared packages. There is no shared clients package: the CLI
  talks to a running gateway over HTTP and decodes its answers with the wire schemas of ``services.common.schemas``;
  the gateway's own HTTP clients (``services/gateway/clients.py``) are the gateway's.
- No function outside ``tests/`` is longer than 60 lines.
- The object-id pattern is written once in the non-test source (``services.common.schemas.OBJECT_ID_PATTERN``),
  found by behaviour: any string or JavaScript regex that accepts and refuses the same probe ids as it counts.
- ``tests/`` mirrors the source tree: each folder of tests names a folder of source (``tests/integration`` aside, it
  runs the whole stack as processes).

Each check is a function of a repository root, so each is also run on a small synthetic tree that breaks it.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.schemas import OBJECT_ID_PATTERN
from services.common.topology import SERVICES

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("services", "tools", "components", "bench")
"""Folders of non-test source; the top-level ``*.py`` (the Pulumi ``__main__.py``) counts too."""
SHARED_PACKAGES = ("common", "collection", "decision")
"""Packages under ``services/`` that every service and tool may import."""
MAX_FUNCTION_LINES = 60
CROSS_CUTTING_TESTS = ("integration",)
"""Folders of ``tests/`` that test the whole system rather than one package."""

ID_ACCEPTED = ("mcv_bbdd_00018", "A1", "x", "a.b-c_d", "Z" * 128, "0.jpg")
ID_REFUSED = ("", "-a", ".a", "_a", "a/b", "a b", "a" * 129, "é", "../x", "a\nb")


def _python_files(root: Path) -> Iterator[Path]:
    """Non-test Python source below ``root``: the source folders and top-level modules."""
    yield from sorted(root.glob("*.py"))
    for folder in SOURCE_DIRS:
        yield from sorted(p for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """Every name ``path`` imports as a dotted path (``from a.b import c`` is ``a.b.c``; relative imports resolved),
    with its line; ``import_module`` and ``__import__`` calls with a constant name count too."""
    package = _module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _service_of(module: str, services: tuple[str, ...]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" and parts[1] in services else None


def _module_files(root: Path) -> dict[str, Path]:
    """Every module below ``services/``, by dotted name (a package by its ``__init__.py``)."""
    return {_module_name(root, p): p for p in (root / "services").rglob("*.py") if "__pycache__" not in p.parts}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported dotted name lives in: the longest prefix that is a module (``a.b.C`` is ``a.b``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def cross_service_imports(root: Path, services: tuple[str, ...]) -> list[str]:
    """Ways a service reaches another service's modules: directly, or through the modules it imports (a shared
    package's module that imports a service counts once a service imports it; one only tools import does not)."""
    modules = _module_files(root)
    edges = {
        name: [(line, _resolve(imported, modules) or imported) for line, imported in _imports(root, path)]
        for name, path in modules.items()
    }
    found = set()
    for service in services:
        start = sorted(m for m in modules if _service_of(m, services) == service)
        chains: dict[str, list[str]] = {m: [m] for m in start}
        queue = list(start)
        while queue:
            module = queue.pop(0)
            for line, target in edges[module]:
                other = _service_of(target, services)
                if other is not None and other != service:
                    via = " -> ".join(chains[module][1:])
                    found.add(
                        f"{modules[module].relative_to(root)}:{line}: {target} (service {other!r}) is reached from the "
                        f"service {service!r}"
                        + (f" through {chains[module][0]} -> {via}" if via else "")
                        + "; move what both need to services/common, collection or decision"
                    )
                elif other is None and target in modules and target not in chains:
                    chains[target] = [*chains[module], target]
                    queue.append(target)
    return sorted(found)


def tool_imports_outside_shared(root: Path) -> list[str]:
    """Imports of service code by ``tools/`` that bypass the shared packages."""
    allowed = tuple(f"services.{name}" for name in SHARED_PACKAGES)
    found = []
    for path in sorted((root / "tools").rglob("*.py")):
        for line, module in _imports(root, path):
            if (module == "services" or module.startswith("services.")) and not module.startswith(allowed):
                found.append(
                    f"{path.relative_to(root)}:{line}: imports {module}; tools reach service code only through "
                    f"{', '.join(allowed)}"
                )
    return sorted(set(found))


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Functions of non-test source longer than ``limit`` lines, from ``def`` to their last line."""
    found = []
    for path in _python_files(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found.append(
                        f"{path.relative_to(root)}:{node.lineno}: {node.name} is {lines} lines (limit {limit})"
                    )
    return found


def _behaves_like_object_id(pattern: str) -> bool:
    if len(pattern) > 200:
        return False
    try:
        with warnings.catch_warnings():  # some source strings look like odd regexes to re (nested sets)
            warnings.simplefilter("ignore")
            compiled = re.compile(pattern)
    except (re.error, RecursionError, ValueError):
        return False
    return all(compiled.fullmatch(s) for s in ID_ACCEPTED) and not any(compiled.fullmatch(s) for s in ID_REFUSED)


_JS_REGEX = re.compile(r"/(\^[^/\n]+?\$?)/[a-z]*")


def object_id_patterns(root: Path) -> list[str]:
    """Places in non-test source (Python strings, JavaScript regex literals) that write an object-id pattern."""
    found = []
    for path in _python_files(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _behaves_like_object_id(node.value):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    scripts = [p for folder in SOURCE_DIRS for p in (root / folder).rglob("*") if p.suffix in (".js", ".html")]
    for path in sorted(scripts):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if any(_behaves_like_object_id(m) for m in _JS_REGEX.findall(text)):
                found.append(f"{path.relative_to(root)}:{number}")
    return found


def unmirrored_test_folders(root: Path) -> list[str]:
    """Folders of ``tests/`` holding tests whose path names no folder of the source tree."""
    tests = root / "tests"
    folders = sorted({p.parent for p in tests.rglob("test_*.py")} - {tests})
    found = []
    for folder in folders:
        relative = folder.relative_to(tests)
        if relative.parts[0] in CROSS_CUTTING_TESTS:
            continue
        if not (root / relative).is_dir():
            found.append(f"tests/{relative.as_posix()}: no source folder {relative.as_posix()}/ to mirror")
    return found


SERVICE_NAMES = tuple(SERVICES)


# The real tree.


def test_no_service_imports_another_services_modules() -> None:
    assert {"gateway", "embeddings", "search", "geometric"} <= set(SERVICE_NAMES)  # a new service is checked too
    assert cross_service_imports(ROOT, SERVICE_NAMES) == []


def test_tools_reach_service_code_only_through_the_shared_packages() -> None:
    assert tool_imports_outside_shared(ROOT) == []


def test_no_function_outside_tests_is_longer_than_60_lines() -> None:
    assert long_functions(ROOT) == []


def test_the_object_id_pattern_is_written_once_in_the_source() -> None:
    assert _behaves_like_object_id(OBJECT_ID_PATTERN)
    assert [place.split(":")[0] for place in object_id_patterns(ROOT)] == ["services/common/schemas.py"]


def test_tests_mirror_the_source_tree() -> None:
    assert unmirrored_test_folders(ROOT) == []
    for package in ("services/gateway", "services/search", "services/collection", "tools/cli", "components"):
        assert (ROOT / "tests" / package).is_dir(), package


# Synthetic trees that break each bar: the checks are not vacuous.


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from services.search.live_index import LiveIndex\n", "services.search.live_index"),
        ("import services.search.app\n", "services.search.app"),
        ("from services.search import app\n", "services.search.app"),
        ("from ..search import live_index\n", "services.search.live_index"),
        ("def f():\n    from services.search import app\n", "services.search.app"),
        ("import importlib\nimportlib.import_module('services.search.app')\n", "services.search.app"),
    ],
)
def test_a_service_importing_another_service_is_caught(tmp_path: Path, source: str, expected: str) -> None:
    root = _write(tmp_path, {"services/gateway/app.py": source, "services/search/app.py": "X = 1\n"})

    found = cross_service_imports(root, ("gateway", "search"))

    assert found and all("services/gateway/app.py" in f and "'gateway'" in f for f in found)
    assert any(expected in f for f in found)


def test_a_service_reaching_another_through_a_shared_package_is_caught_and_a_tools_only_bridge_is_not(
    tmp_path: Path,
) -> None:
    root = _write(
        tmp_path,
        {
            # a shared module that imports the geometric service, imported by the gateway: caught
            "services/collection/doctor.py": "def check():\n    from services.geometric.verify import verify_pair\n",
            "services/gateway/state.py": "from services.collection import doctor\n",
            # a bridge for the command line (like services/collection/local.py), imported by no service: allowed
            "services/collection/local.py": "from services.embeddings.model import TimmEmbedder\n",
            # a service importing its own modules and the shared ones: allowed
            "services/geometric/app.py": "from services.geometric.verify import x\nfrom services.common import e\n",
            "services/geometric/verify.py": "from .app import y\n",
            "services/common/e.py": "",
            "services/embeddings/model.py": "",
        },
    )

    assert cross_service_imports(root, ("gateway", "geometric", "embeddings")) == [
        "services/collection/doctor.py:2: services.geometric.verify (service 'geometric') is reached "
        "from the service 'gateway' through services.gateway.state -> services.collection.doctor; move what both "
        "need to services/common, collection or decision",
    ]


def test_a_tool_importing_a_service_module_is_caught(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "tools/cli/build.py": (
                "from services.collection.layout import Snapshot\n"
                "from services.common.schemas import IdentifyResponse\n"
                "from services.decision.rule import decide\n"
                "from services.geometric.verify import extract_features\n"
            ),
            "tools/cli/serve.py": "import services.gateway.app\n",
            "tools/cli/run.py": "from services import __main__\nfrom services import collection\n",
        },
    )

    found = tool_imports_outside_shared(root)

    assert [f.split(": imports ")[0] for f in found] == [
        "tools/cli/build.py:4",
        "tools/cli/run.py:1",
        "tools/cli/serve.py:1",
    ]
    assert "services.geometric.verify.extract_features" in found[0]


def test_a_function_over_60_lines_outside_tests_is_caught(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    root = _write(
        tmp_path,
        {
            "services/search/long.py": f"def long_one():\n{body}",
            "services/search/short.py": "def short_one():\n" + "".join(f"    x{i} = {i}\n" for i in range(59)),
            "tests/test_long.py": f"def test_long():\n{body}",
            "__main__.py": f"async def top():\n{body}",
        },
    )

    assert long_functions(root) == [
        "__main__.py:1: top is 61 lines (limit 60)",
        "services/search/long.py:1: long_one is 61 lines (limit 60)",
    ]


def test_a_second_object_id_pattern_is_caught_whatever_its_spelling(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "services/common/schemas.py": f"OBJECT_ID_PATTERN = {OBJECT_ID_PATTERN!r}\n",
            "services/search/app.py": 'ID = r"^[a-zA-Z0-9][a-zA-Z0-9_.\\-]{0,127}$"\nOTHER = r"^[a-z]+$"\n',
            "services/gateway/web/app.js": "const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;\nconst N = /^\\d+$/;\n",
            "tests/test_ids.py": f"PATTERN = {OBJECT_ID_PATTERN!r}\n",
        },
    )

    assert object_id_patterns(root) == [
        "services/common/schemas.py:1",
        "services/search/app.py:1",
        "services/gateway/web/app.js:1",
    ]


def test_a_test_folder_without_a_source_folder_is_caught(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "services/gateway/app.py": "",
            "tests/services/gateway/test_app.py": "",
            "tests/services/fuzz/test_openapi.py": "",
            "tests/integration/test_stack.py": "",
            "tests/test_structure.py": "",
        },
    )

    assert unmirrored_test_folders(root) == ["tests/services/fuzz: no source folder services/fuzz/ to mirror"]
