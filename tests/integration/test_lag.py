"""The lag and the retention gaps a run pushes are its own, on failure too, against the real
Kafka and Pushgateway: a run whose PostgreSQL refuses connections still measures the lag, and a
run that cannot reach Kafka says the lag is unknown."""

from __future__ import annotations

import math
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.helpers.runs import Env, committed, good, pushed, run_etl, summary
from tests.helpers.services import Services

REFUSED_DSN = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1


def waiting(services: Services, group: str, topic: str, partitions: int) -> dict[int, int]:
    """End offset minus the group's committed offset, per partition, as Kafka says."""
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": f"{group}-reader"})
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()
    return {p: ends[p] - max(o, 0) for p, o in committed(services, group, topic, 2).items()}


def series(services: Services, env: dict[str, str], name: str) -> dict[str, float]:
    return {
        k: v
        for k, v in pushed(services, env["ETL_PUSHGATEWAY__JOB"]).items()
        if k.split("{")[0] == name
    }


def test_a_run_failing_on_postgresql_pushes_the_true_lag_and_replaces_older_retention_gaps(
    services: Services,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(2)
    produce(topic, [(0, good(i)) for i in range(10)] + [(1, good(10))])
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    consumer.close()
    admin = AdminClient({"bootstrap.servers": services.kafka})
    for fut in admin.delete_records([TopicPartition(topic, 0, 6)]).values():
        fut.result(timeout=30)
    env = etl_env(topic)
    first = run_etl(env)
    assert first.returncode == 0, first.stderr
    assert series(services, env, "etl_offsets_skipped_retention") == {
        'etl_offsets_skipped_retention{partition="0"}': 4,
        'etl_offsets_skipped_retention{partition="1"}': 0,
    }

    produce(topic, [(0, good(i)) for i in range(20, 27)] + [(1, good(i)) for i in range(30, 35)])
    assert waiting(services, group, topic, 2) == {0: 7, 1: 5}
    failed = run_etl(etl_env(topic, ETL_POSTGRES__DSN=REFUSED_DSN))
    assert failed.returncode == 4, failed.stderr
    assert summary(failed)["metrics_pushed"] is True
    metrics = pushed(services, env["ETL_PUSHGATEWAY__JOB"])
    assert metrics["etl_run_exit_code"] == 4
    assert metrics["etl_partition_lag_known"] == 1
    assert series(services, env, "etl_partition_lag") == {
        'etl_partition_lag{partition="0"}': 7,
        'etl_partition_lag{partition="1"}': 5,
    }
    assert waiting(services, group, topic, 2) == {0: 7, 1: 5}  # nothing was committed
    assert series(services, env, "etl_offsets_skipped_retention") == {
        'etl_offsets_skipped_retention{partition="0"}': 0,
        'etl_offsets_skipped_retention{partition="1"}': 0,
    }
    assert series(services, env, "etl_offsets_rewound") == {
        'etl_offsets_rewound{partition="0"}': 0,
        'etl_offsets_rewound{partition="1"}': 0,
    }


def test_a_run_that_cannot_reach_kafka_pushes_the_lag_as_unknown(
    services: Services,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(1)
    produce(topic, [(0, good(1))])
    env = etl_env(topic)
    assert run_etl(env).returncode == 0
    assert pushed(services, env["ETL_PUSHGATEWAY__JOB"])["etl_partition_lag_known"] == 1

    down = run_etl(etl_env(topic, ETL_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1"))
    assert down.returncode == 3, down.stderr
    assert '"event":"lag_unknown"' in down.stderr
    metrics = pushed(services, env["ETL_PUSHGATEWAY__JOB"])
    assert metrics["etl_run_exit_code"] == 3
    assert metrics["etl_partition_lag_known"] == 0
    # The partitions were never learned: the older samples stay, marked unknown by the gauge.
    lag = metrics['etl_partition_lag{partition="0"}']
    assert lag == 0 and not math.isnan(lag)
