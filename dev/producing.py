"""Produce many messages to a topic with back-pressure: the one producer loop of the dev tools.

``dev/samples.py`` and ``bench/corpus.py`` both fill topics through ``produce_all``. librdkafka
queues messages in the process and ``produce()`` raises ``BufferError: Local: Queue full`` once
the queue holds ``queue.buffering.max.messages`` (100 000 by default): a loop that does not wait
there dies half way and leaves a half-filled topic. Here a full queue is drained by serving
delivery reports (``poll``) and the message is offered again. Every wait is bounded: a queue
that stays full for ``stall_s`` seconds (no broker taking messages) and messages still
undelivered after the final flush raise ``ProduceFailed``, as does any failed delivery, so a
caller never mistakes a partial topic for a full one.

A top-level module, not part of the ``etl`` package (the job never produces): scripts in
``dev/`` import it from beside them, ``bench/corpus.py`` puts ``dev/`` on ``sys.path``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import KafkaError, Message, Producer

# Large batches, so filling a topic with many small messages takes seconds.
DEFAULTS: Mapping[str, str | int] = {"linger.ms": 50, "batch.size": 1_000_000, "acks": "all"}


class ProduceFailed(RuntimeError):
    """Not every message reached the topic; the message says how many did not and why."""


def produce_all(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[int, bytes]],
    *,
    config: Mapping[str, str | int] | None = None,
    stall_s: float = 60.0,
    flush_s: float = 120.0,
) -> int:
    """Produce each ``(partition, value)`` to ``topic`` in order; the number produced.

    Returns only when the broker acknowledged every message (``acks=all`` unless ``config``
    says otherwise); raises ``ProduceFailed`` otherwise."""
    producer = Producer({"bootstrap.servers": bootstrap, **DEFAULTS, **(config or {})})
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    sent = 0
    for partition, value in messages:
        _offer(producer, topic, partition, value, delivered=delivered, stall_s=stall_s, sent=sent)
        sent += 1
        producer.poll(0)  # serve delivery reports as they come, so the queue keeps moving
    undelivered = producer.flush(flush_s)
    if undelivered:
        raise ProduceFailed(f"{undelivered} of {sent} messages to {topic} not delivered")
    if failures:
        raise ProduceFailed(
            f"{len(failures)} of {sent} messages to {topic} failed, first: {failures[0].str()}"
        )
    return sent


def _offer(
    producer: Producer,
    topic: str,
    partition: int,
    value: bytes,
    *,
    delivered: Callable[[KafkaError | None, Message], None],
    stall_s: float,
    sent: int,
) -> None:
    """Queue one message, waiting for room in the local queue at most ``stall_s`` seconds."""
    deadline = time.monotonic() + stall_s
    while True:
        try:
            producer.produce(topic, value, partition=partition, on_delivery=delivered)
            return
        except BufferError:
            if time.monotonic() >= deadline:
                raise ProduceFailed(
                    f"the local queue stayed full for {stall_s:g} s after {sent} messages to"
                    f" {topic}: is the broker reachable?"
                ) from None
            producer.poll(0.2)
