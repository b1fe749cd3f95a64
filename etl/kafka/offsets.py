"""Kafka offsets as the broker reports them: partitions, watermarks, committed and time offsets.

Shared by the source (at assignment) and ``etl plan`` (without reading a message), so both plan
a partition from the same answers with `etl.core.plan.plan_partitions`. Every librdkafka failure
becomes `KafkaUnavailable` here.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from etl.core import events
from etl.core.aim import Aim, starts_from_position
from etl.core.config import KafkaConfig
from etl.core.errors import ConfigError, EtlError, KafkaRefused, KafkaUnavailable
from etl.core.plan import PlannedPartition, Watermarks, plan_partitions
from etl.core.positions import StoredPositions
from etl.kafka.reports import BrokerReports
from etl.kafka.waits import Waiter

log = events.logger(__name__)

REQUEST_TIMEOUT = 10.0
_ASK_AGAIN_SECONDS = 0.1  # between metadata requests while a broker closes connections
_TIME_LOOKUP_ATTEMPTS = 3
# librdkafka defaults that suit a bounded batch loader; [kafka.client] overrides any of them.
CLIENT_DEFAULTS = {
    # librdkafka's prefetch, 16 MB: more only costs memory once the fetcher resumes at once.
    "queued.max.messages.kbytes": "16384",
    "fetch.wait.max.ms": "100",
    # With the prefetch queue full, librdkafka postpones the next fetch by this much (1000 ms
    # by default): a run that drains the queue faster than that sat idle for most of a second
    # every few batches, which made large reports load at half the speed.
    "fetch.queue.backoff.ms": "10",
    # A run that follows a crashed run waits for the dead member's session to expire before
    # it gets partitions; heartbeats come from a background thread, so a short session is safe.
    "session.timeout.ms": "10000",
    # A copy joining the group is heard of at the next heartbeat: within a second, not three,
    # so a copy already draining shares its partitions before it has read them all.
    "heartbeat.interval.ms": "1000",
    # librdkafka drops the bootstrap connection once metadata names the brokers, failing the
    # requests sent on it; they go out again on a new connection only after the pause between
    # two cluster connections, half this backoff (50 ms by default, at least 11): every run's
    # start waited for it. The backoff still doubles on each failed attempt up to its maximum.
    "reconnect.backoff.ms": "20",
}


def consumer_config(cfg: KafkaConfig, **extra: Any) -> dict[str, Any]:
    """The librdkafka settings of our consumers: never auto-commit, EOF events on."""
    return {
        **CLIENT_DEFAULTS,
        **cfg.client,
        "bootstrap.servers": cfg.bootstrap_servers,
        "group.id": cfg.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": cfg.auto_offset_reset,
        "isolation.level": cfg.isolation_level,
        "logger": logging.getLogger(events.LIBRDKAFKA),  # librdkafka logs through our format
        **extra,
    }


def open_consumer(cfg: KafkaConfig, **extra: Any) -> Consumer:
    try:
        return Consumer(consumer_config(cfg, **extra))
    except KafkaException as exc:
        raise client_error(exc, "consumer") from exc


_PROPERTY = re.compile(r'property:? "([^"]+)"')
SASL_MECHANISMS = "GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"


def client_error(exc: KafkaException, what: str) -> ConfigError | KafkaUnavailable:
    """A client that cannot be created: a bad property is a usage error naming it (exit 2).

    librdkafka's text quotes the rejected value (``Unsupported SASL mechanism: <value>``), which
    may be a secret pasted into the wrong key: only the property's name is repeated.
    """
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and error.code() == KafkaError._INVALID_ARG:
        text = str(error.str())
        if "SASL mechanism" in text:
            return ConfigError(
                f"kafka.client.sasl.mechanism: unsupported; expected one of {SASL_MECHANISMS}"
            )
        found = _PROPERTY.search(text)
        if found is None:
            return ConfigError("kafka.client: librdkafka refused the configuration")
        if text.startswith("No such configuration property"):
            return ConfigError(f"kafka.client.{found.group(1)}: unknown librdkafka property")
        return ConfigError(f"kafka.client.{found.group(1)}: invalid value for this property")
    return KafkaUnavailable(f"cannot create a Kafka {what}: {describe(exc)}")


def topic_partitions(
    client: Consumer | AdminClient,
    cfg: KafkaConfig,
    timeout: float = REQUEST_TIMEOUT,
    reports: BrokerReports | None = None,
) -> list[int]:
    """The topic's partition ids; KafkaUnavailable if the broker cannot be reached, KafkaRefused
    if the topic does not exist, its access is denied, or the client's ``reports`` tell of a
    refused login or security protocol (`BrokerReports.explain`).

    ``client`` is a Consumer or an AdminClient. The metadata request names no topic: on a
    broker that auto-creates topics, a request naming a missing one could create it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            meta = client.list_topics(timeout=max(0.1, deadline - time.monotonic()))
            break
        except KafkaException as exc:
            unreachable = KafkaUnavailable(
                f"cannot reach Kafka at {cfg.bootstrap_servers}: {describe(exc)}"
            )
            if reports is None:
                raise unreachable from exc
            # librdkafka queues its reports; serve them to learn why the broker could not be
            # used. A request fails at the first connection the broker closes; one closed
            # connection does not yet tell a refused protocol from a restart, so ask again.
            client.poll(0)
            if reports.closing_early() and time.monotonic() + _ASK_AGAIN_SECONDS < deadline:
                time.sleep(_ASK_AGAIN_SECONDS)
                continue
            raise reports.explain(unreachable) from exc
    topic = meta.topics.get(cfg.topic)
    error = None if topic is None else topic.error
    if topic is None or (error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise KafkaRefused(f"topic {cfg.topic!r}: does not exist")
    if error is not None:
        if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise KafkaRefused(f"topic {cfg.topic!r}: not authorized ({error.str()})")
        raise KafkaUnavailable(f"topic {cfg.topic!r}: {error.str()}")
    return sorted(topic.partitions)


def probe(cfg: KafkaConfig, timeout: float) -> str:
    """What ``etl check`` reports of Kafka: the broker answers and the topic exists."""
    reports = BrokerReports(cfg.client)
    conf: dict[str, Any] = {
        **cfg.client,
        "bootstrap.servers": cfg.bootstrap_servers,
        "logger": reports,  # librdkafka logs through our format, and `reports` reads them
        "error_cb": reports,
    }
    try:
        admin = AdminClient(conf)
    except KafkaException as exc:
        raise client_error(exc, "admin client") from exc
    parts = topic_partitions(admin, cfg, timeout, reports)
    return f"{cfg.bootstrap_servers} topic {cfg.topic!r} has {len(parts)} partition(s) {parts}"


def check_named_partitions(aim: Aim, existing: Iterable[int], topic: str) -> None:
    """Usage error for a partition the options name that the topic does not have."""
    missing = sorted(aim.named_partitions() - set(existing))
    if missing:
        raise ConfigError(f"topic {topic!r} has no partition {', '.join(map(str, missing))}")


def plan(
    consumer: Consumer,
    cfg: KafkaConfig,
    partitions: Iterable[int],
    aim: Aim,
    stored: StoredPositions | None = None,
) -> list[PlannedPartition]:
    """Query the broker once for these partitions and plan each, resuming from the database's
    positions ``stored`` where it holds them (`etl.core.positions`); reads no message."""
    marks = watermarks(consumer, cfg, partitions, aim, stored)
    return plan_partitions(marks, aim, cfg.auto_offset_reset)


def watermarks(
    consumer: Consumer,
    cfg: KafkaConfig,
    partitions: Iterable[int],
    aim: Aim,
    stored: StoredPositions | None = None,
) -> dict[int, Watermarks]:
    """What the broker reports of these partitions (log start, end, the group's committed
    offset, the offsets of ``aim``'s times), with the database's positions ``stored``."""
    parts = sorted(partitions)
    if not parts:
        return {}
    tps = [TopicPartition(cfg.topic, p) for p in parts]
    try:
        committed = {}
        for tp in consumer.committed(tps, timeout=REQUEST_TIMEOUT):
            if tp.error is not None:  # unknown is not "none": never guess a start offset
                raise KafkaUnavailable(
                    f"cannot read the committed offset of partition {tp.partition}: "
                    f"{tp.error.str()}"
                )
            committed[tp.partition] = tp.offset
        from_times = _offsets_for_times(consumer, cfg.topic, parts, aim.from_timestamp)
        until_times = _offsets_for_times(consumer, cfg.topic, parts, aim.until_timestamp)
        out = {}
        for p in parts:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(cfg.topic, p), timeout=REQUEST_TIMEOUT, cached=False
            )
            out[p] = Watermarks(
                low,
                high,
                committed[p],
                from_times.get(p),
                until_times.get(p),
                stored.of(p) if stored is not None else None,
            )
        return out
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read offsets of {cfg.topic!r}: {describe(exc)}") from exc


