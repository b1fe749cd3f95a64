"""Deterministic benchmark corpus: cluster-analysis report messages, produced to a fresh topic.

Every message is built from a seeded `random.Random`, so the same ``--seed`` and sizes give the
same bytes on any machine. A report is a realistic rule-hit document (nested objects, node lists,
strings with HTML, quotes, newlines, backslashes and non-ASCII text, floats and integers) grown
until the whole message value reaches the requested size. Building a distinct 100 KB report per
message would dominate the benchmark, so each size draws from a pool of distinct reports and every
message gets its own envelope (org, account, cluster, timestamp); the job parses, trims and
re-serialises each one anyway.

Valid messages never share a primary key (``LastChecked`` advances one second per message,
starting in the past), so every valid message becomes exactly one row. 1% of the messages (the
``invalid_every``-th ones) are invalid in one of several ways the job must reject.
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka.admin import AdminClient, NewTopic

# The producer loop shared with dev/samples.py lives in dev/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dev"))
from producing import produce_all

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
POOL = {"1k": 512, "10k": 128, "100k": 32}
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)

_RULES = (
    ("nodes_requirements_check", "NODES_MINIMUM_REQUIREMENTS_NOT_MET"),
    ("ccxdev_auxiliary_rule", "CCXDEV_E2E_TEST_RULE"),
    ("samples_op_failed_image_import_check", "SAMPLES_FAILED_IMAGE_IMPORT_ERR"),
    ("cluster_wide_proxy_auth_check", "AUTH_OPERATOR_PROXY_ERROR"),
    ("image_registry_pv_not_bound", "IMAGE_REGISTRY_PV_NOT_BOUND"),
    ("master_defined_as_machinesets", "MASTER_DEFINED_AS_MACHINESETS"),
    ("ocp_version_end_of_life", "OCP4X_BEYOND_EOL"),
)
_TAGS = ("openshift", "performance", "service_availability", "security", "configuration",
         "networking", "registry", "storage", "incident", "sap")  # fmt: skip
_TEXTS = (
    '<p>Node <b>{name}</b> has less memory than the <a href="https://docs.openshift.com/'
    'container-platform/4.14/installing/">minimum requirements</a> &amp; may fail.</p>',
    "Ünïcödé résumé — 日本語のテキスト ✓ naïve café: {name} in Zürich; Ωmega ≥ 16 GiB",
    'error: pod "{name}" failed:\n\tback-off 5m0s restarting\n\tpath C:\\\\data\\\\{name}',
    "<ul><li>Check <code>oc get nodes -o wide</code></li><li>Review {name} events</li></ul>",
    "The image import for «{name}» failed: manifest unknown (¿reintentar? 再試行)",
    'regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ did not match \\"{name}\\" (tab\there)',
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _node(rng: random.Random) -> dict[str, object]:
    name = f"ip-10-0-{rng.randrange(256)}-{rng.randrange(256)}.ec2.internal"
    return {
        "name": name,
        "roles": rng.choice((["worker"], ["master"], ["infra", "worker"])),
        "memory": round(rng.uniform(4, 64), 2),
        "memory_req": 16,
        "cpu": rng.choice((2, 4, 8, 16)),
        "cpu_req": 4,
        "conditions": [
            {
                "type": rng.choice(("Ready", "MemoryPressure", "DiskPressure")),
                "status": rng.choice(("True", "False", "Unknown")),
                "message": rng.choice(_TEXTS).format(name=name),
                "lastTransitionTime": _rfc3339(BASE_TIME - timedelta(seconds=rng.randrange(10**7))),
            }
        ],
    }


def _hit(rng: random.Random, kind: str, nodes: int) -> dict[str, object]:
    module, key = rng.choice(_RULES)
    return {
        "rule_id": f"{module}|{key}",
        "component": f"ccx_rules_ocp.external.rules.{module}.report",
        "type": kind,
        "key": key,
        "details": {
            "type": kind,
            "error_key": key,
            "nodes": [_node(rng) for _ in range(nodes)],
            "link": f"https://access.redhat.com/solutions/{rng.randrange(10**6, 10**7)}",
            "ratio": round(rng.random(), 6),
            "count": rng.randrange(10_000),
            "summary": rng.choice(_TEXTS).format(name=module),
        },
        "tags": rng.sample(_TAGS, 3),
        "links": {"jira": [f"https://issues.redhat.com/browse/OCPBUGS-{rng.randrange(99999)}"]},
    }


def build_report(rng: random.Random, target: int) -> bytes:
    """One ``Report`` object as JSON bytes, about ``target`` bytes long (the message envelope
    adds ~250 bytes). About a fifth goes to keys the job drops (info, pass, skips, metadata)."""
    report: dict[str, object] = {
        "system": {"metadata": {"cluster_id": _uuid(rng)}, "hostname": None},
        "fingerprints": [],
        "version": 1,
        "analysis_metadata": {
            "start": _rfc3339(BASE_TIME),
            "execution_context": "ccx_ocp_core.context.InsightsOperatorContext",
            "plugin_sets": {"insights-core": {"version": "insights-core-3.4.7-1"}},
        },
        "reports": [],
        "skips": [],
        "info": [],
        "pass": [],
    }
    size = len(orjson.dumps(report))
    nodes = max(1, target // 4000)
    goal = target - 250
    while size < goal:
        small = goal - size < 1500
        if small or rng.random() < 0.8:
            section, item = "reports", _hit(rng, "rule", 0 if small else rng.randint(1, nodes))
        else:
            section = rng.choice(("skips", "info", "pass"))
            item = _hit(rng, section, 1)
        bucket = report[section]
        assert isinstance(bucket, list)
        bucket.append(item)
        size += len(orjson.dumps(item)) + 1
    return orjson.dumps(report)


def _rfc3339(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _invalid(rng: random.Random, good: dict[str, object]) -> tuple[str, bytes]:
    """One invalid value and the rejection reason the job should give it."""
    broken = dict(good)
    kinds: list[tuple[str, Callable[[], bytes]]] = [
        ("invalid_json", lambda: orjson.dumps(good)[:-7]),
        ("wrong_type", lambda: orjson.dumps({**broken, "OrgID": str(broken["OrgID"])})),
        ("bad_cluster", lambda: orjson.dumps({**broken, "ClusterName": "not-a-cluster-uuid"})),
        (
            "future_timestamp",
            lambda: orjson.dumps({**broken, "LastChecked": "2099-01-01T00:00:00Z"}),
        ),
        ("bad_report", lambda: orjson.dumps({**broken, "Report": {"reports": []}})),
        (
            "unstorable_text",
            lambda: orjson.dumps(
                {
                    **broken,
                    "Report": {
                        "fingerprints": [],
                        "system": {},
                        "reports": [{"details": "nul \u0000 char"}],
                    },
                }
            ),
        ),
        ("invalid_json", lambda: b"[1, 2, 3]"),
        ("empty_value", lambda: b""),
    ]
    reason, make = rng.choice(kinds)
    return reason, make()


@dataclass
class Corpus:
    """What was produced: enough to check the job's counts and compute throughput."""

    topic: str
    size: str
    messages: int
    partitions: int
    valid: int = 0
    value_bytes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "size": self.size,
            "messages": self.messages,
            "partitions": self.partitions,
            "valid": self.valid,
            "invalid": self.messages - self.valid,
            "value_bytes": self.value_bytes,
            "expected_rejections": dict(self.reasons),
        }


