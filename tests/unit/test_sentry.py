"""Sentry: failed runs and bugs reach a local Sentry endpoint as real envelopes, with their tags
and Crons check-ins and without a secret; no DSN imports nothing; the flush at exit is bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
import pytest

from etl.cli.sentry import scrub_event
from etl.core.config import MASK
from etl.core.config_sources import load_config
from etl.core.errors import ConfigError
from tests.helpers.sentry_peer import SentryPeer, sentry_peer, silent_sentry
from tests.helpers.services import ROOT

PG_PASSWORD = "pg-secret-pw"
SASL_PASSWORD = "sasl-secret-pw"
PGW_PASSWORD = "pgw-secret-pw"
SECRETS = (PG_PASSWORD, SASL_PASSWORD, PGW_PASSWORD)
CLOSED_DSN = f"postgresql://etl:{PG_PASSWORD}@127.0.0.1:1/postgres?connect_timeout=2"
CRASH = [sys.executable, str(Path(__file__).parents[1] / "helpers" / "crash_in_run.py"), "run"]


def offline_env(**extra: str) -> dict[str, str]:
    """Every service on a closed port, every kind of secret configured: exit 4 within ~1 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_", "SENTRY_"))}
    env.update(
        {
            "ETL_POSTGRES__DSN": CLOSED_DSN,
            "ETL_POSTGRES__RETRY_MAX_SECONDS": "1",
            "ETL_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "ETL_KAFKA__TOPIC": "sentry-test-topic",
            "ETL_KAFKA__CLIENT__SASL_PASSWORD": SASL_PASSWORD,
            "ETL_PUSHGATEWAY__URL": f"http://etl:{PGW_PASSWORD}@127.0.0.1:1",
            "ETL_PUSHGATEWAY__TIMEOUT_SECONDS": "1",
            "ETL_LOG__FORMAT": "json",
            "ETL_SENTRY__ENVIRONMENT": "test",
            "ETL_SENTRY__MONITOR_SLUG": "etl-test",
        }
    )
    env.update(extra)
    return env