def close_consumer(consumer: Consumer, waits: Waiter, seconds: float) -> None:
    """Leave the group within ``seconds`` (close blocks for good on a dead broker), or log why
    not: the group then notices at the session timeout."""
    try:
        waits.call("close", consumer.close, seconds)
    except (KafkaException, RuntimeError, EtlError) as exc:  # EtlError: deadline, stop grace
        log.warning(
            "consumer_close_incomplete",
            error=str(exc),
            effect="the group notices at the session timeout",
        )


def log_planned(item: PlannedPartition, aim: Aim) -> None:
    """Warn about what the operator should know of a planned partition."""
    part = item.progress
    if part.skipped_by_retention:
        log.warning(
            "retention_gap",
            partition=part.partition,
            committed=item.marks.committed,
            log_start=item.marks.low,
            skipped=part.skipped_by_retention,
            effect="starting at the log start",
        )
    if part.rewound:
        log.warning(
            "offsets_rewound",
            partition=part.partition,
            database=item.marks.stored,
            group=item.marks.committed,
            reread=part.rewound,
            effect="the database holds less than the group committed (a restore, a failover):"
            " reading again from the database's position",
        )
    elif (
        item.stored is not None
        and starts_from_position(part.partition, aim)
        and (item.committed is None or item.stored > item.committed)
    ):
        log.warning(
            "offsets_forward",
            partition=part.partition,
            database=item.stored,
            group=item.committed,
            skipped=part.drift,
            effect="the database already holds what the group had not committed: starting at"
            " the database's position, nothing read twice",
        )
    if item.note:
        log.warning("partition_note", partition=part.partition, note=item.note)


def _offsets_for_times(
    consumer: Consumer, topic: str, parts: list[int], when: datetime | None
) -> dict[int, int]:
    """Per partition, the first offset stamped at or after ``when`` (-1: none)."""
    if when is None:
        return {}
    millis = int(when.timestamp() * 1000)
    for attempt in range(_TIME_LOOKUP_ATTEMPTS):
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, millis) for p in parts], timeout=REQUEST_TIMEOUT
        )
        failed = [(tp.partition, tp.error) for tp in found if tp.error is not None]
        if not failed:
            return {tp.partition: tp.offset for tp in found}
        # An answer with an error (a leader moving, a new topic) is not "no message at or
        # after": never read it as an empty window. Asked again, then a Kafka failure.
        if attempt + 1 < _TIME_LOOKUP_ATTEMPTS:
            time.sleep(0.5)
    partition, error = failed[0]
    raise KafkaUnavailable(
        f"cannot look up the offset of {when.isoformat()} in partition {partition}: {error.str()}"
    )


def describe(exc: KafkaException) -> str:
    if exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc)
