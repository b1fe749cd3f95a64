"""Sentry around real runs: a successful run checks in ok, a recorded run's bug carries its run
id, and SIGTERM ends a run whose Sentry never answers (the offline cases are in
tests/unit/test_sentry.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg
from psycopg.conninfo import make_conninfo

from tests.helpers.runs import good, run_etl
from tests.helpers.sentry_peer import sentry_peer, silent_sentry
from tests.helpers.services import ROOT
from tests.unit.test_sentry import CRASH, PG_PASSWORD, assert_no_secret, etl, statuses


def test_a_successful_run_checks_in_ok_and_sends_no_event(
    etl_env: Callable[..., dict[str, str]],
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(1)
    produce(topic, [(0, good(1))])
    with sentry_peer() as peer:
        result = run_etl(
            etl_env(topic, ETL_SENTRY__DSN=peer.dsn, ETL_SENTRY__MONITOR_SLUG="etl-test")
        )
    assert result.returncode == 0, result.stderr
    assert statuses(peer) == ["in_progress", "ok"]
    assert peer.events() == []


def test_a_bug_after_the_run_is_recorded_is_tagged_with_its_run_id(
    etl_env: Callable[..., dict[str, str]],
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    schema_db: str,
) -> None:
    topic = make_topic(1)
    produce(topic, [(0, good(1))])
    dsn = make_conninfo(schema_db, password=PG_PASSWORD)  # trusted: the password is not checked
    with sentry_peer() as peer:
        env = etl_env(topic, ETL_SENTRY__DSN=peer.dsn, ETL_POSTGRES__DSN=dsn)
        result = etl({**env, "CRASH_IN_RUN_AT": "write"}, CRASH)
    assert result.returncode == 1, result.stderr
    with psycopg.connect(schema_db) as conn:
        row = conn.execute("SELECT max(id) FROM etl_runs").fetchone()
    assert row is not None
    [event] = peer.events()
    assert event["tags"] == {"exit_code": "1", "topic": topic, "run_id": str(row[0])}
    assert_no_secret(peer, PG_PASSWORD)


def test_the_run_still_ends_within_10_s_of_sigterm_when_sentry_never_answers(
    etl_env: Callable[..., dict[str, str]], make_topic: Callable[[int], str]
) -> None:
    topic = make_topic(1)
    with silent_sentry() as peer:
        env = etl_env(
            topic,
            ETL_SENTRY__DSN=peer.dsn,
            ETL_SENTRY__MONITOR_SLUG="etl-test",
            ETL_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1",  # the run waits for Kafka
        )
        with subprocess.Popen(
            [sys.executable, "-m", "etl", "run"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        ) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:  # the first librdkafka line: the run waits, signals handled
                if '"logger":"etl.librdkafka"' in line:
                    break
            assert peer.connected.wait(10)
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            rest = proc.stderr.read()
            proc.wait(30)
            took = time.monotonic() - signalled
    assert proc.returncode in (3, 6), rest
    assert '"event":"sentry_flush_timed_out"' in rest
    assert took < 10, took