def etl(env: dict[str, str], argv: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv or [sys.executable, "-m", "etl", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def assert_no_secret(peer: SentryPeer, *secrets: str) -> None:
    received = b"".join(peer.bodies)
    assert received, "nothing reached the Sentry endpoint"
    for secret in secrets:
        assert secret.encode() not in received, secret


def statuses(peer: SentryPeer) -> list[str]:
    check_ins = peer.check_ins()
    assert len({c["check_in_id"] for c in check_ins}) == 1, check_ins
    assert {c["monitor_slug"] for c in check_ins} == {"etl-test"}
    return [c["status"] for c in check_ins]


def test_a_failed_run_sends_one_event_with_its_tags_between_two_check_ins() -> None:
    with sentry_peer() as peer:
        result = etl(offline_env(SENTRY_DSN=peer.dsn))  # the platform's variable alone
    assert result.returncode == 4, result.stderr
    [event] = peer.events()
    assert event["message"].startswith("etl run failed: PostgreSQL unavailable")
    assert event["level"] == "error"
    assert event["tags"] == {"exit_code": "4", "topic": "sentry-test-topic"}  # not recorded
    assert event["fingerprint"] == ["etl run failed", "4"]
    assert (event["environment"], event["release"]) == ("test", f"etl@{version('etl')}")
    crumbs = [b["message"] for b in event["breadcrumbs"]["values"]]
    assert (crumbs[0], crumbs[-1]) == ("postgres_retry", "run_finished"), crumbs
    assert all("data" not in b for b in event["breadcrumbs"]["values"])
    assert statuses(peer) == ["in_progress", "error"]
    assert_no_secret(peer, *SECRETS)


def test_a_bug_sends_its_exception_with_every_secret_masked() -> None:
    with sentry_peer() as peer:
        env = offline_env(ETL_SENTRY__DSN=peer.dsn, CRASH_IN_RUN_AT="check_schema")
        result = etl(env, CRASH)
    assert result.returncode == 1, result.stderr
    assert "RuntimeError: planted bug" in result.stderr  # Python's traceback, as before
    [event] = peer.events()
    [exc] = event["exception"]["values"]
    assert exc["type"] == "RuntimeError"
    assert exc["value"] == f"planted bug, configured with postgresql://etl:{MASK}@127.0.0.1:1/" + (
        f"postgres?connect_timeout=2 {MASK}"
    )
    frames = exc["stacktrace"]["frames"]
    assert frames and all("vars" not in frame for frame in frames)
    assert event["tags"] == {"exit_code": "1", "topic": "sentry-test-topic"}
    crumbs = [b["message"] for b in event["breadcrumbs"]["values"]]
    assert (
        f"about to fail with postgresql://etl:{MASK}@127.0.0.1:1/"
        + (f"postgres?connect_timeout=2 {MASK}")
        in crumbs
    )
    assert statuses(peer) == ["in_progress", "error"]
    assert_no_secret(peer, *SECRETS)


def test_a_configuration_error_turns_the_check_in_red_without_an_event() -> None:
    with sentry_peer() as peer:
        bogus = CLOSED_DSN.replace("connect_timeout=2", "sslmode=bogus")  # libpq refuses it
        result = etl(offline_env(ETL_SENTRY__DSN=peer.dsn, ETL_POSTGRES__DSN=bogus))
    assert result.returncode == 2, result.stderr
    assert statuses(peer) == ["in_progress", "error"]
    assert peer.events() == []


@pytest.mark.parametrize("option", ["--dry-run", "--from-beginning", "--no-commit"])
def test_a_trial_or_backfill_sends_its_failure_but_never_checks_in(option: str) -> None:
    with sentry_peer() as peer:
        env = offline_env(ETL_SENTRY__DSN=peer.dsn)
        result = etl(env, [sys.executable, "-m", "etl", "run", option])
    assert result.returncode == 4, result.stderr
    assert [e["tags"]["exit_code"] for e in peer.events()] == ["4"]
    assert peer.check_ins() == []


@pytest.mark.parametrize(
    "variables",
    [{}, {"ETL_SENTRY__DSN": ""}],
    ids=["no DSN", "ETL_SENTRY__DSN empty over SENTRY_DSN"],
)
def test_without_a_dsn_nothing_is_imported_or_sent(variables: dict[str, str]) -> None:
    # main() ends the process itself once the atexit functions have run (etl.cli.app._exit)
    program = (
        "import atexit, sys\n"
        "from etl.cli.app import main\n"
        "atexit.register(lambda: print('sentry_sdk' in sys.modules))\n"
        "main()\n"
    )
    with sentry_peer() as peer:
        env = offline_env(**variables)
        if variables:
            env["SENTRY_DSN"] = peer.dsn  # the platform's, overridden
        result = etl(env, [sys.executable, "-c", program, "run"])
    assert (result.returncode, result.stdout.split()) == (4, ["False"]), result.stderr
    assert peer.bodies == []


def test_a_sentry_that_never_answers_delays_the_exit_by_flush_seconds_at_most() -> None:
    with silent_sentry() as peer:
        env = offline_env(ETL_SENTRY__DSN=peer.dsn, ETL_SENTRY__FLUSH_SECONDS="1")
        result = etl(env)
        ended = time.time()
        assert peer.connected.is_set()
    assert result.returncode == 4
    lines = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = next(line for line in lines if line["event"] == "command_failed")
    assert lines[-1]["event"] == "sentry_flush_timed_out"
    waited = ended - datetime.fromisoformat(failed["ts"]).timestamp()
    assert 1.0 <= waited < 2.5, waited


def test_scrub_event_masks_every_secret_at_any_depth() -> None:
    cfg = load_config(
        None,
        {
            "ETL_POSTGRES__DSN": "postgresql://etl:p%40ss-word@db/etl",
            "ETL_KAFKA__CLIENT__SASL_PASSWORD": SASL_PASSWORD,
            "ETL_KAFKA__CLIENT__SSL_KEY_PASSWORD": "key-pass",
            "ETL_PUSHGATEWAY__TOKEN": "bearer-token",
        },
    )
    event: Any = {
        "message": "connect to postgresql://etl:p%40ss-word@db/etl failed (p@ss-word)",
        "exception": {"values": [{"value": f"sasl {SASL_PASSWORD} key-pass", "type": "E"}]},
        "breadcrumbs": {"values": [{"message": "token bearer-token", "level": "info"}]},
        "tags": {"exit_code": "3", "n": 3},
    }
    scrubbed = scrub_event(event, cfg.secrets())
    assert scrubbed == {
        "message": f"connect to postgresql://etl:{MASK}@db/etl failed ({MASK})",
        "exception": {"values": [{"value": f"sasl {MASK} {MASK}", "type": "E"}]},
        "breadcrumbs": {"values": [{"message": f"token {MASK}", "level": "info"}]},
        "tags": {"exit_code": "3", "n": 3},
    }


def test_sentry_dsn_is_the_default_the_file_and_etl_variables_override(tmp_path: Path) -> None:
    platform = {"SENTRY_DSN": "https://platform@sentry.example/1"}
    assert load_config(None, {}).sentry.enabled is False
    assert load_config(None, platform).sentry.dsn == "https://platform@sentry.example/1"
    path = tmp_path / "etl.toml"
    path.write_text('[sentry]\ndsn = "https://file@sentry.example/2"\n')
    assert load_config(path, platform).sentry.dsn == "https://file@sentry.example/2"
    assert load_config(path, {**platform, "ETL_SENTRY__DSN": ""}).sentry.enabled is False
    masked = load_config(None, platform).masked()["sentry"]
    assert masked["dsn"] == f"https://{MASK}@sentry.example/1"
    assert "platform" not in repr(load_config(None, platform))


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("ETL_SENTRY__DSN", "https://sentry.example/1", "sentry.dsn: must be a Sentry DSN"),
        ("ETL_SENTRY__DSN", "https://key@sentry.example/", "sentry.dsn: must be a Sentry DSN"),
        ("ETL_SENTRY__DSN", "ftp://key@sentry.example/1", "sentry.dsn: must be a Sentry DSN"),
        ("ETL_SENTRY__FLUSH_SECONDS", "0", "sentry.flush_seconds: must be > 0 and at most 5"),
        ("ETL_SENTRY__FLUSH_SECONDS", "6", "sentry.flush_seconds: must be > 0 and at most 5"),
        ("ETL_SENTRY__ENVIRONMENT", "", "sentry.environment: must not be empty"),
    ],
)
def test_sentry_settings_are_validated(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {variable: value})
    assert str(caught.value).startswith(problem)
    assert "key@" not in str(caught.value)
