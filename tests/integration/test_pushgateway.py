"""The push and ``etl check`` against hostile or protected Pushgateways: one total deadline,
SIGTERM honoured during the push, basic auth and bearer tokens, nothing pushed on exit 2."""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable

import pytest

from tests.helpers.http_peers import (
    PUSHGATEWAY_PASSWORD,
    PUSHGATEWAY_USER,
    http_peer,
    pushgateway_with_basic_auth,
)
from tests.helpers.runs import ETL, PYTHON_ETL, Env, etl_command, good, pushed, run_etl, summary
from tests.helpers.services import ROOT, Services


@pytest.fixture
def empty_topic(make_topic: Callable[[int], str]) -> str:
    return make_topic(1)


def test_a_trickling_pushgateway_cannot_hold_the_run_past_the_deadline(
    etl_env: Env, empty_topic: str
) -> None:
    with http_peer(trickle=True) as peer:
        env = etl_env(
            empty_topic, ETL_PUSHGATEWAY__URL=peer.url, ETL_PUSHGATEWAY__TIMEOUT_SECONDS="2"
        )
        started = time.monotonic()
        result = run_etl(env, timeout=60)
        elapsed = time.monotonic() - started
    assert peer.connected.is_set()
    assert result.returncode == 0, result.stderr
    assert "push_failed" in result.stderr
    assert "no complete answer within 2s" in result.stderr
    assert summary(result)["metrics_pushed"] is False
    assert elapsed < 15  # startup + an empty topic + the 2 s deadline


def test_sigterm_during_the_push_is_honoured_and_the_run_is_still_summarised(
    etl_env: Env, empty_topic: str
) -> None:
    with http_peer(trickle=True) as peer:
        env = etl_env(
            empty_topic, ETL_PUSHGATEWAY__URL=peer.url, ETL_PUSHGATEWAY__TIMEOUT_SECONDS="300"
        )
        proc = subprocess.Popen(
            ETL, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert peer.connected.wait(60), "the run never pushed"
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
            waited = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert waited < 10
    result = subprocess.CompletedProcess(ETL, proc.returncode, out, err)
    assert summary(result)["metrics_pushed"] is False
    assert "abandoned: stop requested" in err


def test_check_honours_the_pushgateway_deadline_against_a_trickling_listener(
    services: Services, etl_env: Env, empty_topic: str
) -> None:
    with http_peer(trickle=True) as peer:
        env = etl_env(
            empty_topic, ETL_PUSHGATEWAY__URL=peer.url, ETL_PUSHGATEWAY__TIMEOUT_SECONDS="2"
        )
        started = time.monotonic()
        result = etl_command(env, "check", timeout=60)
        elapsed = time.monotonic() - started
    assert result.returncode == 7, result.stdout + result.stderr
    assert "pushgateway: FAILED" in result.stdout
    assert "no complete answer within 2s" in result.stdout
    assert elapsed < 15


def test_basic_auth_pushes_and_checks_with_the_credentials_masked(
    etl_env: Env, make_topic: Callable[[int], str], produce: Callable[..., None]
) -> None:
    topic = make_topic(1)
    produce(topic, [(0, good(1))])
    with pushgateway_with_basic_auth() as url:
        host = url.removeprefix("http://")
        keyed = etl_env(
            topic,
            ETL_PUSHGATEWAY__URL=url,
            ETL_PUSHGATEWAY__USERNAME=PUSHGATEWAY_USER,
            ETL_PUSHGATEWAY__PASSWORD=PUSHGATEWAY_PASSWORD,
        )
        in_url = etl_env(
            topic, ETL_PUSHGATEWAY__URL=f"http://{PUSHGATEWAY_USER}:{PUSHGATEWAY_PASSWORD}@{host}"
        )
        wrong = etl_env(
            topic,
            ETL_PUSHGATEWAY__URL=url,
            ETL_PUSHGATEWAY__USERNAME="etl",
            ETL_PUSHGATEWAY__PASSWORD="wrong-pgw-secret",
        )
        first = run_etl(keyed)
        second = run_etl(in_url, "--from-beginning", "--no-commit")
        check = etl_command(in_url, "check")
        shown = etl_command(keyed, "config", "show")
        refused = run_etl(wrong)
        token = base64.b64encode(f"{PUSHGATEWAY_USER}:{PUSHGATEWAY_PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            f"{url}/metrics", headers={"Authorization": f"Basic {token}"}
        )
        metrics = urllib.request.urlopen(request, timeout=10).read().decode()
    assert summary(first)["metrics_pushed"] is True, first.stderr
    assert summary(second)["metrics_pushed"] is True, second.stderr
    job = keyed["ETL_PUSHGATEWAY__JOB"]
    assert re.search(rf'etl_rows_inserted{{instance="",job="{job}"}} 1\n', metrics), metrics
    assert re.search(rf'etl_rows_inserted{{instance="",job="{job}",mode="backfill"}} 0', metrics)
    assert metrics.count("etl_rows_inserted{") == 2  # a private Pushgateway: only these
    assert "pushgateway: ok http://***@" in check.stdout, check.stdout
    assert summary(refused)["metrics_pushed"] is False
    assert "push_failed" in refused.stderr
    for out in (first, second, check, shown, refused):
        text = out.stdout + out.stderr
        assert PUSHGATEWAY_PASSWORD not in text and "wrong-pgw-secret" not in text
    assert 'password = "***"' in shown.stdout


def test_a_bearer_token_is_sent_as_an_authorization_header(etl_env: Env, empty_topic: str) -> None:
    with http_peer(trickle=False) as peer:
        env = etl_env(empty_topic, ETL_PUSHGATEWAY__URL=peer.url, ETL_PUSHGATEWAY__TOKEN="tok-123")
        result = run_etl(env)
    assert summary(result)["metrics_pushed"] is True, result.stderr
    assert any(b"\r\nAuthorization: Bearer tok-123\r\n" in r for r in peer.requests)
    assert "tok-123" not in result.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("--until-offset", "9:5"), {}),
        ((), {"ETL_KAFKA__CLIENT__SECURITY_PROTOCOL": "bogus"}),
    ],
)
def test_a_usage_or_configuration_error_pushes_nothing(
    services: Services,
    etl_env: Env,
    make_topic: Callable[[int], str],
    args: tuple[str, ...],
    extra: dict[str, str],
) -> None:
    env = etl_env(make_topic(3), **extra)
    result = run_etl(env, *args)
    assert result.returncode == 2, result.stderr
    assert pushed(services, env["ETL_PUSHGATEWAY__JOB"]) == {}
    assert PYTHON_ETL  # the command ran as a user runs it
