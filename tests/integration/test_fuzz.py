"""Hostile input in bulk: 10,000 mutated messages around valid ones, in one real run.

Mutants come from valid reports by byte flips, truncations, junk and invalid UTF-8, control
characters, deep nesting and top-level fields swapped for other JSON types. Whatever a mutant
is, the run must not crash (exit 0), every valid message must be stored exactly as built, and
every message must be accounted for: inserted, a duplicate of a stored key, or a rejection
with a known reason, stored with its coordinates.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import psycopg

from etl.core.decode import DROPPED_REPORT_KEYS, REASONS
from tests.helpers.runs import Env, run_etl, summary

MUTANTS = 10_000
VALID_AMONG_MUTANTS = 1_000
PARTITIONS = 3
SEED = 20261202

_SWAPS: list[Any] = [
    None,
    True,
    0,
    -1,
    2**31,
    2**63,
    1.5,
    1e400,
    "",
    "x" * 300,
    "\u0000",
    [],
    [1, "a"],
    {},
    {"k": None},
    "2026-02-30T00:00:00Z",
    "00000000-0000-0000-0000-000000000000",
]
_FIELDS = ("OrgID", "AccountNumber", "ClusterName", "Report", "LastChecked", "Version")


def report_doc(org: int, cluster: str, second: int) -> dict[str, Any]:
    return {
        "OrgID": org,
        "AccountNumber": org % 9000 + 1,
        "ClusterName": cluster,
        "Report": {
            "fingerprints": [],
            "system": {"metadata": {}, "hostnames": []},
            "info": [{"info_id": "x"}],
            "skips": [],
            "pass": [],
            "analysis_metadata": {"start": "2026-05-01T00:00:00Z"},
            "reports": [
                {
                    "rule_id": f"rule_{org}|ERROR_KEY",
                    "component": "ccx_rules_ocp.external.rules.nodes",
                    "details": {"nodes": [{"name": f"n{org}", "memory": 8.5}], "type": "rule"},
                    "tags": ["openshift", "performance"],
                }
            ],
        },
        "LastChecked": f"2026-05-04T10:{second // 60 % 60:02d}:{second % 60:02d}.123456789Z",
        "Version": 2,
    }


def mutate(rng: random.Random, doc: dict[str, Any]) -> bytes:
    raw = orjson.dumps(doc)
    kind = rng.randrange(9)
    if kind == 0:  # flip one bit of one byte
        pos = rng.randrange(len(raw))
        return raw[:pos] + bytes([raw[pos] ^ (1 << rng.randrange(8))]) + raw[pos + 1 :]
    if kind == 1:  # cut anywhere
        return raw[: rng.randrange(len(raw))]
    if kind == 2:  # a top-level field of another JSON type
        swapped = dict(doc)
        swapped[rng.choice(_FIELDS)] = rng.choice(_SWAPS)
        return orjson.dumps(swapped) if 1e400 not in swapped.values() else _with_raw_huge(swapped)
    if kind == 3:  # a field missing
        return orjson.dumps({k: v for k, v in doc.items() if k != rng.choice(_FIELDS)})
    if kind == 4:  # bytes that are not UTF-8, inside a string
        pos = raw.index(b"rule_") + 2
        return (
            raw[:pos] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88"]) + raw[pos:]
        )
    if kind == 5:  # control characters and escapes meant for a terminal
        junk = rng.choice(["\x1bZ", "\x07", "\x1b]0;pwned\x07", "\r\n", "\\u0000", "\\ud800"])
        text = raw.decode().replace('"rule_', '"' + junk + "rule_", 1)
        return text.encode()
    if kind == 6:  # report nested far deeper than any real one
        depth = rng.choice([200, 1000, 5000])
        nested = b"[" * depth + b"]" * depth
        return raw.replace(b'"tags":', b'"deep":' + nested + b',"tags":', 1)
    if kind == 7:  # keys repeated under another letter case
        return raw[:-1] + b',"orgid":' + str(rng.randrange(10**6)).encode() + b"}"
    # junk bytes inserted at a random place
    pos = rng.randrange(len(raw))
    return raw[:pos] + rng.randbytes(rng.randrange(1, 8)) + raw[pos:]


def _with_raw_huge(doc: dict[str, Any]) -> bytes:
    """orjson cannot write 1e400; spell it by hand, as a producer in another language might."""
    marker = "__huge__"
    text = orjson.dumps({k: (marker if v == 1e400 else v) for k, v in doc.items()}).decode()
    return text.replace(f'"{marker}"', "1e400").encode()


def test_ten_thousand_mutants_around_valid_messages_in_one_run(
    schema_db: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    rng = random.Random(SEED)
    topic = make_topic(PARTITIONS)
    originals = [report_doc(10_000 + i, f"aaaaaaaa-0000-4000-8000-{i:012x}", i) for i in range(500)]
    produce(topic, [(i % PARTITIONS, orjson.dumps(d)) for i, d in enumerate(originals)])
    first = run_etl(etl_env(topic))
    assert first.returncode == 0, first.stderr[-2000:]

    valid = [
        report_doc(900_000 + i, f"bbbbbbbb-1111-4111-9111-{i:012x}", i)
        for i in range(VALID_AMONG_MUTANTS)
    ]
    batch: list[bytes] = []
    fresh = iter(valid)
    for n in range(MUTANTS):
        batch.append(mutate(rng, rng.choice(originals)))
        if n % (MUTANTS // VALID_AMONG_MUTANTS) == 0:
            batch.append(orjson.dumps(next(fresh)))
    produce(topic, [(i % PARTITIONS, value) for i, value in enumerate(batch)])

    result = run_etl(etl_env(topic), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    done = summary(result)
    assert done["consumed"] == len(batch)
    rejected = sum(done["rejected"].values())
    assert done["inserted"] + done["duplicates"] + rejected == len(batch)
    assert set(done["rejected"]) <= set(REASONS)

    with psycopg.connect(schema_db) as conn:
        stored_rejections = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE reason = '' OR detail = '')"
            " FROM rejected_messages"
        ).fetchone()
        assert stored_rejections == (rejected, 0)
        total = conn.execute("SELECT count(*) FROM new_reports").fetchone()
        assert total == (len(originals) + done["inserted"],)
        kept = {
            (org, str(cluster)): report
            for org, cluster, report in conn.execute(
                "SELECT org_id, cluster, report FROM new_reports WHERE cluster LIKE 'bbbbbbbb-%'"
            )
        }
    assert len(kept) == len(valid)
    for doc in valid:  # every valid message among the mutants, stored exactly as built
        expected = {k: v for k, v in doc["Report"].items() if k not in DROPPED_REPORT_KEYS}
        assert orjson.loads(kept[doc["OrgID"], doc["ClusterName"]]) == expected
