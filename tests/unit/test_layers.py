"""The layering of etl (drawn in ``etl/__init__.py``) holds: arrows only point down, the pure
core imports no library that talks to a service, and each client library has one home."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "etl"

# Which etl layers each layer may import (its own included).
ALLOWED_LAYERS = {
    "core": {"core"},
    "kafka": {"core", "kafka"},
    "pg": {"core", "pg"},
    "metrics": {"core", "metrics"},
    "pipeline": {"core", "pipeline"},
    "cli": {"core", "kafka", "pg", "metrics", "pipeline", "cli"},
    "entry": {"cli"},
}
# The one layer that may import each client library (a prefix matches its submodules).
LIBRARY_HOME = {
    "confluent_kafka": "kafka",
    "psycopg": "pg",
    "prometheus_client": "metrics",
    "typer": "cli",
    "click": "cli",
    "rich": "cli",
    "sentry_sdk": "cli",
}
# Pure string composition and parsing, no connection: allowed in the core.
PURE_EXCEPTIONS = {"psycopg.sql", "psycopg.conninfo"}
# Standard modules under an I/O package that only parse strings.
PURE_STDLIB = {"urllib.parse"}
# Standard modules that do I/O over the network or run programs: never in the pure layers.
IMPURE_STDLIB = {"socket", "http", "urllib", "subprocess", "ssl", "select", "selectors"}
PURE_LAYERS = {"core", "pipeline"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[:2] in (["etl", "__main__"], ["etl"]):
        return "entry"
    return parts[1]


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        found.append((name.removesuffix(".__init__"), path))
    return found


def imports(path: Path) -> set[str]:
    """Every module imported anywhere in the file, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from psycopg import sql` is psycopg.sql: the names may be submodules
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offences(module: str, path: Path) -> list[str]:
    layer = layer_of(module)
    found = []
    for name in sorted(imports(path)):
        top = name.split(".")[0]
        if top == "etl" and name != "etl":
            target = layer_of(name)
            if target not in ALLOWED_LAYERS[layer] and target != "entry":
                found.append(f"{module} ({layer}) imports {name} ({target})")
        elif top in LIBRARY_HOME and LIBRARY_HOME[top] != layer:
            if layer == "core" and any(
                name == pure or name.startswith(f"{pure}.") for pure in PURE_EXCEPTIONS
            ):
                continue
            found.append(f"{module} ({layer}) imports {name}, whose home is {LIBRARY_HOME[top]}")
        elif layer in PURE_LAYERS and top in IMPURE_STDLIB and name not in PURE_STDLIB:
            found.append(f"{module} ({layer}) imports {name}, which does I/O")
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_follow_the_layers(module: str, path: Path) -> None:
    assert offences(module, path) == []


def test_nothing_outside_the_cli_imports_it() -> None:
    users = [
        module
        for module, path in modules()
        if layer_of(module) not in ("cli", "entry")
        and any(name.startswith("etl.cli") for name in imports(path))
    ]
    assert users == []


def test_the_rules_catch_an_arrow_pointing_up(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from etl.pg import sink\nimport psycopg\nimport socket\nfrom etl import cli\n")
    assert offences("etl.core.bad", bad) == [
        "etl.core.bad (core) imports etl.cli (cli)",
        "etl.core.bad (core) imports etl.pg.sink (pg)",
        "etl.core.bad (core) imports psycopg, whose home is pg",
        "etl.core.bad (core) imports socket, which does I/O",
    ]
    fine = tmp_path / "fine.py"
    fine.write_text("from psycopg import sql\nfrom psycopg.conninfo import make_conninfo\n")
    assert offences("etl.core.fine", fine) == []
