"""Every command invocation loads the configuration once and sets up logging once."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from etl.cli import logs
from etl.cli.app import app
from etl.core import config_sources

NO_ETL_ENV: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ETL_")}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the configuration was loaded and logging set up, by our own functions."""
    counted: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def count(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return real(*args, **kwargs)

        return count

    load = counting("load_sources", config_sources.load_sources)
    monkeypatch.setattr(config_sources, "load_sources", load)
    monkeypatch.setattr(logs, "setup_logging", counting("setup_logging", logs.setup_logging))
    return counted


@pytest.fixture
def kept_signal_handlers() -> Iterator[None]:
    """`etl run` and `etl verify` install their own SIGINT/SIGTERM handlers: put pytest's back."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("kept_signal_handlers")
@pytest.mark.parametrize(
    "args",
    [
        ["run", "--dry-run"],
        ["run", "--dsn", "{db}", "--group", "other", "--from-beginning", "--no-commit"],
        ["plan", "--group", "other"],
        ["verify", "--dsn", "{db}"],
        ["runs", "--dsn", "{db}"],
        ["db", "version", "--dsn", "{db}"],
        ["cleanup", "rejections", "--count"],
        ["check", "--timeout", "5"],
        ["config", "show"],
    ],
)
def test_a_command_loads_the_configuration_once_and_sets_up_logging_once(
    args: list[str],
    calls: Counter[str],
    make_topic: Callable[[int], str],
    etl_env: Callable[[str], dict[str, str]],
    schema_db: str,
) -> None:
    env = {**NO_ETL_ENV, **etl_env(make_topic(1))}
    argv = [a.format(db=schema_db) for a in args]
    result = CliRunner().invoke(app, argv, env=env)
    assert result.exit_code == 0, result.output
    assert calls == {"load_sources": 1, "setup_logging": 1}


def test_a_bad_override_fails_after_one_load_and_one_logging_set_up(calls: Counter[str]) -> None:
    result = CliRunner().invoke(app, ["db", "version", "--dsn", "host=x port"], env=NO_ETL_ENV)
    assert result.exit_code == 2
    assert result.stderr.startswith("etl: error: postgres.dsn: not a valid libpq connection")
    assert calls == {"load_sources": 1, "setup_logging": 1}


def test_a_usage_error_found_before_the_configuration_loads_nothing(calls: Counter[str]) -> None:
    result = CliRunner().invoke(app, ["cleanup", "reported", "--max-age", "0 days"])
    assert result.exit_code == 2
    assert calls == {}
