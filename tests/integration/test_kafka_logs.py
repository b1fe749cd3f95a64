"""librdkafka's own lines: logged by every command that opens a client, repeats collapsed.

The broker here is a loopback listener that accepts each connection and drops it at once, as a
broker going down does: librdkafka reconnects and reports each loss, about 190 lines in 10 s
when nothing collapses them.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from etl.core.config import KafkaConfig
from etl.kafka.offsets import open_consumer
from tests.helpers.runs import etl_command
from tests.helpers.services import Services

Env = Callable[..., dict[str, str]]


@pytest.fixture
def dropping_port() -> Iterator[int]:
    """A port whose listener closes every connection it accepts (until the test ends)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


def kafka_lines(stderr: str) -> list[dict[str, Any]]:
    docs = [orjson.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [d for d in docs if d["logger"] == "etl.librdkafka"]


def test_a_broker_dropping_connections_gives_a_few_lines_not_hundreds(
    etl_env: Env, dropping_port: int
) -> None:
    env = etl_env(
        "any-topic",
        ETL_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{dropping_port}",
        ETL_KAFKA__TIMEOUT_SECONDS="10",
    )
    result = etl_command(env, "run")
    assert result.returncode == 3, result.stderr
    lines = kafka_lines(result.stderr)
    assert 1 <= len(lines) <= 6, [d["event"] for d in lines]
    assert any("Disconnected" in d["event"] for d in lines)
    repeated = [d["repeated"] for d in lines if "repeated" in d]
    assert repeated, "the lines held back are counted"
    assert sum(repeated) >= 20


def test_plan_logs_librdkafka_through_the_configured_format(
    etl_env: Env, dropping_port: int
) -> None:
    env = etl_env("any-topic", ETL_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{dropping_port}")
    result = etl_command(env, "plan")
    assert result.returncode == 3, result.stderr
    assert kafka_lines(result.stderr), result.stderr
    assert all(line.startswith(("{", "etl: error: ")) for line in result.stderr.splitlines()), (
        result.stderr
    )


_PAUSE = re.compile(r"still suppressed for (\d+)ms")
_PAUSES_LOGGER = "test.librdkafka.pauses"


def pauses_before_reconnecting(
    services: Services, caplog: pytest.LogCaptureFixture, **client: str
) -> list[int]:
    """The pauses librdkafka announces before its next cluster connection while a consumer made
    as a run makes it answers its first metadata request (milliseconds)."""
    cfg = KafkaConfig(bootstrap_servers=services.kafka, client={"debug": "broker", **client})
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=_PAUSES_LOGGER):
        consumer = open_consumer(cfg, logger=logging.getLogger(_PAUSES_LOGGER))
        try:
            consumer.list_topics(timeout=10)
            consumer.poll(0)  # librdkafka's lines wait in a queue that a poll serves
        finally:
            consumer.close()
    found = (_PAUSE.search(r.getMessage()) for r in caplog.records)
    return [int(m.group(1)) for m in found if m is not None]


def test_a_consumer_asks_again_at_once_when_the_bootstrap_connection_is_dropped(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """librdkafka drops the bootstrap connection once metadata names the brokers; the requests
    it failed go out again after half of ``reconnect.backoff.ms``, which etl shortens."""
    assert max(pauses_before_reconnecting(services, caplog), default=0) <= 11
    assert max(pauses_before_reconnecting(services, caplog, **{"reconnect.backoff.ms": "100"})) > 11
