"""What librdkafka's reports make of a failure, and the one grace the stop's Kafka waits share."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from etl.core.errors import KafkaRefused, KafkaUnavailable
from etl.kafka.reports import BrokerReports
from etl.kafka.waits import FAILURE_GRACE_SECONDS, Waiter

_REFUSED = "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused"
_CLOSED = (
    "[thrd:127.0.0.1:9/bootstrap]: 127.0.0.1:9/bootstrap: Disconnected: connection closed by"
    " peer: receive 0 after POLLIN (after 0ms in state UP)"
)


def _fail(reports: BrokerReports, text: str) -> None:
    reports.log(3, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", text)


def test_the_last_error_reported_is_named_not_the_brokers_down_count() -> None:
    reports = BrokerReports()
    reports(KafkaError(KafkaError._TRANSPORT, _REFUSED))
    reports(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    explained = reports.explain(KafkaUnavailable("Kafka did not answer within 5s (offset commit)"))
    assert type(explained) is KafkaUnavailable
    assert str(explained).endswith(f"; last error: {_REFUSED}")


def test_without_any_report_the_failure_is_left_as_it_is() -> None:
    cause = KafkaUnavailable("no progress")
    assert BrokerReports().explain(cause) is cause


def test_every_connection_closed_at_once_by_a_broker_is_a_refused_security_protocol() -> None:
    reports = BrokerReports({"security.protocol": "plaintext"})
    _fail(reports, _CLOSED)
    _fail(reports, _CLOSED)
    explained = reports.explain(KafkaUnavailable("cannot reach Kafka"))
    assert isinstance(explained, KafkaRefused) and explained.exit_code == 9
    assert "demands SASL" in str(explained)


@pytest.mark.parametrize(
    ("client", "closed", "refused"),
    [
        ({"security.protocol": "SASL_PLAINTEXT"}, 3, 0),  # SASL offered: not this mismatch
        ({}, 1, 0),  # once: a broker going away
        ({}, 3, 1),  # and a refused connection: a broker restarting
    ],
)
def test_a_broker_going_away_is_not_a_protocol_mismatch(
    client: dict[str, str], closed: int, refused: int
) -> None:
    reports = BrokerReports(client)
    for _ in range(closed):
        _fail(reports, _CLOSED)
    for _ in range(refused):
        _fail(reports, _REFUSED)
    assert type(reports.explain(KafkaUnavailable("x"))) is KafkaUnavailable


def test_librdkafkas_hint_of_a_tls_listener_is_a_refused_security_protocol() -> None:
    reports = BrokerReports()
    _fail(
        reports,
        "Disconnected while requesting ApiVersion: might be caused by incorrect"
        " security.protocol configuration (connecting to a SSL listener?)",
    )
    assert "speaks TLS" in str(reports.explain(KafkaUnavailable("x")))


def test_after_a_failure_the_waits_share_one_grace_and_then_are_not_started() -> None:
    waits = Waiter()
    waits.failed()
    began = time.monotonic()
    with pytest.raises(KafkaUnavailable):
        waits.call("end offsets", lambda: time.sleep(60), 60)
    assert time.monotonic() - began < FAILURE_GRACE_SECONDS + 0.5
    started: list[bool] = []
    with pytest.raises(KafkaUnavailable, match="no time left"):
        waits.call("close", lambda: started.append(True), 60)
    assert started == []
