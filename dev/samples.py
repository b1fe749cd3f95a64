"""Create a topic and produce sample report messages (valid ones and a few invalid ones).

Usage: python3 dev/samples.py TOPIC [--partitions 3] [--count 20]
Reads ETL_KAFKA__BOOTSTRAP_SERVERS. Timestamps are in the past, so every valid sample loads.
"""

from __future__ import annotations

import argparse
import itertools
import os
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from producing import produce_all

INVALID = [
    b"",
    b"{not json",
    orjson.dumps({"OrgID": "42", "ClusterName": str(uuid.UUID(int=1))}),
    orjson.dumps({"OrgID": 42, "ClusterName": "not-a-uuid", "Report": {}, "LastChecked": "x"}),
]


def sample(i: int, now: datetime) -> bytes:
    cluster = uuid.UUID(int=0x5D5892D31F744CCF91AF548DFC976700 + i % 7)
    return orjson.dumps(
        {
            "OrgID": 1000 + i % 5,
            "AccountNumber": 5000 + i % 5 if i % 4 else None,
            "ClusterName": str(cluster),
            "Report": {
                "fingerprints": [],
                "info": [],
                "skips": [],
                "system": {"metadata": {}, "hostname": None},
                "reports": [
                    {
                        "component": "ccx_rules_ocp.external.rules.nodes_requirements_check.report",
                        "key": "NODES_MINIMUM_REQUIREMENTS_NOT_MET",
                        "details": {
                            "nodes": [{"name": f"node-{i}", "memory": 8.2, "role": "worker"}],
                            "link": "<a href='https://docs'>Requirements für Knoten</a>",
                        },
                        "tags": ["performance"],
                        "links": {},
                    }
                ],
            },
            "LastChecked": (now - timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
            "Version": 2,
            "RequestId": f"req-{i:04d}",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    servers = os.environ["ETL_KAFKA__BOOTSTRAP_SERVERS"]
    admin = AdminClient({"bootstrap.servers": servers})
    for fut in admin.create_topics([NewTopic(args.topic, args.partitions, 1)]).values():
        try:
            fut.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    now = datetime.now(UTC)
    values = itertools.chain((sample(i, now) for i in range(args.count)), INVALID)
    produced = produce_all(
        servers, args.topic, ((i % args.partitions, value) for i, value in enumerate(values))
    )
    print(f"produced {produced} messages ({len(INVALID)} invalid) to {args.topic}")


if __name__ == "__main__":
    main()
