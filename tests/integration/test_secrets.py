"""Secrets and hostile text: every failure path's output is searched for planted secrets, and
control characters from the outside never reach a terminal raw."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Callable

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.helpers.private_services import SASL_PASSWORD, SASL_USER, sasl_kafka
from tests.helpers.runs import ETL, PYTHON_ETL, Env, error_line, etl_command, good, run_etl
from tests.helpers.services import ROOT

SECRET = "PLANTED-s3cr3t-7f1c"


def with_password(dsn: str, password: str = SECRET, **changes: str) -> str:
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    params.update(password=password, **changes)
    return make_conninfo(**params)


def test_no_failure_path_prints_a_planted_secret(
    etl_env: Env,
    schema_db: str,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(3)
    produce(topic, [(0, good(1)), (1, b"not json")])
    base = etl_env(topic)
    secrets = {
        "ETL_KAFKA__CLIENT__SASL_PASSWORD": SECRET,
        "ETL_PUSHGATEWAY__PASSWORD": SECRET,
        "ETL_PUSHGATEWAY__USERNAME": "etl",
    }
    closed_pg = with_password(schema_db, port="1")
    pgw_with_creds = f"http://etl:{SECRET}@127.0.0.1:1"
    cases: dict[str, tuple[dict[str, str], tuple[str, ...], set[int]]] = {
        "database unreachable": ({"ETL_POSTGRES__DSN": closed_pg}, ("run",), {4}),
        "--dsn with a password": ({}, ("run", "--dsn", with_password(schema_db)), {0}),
        "secret in retry_attempts": ({"ETL_POSTGRES__RETRY_ATTEMPTS": SECRET}, ("run",), {2}),
        "secret in a number": ({"ETL_PUSHGATEWAY__TIMEOUT_SECONDS": SECRET}, ("check",), {2}),
        "secret as SASL mechanism": (
            {
                "ETL_KAFKA__CLIENT__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "ETL_KAFKA__CLIENT__SASL_MECHANISM": SECRET,
            },
            ("run",),
            {2},
        ),
        "secret as security.protocol": (
            {"ETL_KAFKA__CLIENT__SECURITY_PROTOCOL": SECRET},
            ("run",),
            {2},
        ),
        "secret as a libpq option": (
            {"ETL_POSTGRES__DSN": schema_db + f" sslmode={SECRET}"},
            ("run",),
            {2},
        ),
        "Pushgateway URL with credentials, down": (
            {"ETL_PUSHGATEWAY__URL": pgw_with_creds, **{k: "" for k in secrets}},
            ("run", "--from-beginning", "--no-commit"),
            {0},
        ),
        "check, everything down": (
            {
                "ETL_POSTGRES__DSN": closed_pg,
                "ETL_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
                "ETL_PUSHGATEWAY__URL": pgw_with_creds,
                "ETL_PUSHGATEWAY__USERNAME": "",
                "ETL_PUSHGATEWAY__PASSWORD": "",
            },
            ("check", "--timeout", "2"),
            {3},
        ),
        "config show": ({"ETL_POSTGRES__DSN": with_password(schema_db)}, ("config", "show"), {0}),
        "Kafka unreachable": (
            {"ETL_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1", "ETL_KAFKA__TIMEOUT_SECONDS": "3"},
            ("run",),
            {3},
        ),
        "plan against a missing topic": (
            {"ETL_KAFKA__TOPIC": "etl-test-no-such-topic"},
            ("plan",),
            {9},
        ),
    }
    leaks = []
    for name, (extra, args, codes) in cases.items():
        env = {**base, **secrets, **extra}
        result = etl_command(env, *args, timeout=90)
        output = result.stdout + result.stderr
        assert result.returncode in codes, f"{name}: exit {result.returncode}\n{output[-2000:]}"
        if SECRET in output:
            leaks.append(name)
        if result.returncode and args[0] != "check":  # check reports on stdout, line by line
            assert error_line(result).startswith("etl: error: "), name
    assert leaks == []


def test_a_password_on_the_command_line_warns_and_the_environment_is_the_way(
    etl_env: Env, schema_db: str, make_topic: Callable[[int], str]
) -> None:
    role = "etl_test_pw_user"
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{SECRET}'")
    try:
        env = etl_env(make_topic(1))
        dsn = with_password(schema_db, user=role)
        on_cli = run_etl(env, "--dsn", dsn)
        no_password = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if k != "password"}
        from_env = run_etl(
            {**env, "ETL_POSTGRES__DSN": make_conninfo(**no_password), "PGPASSWORD": SECRET}
        )
    finally:
        with psycopg.connect(schema_db, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")
    assert on_cli.returncode == 0, on_cli.stderr
    assert "password_on_command_line" in on_cli.stderr
    assert from_env.returncode == 0, from_env.stderr
    assert "password_on_command_line" not in from_env.stderr
    assert SECRET not in on_cli.stderr + from_env.stderr


def _run_on_a_tty(env: dict[str, str], timeout: float = 90) -> tuple[int, bytes]:
    """``etl run`` with stderr on a pseudo-terminal, as an operator sees it; (exit, bytes)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        ETL, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(10), out