SHAPES = ("compact", "sent")
_REPORT_SLOT = "\u0000report"  # where a "sent" envelope's report text goes


def generate(
    size: str, messages: int, seed: int, invalid_every: int = 100, shape: str = "compact"
) -> Iterator[tuple[bytes, str | None]]:
    """(value, expected rejection reason or None) for each message, deterministically.

    ``shape`` "compact" writes each valid value without whitespace; "sent" writes it as the
    producer of these reports does, with Python's ``json.dumps`` (a space after every ``,``
    and ``:``) and a newline. The invalid values and every value's content are the same."""
    rng = random.Random(f"{seed}-{size}")
    built = [build_report(rng, SIZES[size]) for _ in range(min(POOL[size], messages))]
    pool = [orjson.Fragment(r) for r in built]
    sent = [json.dumps(orjson.loads(r)) for r in built] if shape == "sent" else []
    slot = json.dumps(_REPORT_SLOT)
    clusters = [_uuid(rng) for _ in range(20_000)]
    for i in range(messages):
        ts = BASE_TIME + timedelta(seconds=i, microseconds=rng.randrange(1_000_000))
        chosen = rng.randrange(len(pool))
        envelope: dict[str, object] = {
            "OrgID": rng.randint(1, 2_000),
            "ClusterName": rng.choice(clusters),
            "Report": pool[chosen],
            "LastChecked": _rfc3339(ts),
            "Version": 2,
            "RequestId": f"{rng.getrandbits(64):016x}",
            "Metadata": {"gathering_time": _rfc3339(ts - timedelta(minutes=3))},
        }
        if rng.random() >= 0.05:  # upstream omits the account number for some customers
            envelope["AccountNumber"] = rng.randint(1, 9_999_999)
        if i % invalid_every == invalid_every // 2:
            reason, value = _invalid(rng, envelope)
            yield value, reason
        elif shape == "sent":
            text = json.dumps({**envelope, "Report": _REPORT_SLOT})
            yield (text.replace(slot, sent[chosen], 1) + "\n").encode(), None
        else:
            yield orjson.dumps(envelope), None


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    for fut in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        fut.result(timeout=30)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    if names:
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
        for fut in admin.delete_topics(names).values():
            fut.result(timeout=60)


def delete_groups(bootstrap: str, groups: list[str]) -> None:
    if groups:
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
        for fut in admin.delete_consumer_groups(groups).values():
            try:
                fut.result(timeout=30)
            except Exception as exc:  # a group that never joined does not exist
                print(f"  note: group not deleted: {exc}")


def produce(
    bootstrap: str, topic: str, *, size: str, messages: int, seed: int, partitions: int,
    compression: str = "none", shape: str = "compact",
) -> Corpus:  # fmt: skip
    """Create ``topic`` with ``partitions`` and fill it round-robin; returns what it holds."""
    create_topic(bootstrap, topic, partitions)
    corpus = Corpus(topic, size, messages, partitions)

    def counted() -> Iterator[tuple[int, bytes]]:
        for i, (value, reason) in enumerate(generate(size, messages, seed, shape=shape)):
            corpus.value_bytes += len(value)
            if reason is None:
                corpus.valid += 1
            else:
                corpus.reasons[reason] += 1
            yield i % partitions, value

    produce_all(bootstrap, topic, counted(), config={"compression.type": compression})
    return corpus
