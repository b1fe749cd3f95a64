"""Clowder's ``cdappconfig.json`` for tests: built from the real services' addresses and checked
against Clowder's own schema (a copy in tests/fixtures/clowder/) before it is written, so every
file a test hands to etl is one Clowder could have written."""

from __future__ import annotations

import json
import os
import urllib.parse
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from psycopg.conninfo import conninfo_to_dict

from tests.helpers.services import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "clowder"
SCHEMA = FIXTURES / "cdappconfig.schema.json"
EXAMPLE = FIXTURES / "cdappconfig.json"


@cache
def _validator() -> Any:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(doc: Any) -> list[str]:
    """What Clowder's schema finds wrong with ``doc``: one line per problem, none if valid."""
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in _validator().iter_errors(doc)
    ]


def document(
    *,
    brokers: list[dict[str, Any]] | None = None,
    topics: dict[str, str] | None = None,
    database: dict[str, Any] | None = None,
    pushgateway: str | None = None,
) -> dict[str, Any]:
    """A cdappconfig.json document with the sections given (``topics``: requested -> real)."""
    doc: dict[str, Any] = {"metricsPort": 9000, "metricsPath": "/metrics", "logging": {"type": ""}}
    if brokers is not None or topics is not None:
        doc["kafka"] = {
            "brokers": brokers or [],
            "topics": [{"requestedName": r, "name": n} for r, n in (topics or {}).items()],
        }
    if database is not None:
        doc["database"] = database
    if pushgateway is not None:
        parts = urllib.parse.urlsplit(pushgateway)
        doc["prometheusGateway"] = {"hostname": parts.hostname, "port": parts.port}
    return doc


def broker(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """A broker entry for ``host:port``."""
    host, _, port = bootstrap.rpartition(":")
    return {"hostname": host, "port": int(port), **extra}


def database_of(dsn: str, *, password: str, ssl_mode: str = "disable") -> dict[str, Any]:
    """The database section for the server and database of ``dsn``, with ``password``."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    return {
        "hostname": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", "5432")),
        "name": params["dbname"],
        "username": params.get("user", "postgres"),
        "password": password,
        "adminUsername": "postgres",
        "adminPassword": password,
        "sslMode": ssl_mode,
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    """Check ``doc`` against Clowder's schema, then write it to ``path``."""
    errors = schema_errors(doc)
    assert errors == [], errors
    path.write_text(json.dumps(doc, indent=2))
    return path


def clowder_env(acg_config: Path, **extra: str) -> dict[str, str]:
    """The environment of a process configured by Clowder alone: no ``ETL_`` variable but
    those in ``extra``."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    return {**out, "ACG_CONFIG": str(acg_config), **extra}
