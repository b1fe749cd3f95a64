"""The Clowder templates' pods, run in order against the real services as Clowder would start
them (the templates themselves are checked offline in tests/unit/test_deploy_clowder.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tests.helpers.db import execute, query
from tests.helpers.runs import committed, etl_command, good, rows
from tests.helpers.services import Services
from tests.unit.test_deploy_clowder import (
    CLUSTER_A,
    CLUSTER_B,
    backfill,
    clowdapp,
    containers,
    environment,
    job,
)


def test_the_pods_commands_run_in_order_against_the_real_services(
    services: Services,
    database: str,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    group: str,
) -> None:
    """Each container as Clowder would start it, the endpoints of cdappconfig.json given as
    ETL_ variables: migrate and run, cleanup's four steps, then a backfill of offset 0."""
    topic, tracker = make_topic(1), make_topic(1)
    produce(topic, [(0, good(1))])
    endpoints = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | {
        "ETL_KAFKA__BOOTSTRAP_SERVERS": services.kafka,
        "ETL_POSTGRES__DSN": database,
        "ETL_PUSHGATEWAY__URL": services.pushgateway,
        "ETL_PUSHGATEWAY__JOB": f"etl-test-{group}",
    }
    app = clowdapp(INCOMING_TOPIC=topic, GROUP_ID=group, PAYLOAD_TRACKER_TOPIC=tracker)

    def run_pod(job_spec: dict[str, Any]) -> None:
        for args in containers(job_spec):
            result = etl_command(endpoints | environment(job_spec), *args)
            assert result.returncode == 0, (args, result.stderr)

    run_pod(job(app, "run"))
    assert len(rows(database)) == 1
    assert committed(services, group, topic, 1) == {0: 1}
    old, new = "1990-01-01 00:00:00", "2990-01-01 00:00:00"
    execute(
        database,
        "DELETE FROM new_reports",
        f"""INSERT INTO new_reports (org_id, account_number, cluster, report, updated_at)
            VALUES (1, 10, '{CLUSTER_A}', '{{}}', '{old}'),
                   (3, 30, '{CLUSTER_B}', '{{}}', '{new}')""",
        f"""INSERT INTO read_errors (org_id, cluster, updated_at, error_text, created_at)
            VALUES (1, '{CLUSTER_A}', '{old}', 'e1', '{old}'),
                   (3, '{CLUSTER_B}', '{new}', 'e3', '{new}')""",
        f"""INSERT INTO reported (org_id, account_number, cluster, notification_type, state,
                report, updated_at, notified_at, event_type_id)
            VALUES (1, 10, '{CLUSTER_A}', 1, 1, 'r', '{old}', '{old}', 1),
                   (3, 30, '{CLUSTER_B}', 1, 1, 'r', '{new}', '{new}', 1)""",
        f"""INSERT INTO rejected_messages (topic, kafka_partition, kafka_offset, reason, detail,
                raw_size, rejected_at)
            VALUES ('t', 0, 1, 'invalid_json', 'd', 0, '{old}+00'),
                   ('t', 0, 2, 'invalid_json', 'd', 0, '{new}+00')""",
    )
    run_pod(job(app, "cleanup"))
    for table in ("new_reports", "reported", "rejected_messages", "read_errors"):
        assert query(database, f"SELECT count(*) FROM {table}") == [(1,)], table

    backfill_app, _ = backfill(INCOMING_TOPIC=topic, FROM_OFFSET="0", UNTIL_OFFSET="1")
    run_pod(job(backfill_app, "backfill"))
    assert len(rows(database)) == 2  # offset 0 loaded again, its row had been cleaned
    assert committed(services, group, topic, 1) == {0: 1}
