"""The shared fixtures' own contracts: the Docker fallback imports cleanly, the environment of
an offline test is clean."""

from __future__ import annotations

import importlib
import os

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "testcontainers.community.kafka",
        "testcontainers.community.postgres",
        "testcontainers.core.container",
    ],
)
def test_the_docker_fallbacks_modules_import_without_a_warning(module: str) -> None:
    """filterwarnings=error turns a deprecated import into a failure of every integration test
    on a machine that relies on Docker; no engine is needed to import."""
    importlib.import_module(module)


def test_an_offline_test_sees_none_of_etls_variables() -> None:
    leaked = [n for n in os.environ if n.startswith("ETL_") or n in ("ACG_CONFIG", "SENTRY_DSN")]
    assert leaked == []
