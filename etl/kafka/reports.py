"""What librdkafka reported about the brokers, and what those reports make of a failure.

librdkafka tells of a broker it cannot use only on the side: its error callback (a refused
connection, a failed login, "1/1 brokers are down") and its log (``FAIL`` lines: a connection
the broker closed). The request that then fails says only ``Broker transport failure`` or nothing
at all (a commit that never returns). `BrokerReports` is handed to a client as both its
``error_cb`` and its ``logger`` (log records pass on to the ``etl.librdkafka`` logger unchanged)
and remembers what a failure's message should name:

- the last error reported: ``last error: ... Connection refused`` on the ``etl: error:`` line;
- a refused login (``_AUTHENTICATION``): `KafkaRefused`, exit 9;
- a client that speaks the wrong security protocol to the listener: `KafkaRefused`, exit 9.
  A PLAINTEXT (or SSL) client on a listener that demands SASL gets its connections opened and
  then closed by the broker at the first request (``Disconnected: connection closed by peer ...
  in state UP``), again and again, and never a refused connection or a timeout; a PLAINTEXT
  client on an SSL listener gets librdkafka's own hint (``incorrect security.protocol
  configuration``). Either way only a change of configuration helps, like a refused login.

Both callbacks run on the thread that serves the client's queue (its ``poll``): reports queued
while nobody polls are only known once the queue is served, and a consumer's queue cannot be
served while its synchronous commit is pending (the poll waits behind it): `ask_brokers` then
asks the brokers once more with a client of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from etl.core import events
from etl.core.config import KafkaConfig
from etl.core.errors import KafkaRefused, KafkaUnavailable

_SSL_HINT: Final = "incorrect security.protocol configuration"
_CLOSED_AT_ONCE: Final = ("connection closed by peer", "in state UP")
_CLIENT_FAILURES: Final = ("Connection refused", "timed out", "Connection reset", "resolve")
_CLOSED_ENOUGH: Final = 2  # closed after opening this many times, nothing else: not a restart


class BrokerReports:
    """An ``error_cb`` and a librdkafka ``logger`` in one, remembering the reports that explain
    a failure of a client configured with ``client`` (``kafka.client``); ``chained`` is called
    with every error after it was noted."""

    def __init__(
        self,
        client: Mapping[str, Any] | None = None,
        chained: Callable[[KafkaError], None] | None = None,
    ) -> None:
        self.auth_failure: str | None = None
        self._last: str | None = None
        self._all_down: str | None = None
        self._closed_at_once = 0  # connections the broker closed right after opening them
        self._other_failures = 0  # refused, timed out, reset: a broker that is not there
        self._ssl_hint: str | None = None
        self._sasl = "SASL" in str((client or {}).get("security.protocol", "")).upper()
        self._chained = chained
        self._logger = logging.getLogger(events.LIBRDKAFKA)

    def __call__(self, err: KafkaError) -> None:
        """librdkafka's ``error_cb``."""
        text = str(err.str())
        code = err.code()
        if code == KafkaError._AUTHENTICATION:
            self.auth_failure = text
        if code == KafkaError._ALL_BROKERS_DOWN:
            self._all_down = text
        else:
            self.note(text)
        if self._chained is not None:
            self._chained(err)

    def log(self, level: int, msg: str, *args: Any) -> None:
        """librdkafka's ``logger`` (called as ``log(level, "%s [%s] %s", facility, name, text)``):
        passed on to the ``etl.librdkafka`` logger; connection failures are noted."""
        self._logger.log(level, msg, *args)
        if len(args) == 3 and args[0] == "FAIL":
            self.note(str(args[2]))

    def last_error(self) -> str:
        """The last error librdkafka reported ("N/N brokers are down" only when nothing else
        was), or ``none``."""
        return self._last or self._all_down or "none"

    def explain(self, cause: KafkaUnavailable) -> KafkaRefused | KafkaUnavailable:
        """``cause`` as the reports explain it: a refusal (exit 9) when the login or the
        security protocol was refused, else ``cause`` naming the last error reported."""
        if self.auth_failure is not None:
            return KafkaRefused(f"Kafka authentication failed: {self.auth_failure}")
        mismatch = self._protocol_mismatch()
        if mismatch is not None:
            return KafkaRefused(mismatch)
        if "last error:" in str(cause) or self.last_error() == "none":
            return cause
        return KafkaUnavailable(f"{cause}; last error: {self.last_error()}")

    def note(self, text: str) -> None:
        """Remember an error librdkafka reported in a record or a log line."""
        self._last = text
        if _SSL_HINT in text:
            self._ssl_hint = text
        elif all(part in text for part in _CLOSED_AT_ONCE):
            self._closed_at_once += 1
        elif any(part in text for part in _CLIENT_FAILURES):
            self._other_failures += 1

    def closing_early(self) -> bool:
        """The broker has closed a connection right at its first request, but not yet often
        enough to call it a refused security protocol: worth asking again to find out."""
        return (
            0 < self._closed_at_once < _CLOSED_ENOUGH
            and not self._sasl
            and not self._other_failures
            and self._ssl_hint is None
        )

    def _protocol_mismatch(self) -> str | None:
        if self._ssl_hint is not None:
            return (
                "Kafka refused the connection: the listener speaks TLS and the client does not"
                f" ({self._ssl_hint}); set kafka.client.security.protocol to SSL or SASL_SSL"
            )
        if self._sasl or self._other_failures or self._closed_at_once < _CLOSED_ENOUGH:
            return None
        return (
            f"Kafka closed every connection ({self._closed_at_once} times) at its first request:"
            " the listener demands SASL authentication, which this client does not offer; set"
            " kafka.client.security.protocol (SASL_PLAINTEXT or SASL_SSL), sasl.mechanism,"
            " sasl.username and sasl.password"
        )


def ask_brokers(cfg: KafkaConfig, reports: BrokerReports, seconds: float) -> None:
    """Ask the brokers for metadata with a client of its own, for at most ``seconds``, its
    errors and log noted in ``reports``: what they say now (``Connection refused``, ...)."""
    conf: dict[str, Any] = {
        **cfg.client,
        "bootstrap.servers": cfg.bootstrap_servers,
        "error_cb": reports,
        "logger": reports,
    }
    admin = AdminClient(conf)
    try:
        admin.list_topics(timeout=seconds)
    except KafkaException:
        admin.poll(0)  # serve the reports of the failed request
