"""Running the real ``etl`` command and reading back what it did: rows, rejections, offsets,
pushed metrics. Shared by the integration tests."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from confluent_kafka import Consumer, TopicPartition

from tests.helpers.services import ROOT, Services

CLUSTER = "5d5892d3-1f74-4ccf-91af-548dfc9767{:02x}"
ETL = [sys.executable, "-m", "etl", "run"]
PYTHON_ETL = [sys.executable, "-m", "etl"]


def good(i: int) -> bytes:
    return orjson.dumps(
        {
            "OrgID": 1000 + i,
            "AccountNumber": 50 + i,
            "ClusterName": CLUSTER.format(i % 256),
            "Report": {
                "fingerprints": [],
                "system": {"h": 1},
                "info": [],
                "reports": [{"rule_id": f"rule_{i}|KEY", "details": {"html": "<b>é</b>"}}],
            },
            "LastChecked": f"2026-05-04T09:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z",
            "Version": 2,
        }
    )


BAD = [b"", b"not json", b'{"OrgID": "1"}', orjson.dumps({"OrgID": 1})]


def run_etl(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``etl run ARGS`` as a user runs it."""
    return etl_command(env, "run", *args, timeout=timeout)


def etl_command(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``etl ARGS`` as a user runs it."""
    return subprocess.run(
        [*PYTHON_ETL, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's one line; with JSON logs the same failure follows as the last line, JSON."""
    *_, line, last = result.stderr.strip().splitlines()
    event = orjson.loads(last)
    assert (event["event"], event["exit_code"]) == ("command_failed", result.returncode)
    assert line == f"etl: error: {event['error']}"
    return line


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    for line in result.stderr.splitlines():
        if line.startswith("{") and '"event":"run_finished"' in line:
            doc: dict[str, Any] = orjson.loads(line)
            return doc
    raise AssertionError(f"no summary line in stderr:\n{result.stderr}")


def rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT org_id, account_number, cluster, updated_at, kafka_partition, kafka_offset"
            " FROM new_reports ORDER BY org_id"
        ).fetchall()


def rejections(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT kafka_partition, kafka_offset, reason, raw_value FROM rejected_messages"
            " ORDER BY kafka_partition, kafka_offset"
        ).fetchall()


def committed(services: Services, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def pushed(services: Services, job: str) -> dict[str, float]:
    """The job's series on the Pushgateway, as 'name{labels}' -> value (job label dropped)."""
    body = urllib.request.urlopen(f"{services.pushgateway}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("etl_") and f'job="{job}"' in line:
            name, _, val = line.rpartition(" ")
            labels = ",".join(
                part
                for part in name[name.find("{") + 1 : -1].split(",")
                if not part.startswith(("job=", "instance="))
            )
            out[name.split("{")[0] + (f"{{{labels}}}" if labels else "")] = float(val)
    return out


Env = Callable[..., dict[str, str]]
