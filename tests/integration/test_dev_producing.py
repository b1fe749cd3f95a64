"""dev/producing.py, the producer loop of dev/samples.py and bench/corpus.py, on the real Kafka:
it waits for room when librdkafka's local queue is full, and never reports a partial topic as
full."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.helpers.services import ROOT, Services, free_port

sys.path.insert(0, str(ROOT / "dev"))
import producing


def _high_watermarks(bootstrap: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()


def test_more_messages_than_the_local_queue_holds_all_reach_the_topic(
    services: Services, make_topic: Callable[[int], str]
) -> None:
    # 200 000 is twice librdkafka's default queue.buffering.max.messages: a producer that does
    # not wait for room raises "BufferError: Local: Queue full" half way.
    topic = make_topic(2)
    count = 200_000
    messages = ((i % 2, b"m%d" % i) for i in range(count))
    assert producing.produce_all(services.kafka, topic, messages) == count
    assert _high_watermarks(services.kafka, topic, 2) == [count // 2, count // 2]


def test_messages_no_broker_takes_raise_instead_of_returning() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    with pytest.raises(producing.ProduceFailed, match=r"^3 of 3 messages to t failed, first: "):
        producing.produce_all(
            nobody, "t", [(0, b"a"), (0, b"b"), (0, b"c")], config={"message.timeout.ms": 500}
        )