def test_control_characters_from_the_database_never_reach_the_terminal_raw(
    etl_env: Env, schema_db: str, make_topic: Callable[[int], str], produce: Callable[..., None]
) -> None:
    hostile = "ESC Z\x1bZ bell\x07 newline\ncsi\x9b2J end"
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION hostile() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION USING MESSAGE = %s, ERRCODE = '40001'; END $$".replace(
                "%s", "'" + hostile.replace("'", "''") + "'"
            )
        )
        conn.execute(
            "CREATE TRIGGER hostile BEFORE INSERT ON rejected_messages"
            " FOR EACH ROW EXECUTE FUNCTION hostile()"
        )
    topic = make_topic(1)
    produce(topic, [(0, b"not json")])
    env = etl_env(topic, ETL_LOG__FORMAT="auto", ETL_POSTGRES__RETRY_MAX_SECONDS="1")
    code, out = _run_on_a_tty(env)
    assert code == 4, out.decode(errors="replace")[-2000:]
    assert b"ESC Z\\x1bZ bell\\x07 newline csi\\x9b2J end" in out  # one line
    # The live view draws its own CSI sequences; none of the hostile ones gets through raw.
    assert b"\x1bZ" not in out and b"\x07" not in out
    assert "\x9b".encode() not in out
    assert PYTHON_ETL


def test_wrong_sasl_credentials_end_with_authentication_failed_and_exit_9(etl_env: Env) -> None:
    with sasl_kafka() as bootstrap:
        env = etl_env(
            "any-topic",
            ETL_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
            ETL_KAFKA__CLIENT__SECURITY_PROTOCOL="SASL_PLAINTEXT",
            ETL_KAFKA__CLIENT__SASL_MECHANISM="PLAIN",
            ETL_KAFKA__CLIENT__SASL_USERNAME=SASL_USER,
            ETL_KAFKA__CLIENT__SASL_PASSWORD=SECRET,
            ETL_KAFKA__TIMEOUT_SECONDS="10",
        )
        run = run_etl(env)
        check = etl_command(env, "check", "--timeout", "10")
        right = etl_command({**env, "ETL_KAFKA__CLIENT__SASL_PASSWORD": SASL_PASSWORD}, "check")
    assert run.returncode == 9, run.stderr[-2000:]
    assert error_line(run).startswith("etl: error: Kafka authentication failed"), run.stderr
    assert check.returncode == 9, check.stdout
    assert "kafka: FAILED Kafka authentication failed" in check.stdout
    assert "kafka: FAILED topic 'any-topic': does not exist" in right.stdout  # logged in
    assert SECRET not in run.stderr + check.stdout + check.stderr
