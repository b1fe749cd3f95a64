"""decode(): every rule of the message contract, as a table of good and bad messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from etl.core import _native
from etl.core.decode import (
    DROPPED_REPORT_KEYS,
    EXPECTED_VERSION,
    REASONS,
    Rejection,
    Row,
    decode,
    decode_batch,
)
from etl.core.ports import Message
from tests.helpers.copy_rows import parse

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LATEST = NOW + timedelta(minutes=5)
CLUSTER = "5d5892d3-1f74-4ccf-91af-548dfc9767aa"


def message(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "OrgID": 42,
        "AccountNumber": 7,
        "ClusterName": CLUSTER,
        "Report": {
            "fingerprints": [],
            "reports": [{"rule_id": "r|KEY", "details": {"html": "<b>é</b>", "n": 1.5}}],
            "system": {"hostname": None},
            "info": [{"x": 1}],
            "skips": [],
            "pass": [],
            "analysis_metadata": {"start": "x"},
            "extra": {"kept": True},
        },
        "LastChecked": "2026-05-04T09:30:12.123456Z",
        "Version": 2,
        "RequestId": "abc",
        "Metadata": {"gathering_time": "x"},
    }
    for key, value in overrides.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()


def ok(value: bytes) -> Row:
    result = decode(value, LATEST)
    assert isinstance(result, Row), result
    return result


def rejected(value: bytes | None) -> Rejection:
    result = decode(value, LATEST)
    assert isinstance(result, Rejection), result
    assert result.reason in REASONS
    return result


def test_valid_message_becomes_a_trimmed_row() -> None:
    row = ok(orjson.dumps(message()))
    assert row.org_id == 42
    assert row.account_number == 7
    assert row.cluster == CLUSTER
    assert row.updated_at == datetime(2026, 5, 4, 9, 30, 12, 123456)
    assert orjson.loads(row.report) == {
        "reports": [{"rule_id": "r|KEY", "details": {"html": "<b>é</b>", "n": 1.5}}],
        "extra": {"kept": True},
    }
    assert b" " not in row.report  # compact
    assert not row.account_missing
    assert row.unexpected_version is None


@pytest.mark.parametrize("account", [_DROP, None])
def test_missing_or_null_account_number_is_stored_as_zero_and_flagged(account: object) -> None:
    row = ok(orjson.dumps(message(AccountNumber=account)))
    assert row.account_number == 0
    assert row.account_missing


def test_top_level_keys_match_in_any_case() -> None:
    doc = {k.lower() if k != "Report" else "REPORT": v for k, v in message().items()}
    assert ok(orjson.dumps(doc)).org_id == 42


@pytest.mark.parametrize(
    "spelling",
    [
        CLUSTER.upper(),
        "{" + CLUSTER + "}",
        "urn:uuid:" + CLUSTER,
        CLUSTER.replace("-", ""),
        "{" + CLUSTER.replace("-", "").upper() + "}",
        "URN:UUID:" + CLUSTER,
    ],
)
def test_cluster_spellings_are_normalised(spelling: str) -> None:
    assert ok(orjson.dumps(message(ClusterName=spelling))).cluster == CLUSTER


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-05-04T11:30:12+02:00", datetime(2026, 5, 4, 9, 30, 12)),
        ("2026-05-04T09:30:12.123456789Z", datetime(2026, 5, 4, 9, 30, 12, 123456)),
        ("2026-11-29T12:04:59Z", datetime(2026, 11, 29, 12, 4, 59)),  # within the clock skew
        ("2026-05-04t09:30:12z", datetime(2026, 5, 4, 9, 30, 12)),
        ("2026-05-04T09:30:12.5-01:30", datetime(2026, 5, 4, 11, 0, 12, 500000)),
        ("2024-02-29T23:59:59.999999999+00:00", datetime(2024, 2, 29, 23, 59, 59, 999999)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1)),
    ],
)
def test_timestamps_become_naive_utc(stamp: str, expected: datetime) -> None:
    assert ok(orjson.dumps(message(LastChecked=stamp))).updated_at == expected


def test_unexpected_version_is_accepted_and_reported_as_sent() -> None:
    assert ok(orjson.dumps(message(Version=3))).unexpected_version == "3"
    assert ok(orjson.dumps(message(Version="2"))).unexpected_version == '"2"'
    assert ok(orjson.dumps(message(Version=2.0))).unexpected_version == "2.0"
    assert ok(orjson.dumps(message(Version=None))).unexpected_version is None
    assert ok(orjson.dumps(message(Version=_DROP))).unexpected_version is None


def test_a_backslash_in_the_report_survives() -> None:
    report = message()["Report"] | {"reports": [{"path": "C:\\tmp\\n"}]}
    row = ok(orjson.dumps(message(Report=report)))
    assert orjson.loads(row.report)["reports"] == [{"path": "C:\\tmp\\n"}]


BAD: list[tuple[str, bytes | None, str, str]] = [
    ("none", None, "empty_value", "message value is empty"),
    ("empty", b"", "empty_value", "message value is empty"),
    (
        "not utf-8",
        b'{"OrgID": "\xff"}',
        "invalid_json",
        "not valid UTF-8: invalid byte sequence at byte 11",
    ),
    ("overlong utf-8", b'{"OrgID": "\xc0\xaf"}', "invalid_json", "not valid UTF-8"),
    ("utf-8 surrogate", b'{"a": "\xed\xa0\x80"}', "invalid_json", "not valid UTF-8"),
    ("not json", b"hello", "invalid_json", "not valid JSON: expected a value at byte 0"),
    ("truncated", orjson.dumps(message())[:-7], "invalid_json", "not valid JSON"),
    ("trailing comma", b'{"OrgID": 1,}', "invalid_json", "expected a string key"),
    ("single quotes", b"{'OrgID': 1}", "invalid_json", "not valid JSON"),
    ("NaN", b'{"OrgID": NaN}', "invalid_json", "not valid JSON"),
    ("leading zero", b'{"OrgID": 042}', "invalid_json", "not valid JSON"),
    ("raw control character", b'{"a": "x\ny"}', "invalid_json", "control character"),
    ("deep nesting", b'{"a":' + b"[" * 600 + b"]" * 600 + b"}", "invalid_json", "nesting"),
    (
        "trailing garbage",
        orjson.dumps(message()) + b" x",
        "invalid_json",
        "unexpected content after the document",
    ),
    ("array", b"[1, 2]", "invalid_json", "expected a JSON object, got array"),
    ("string", b'"x"', "invalid_json", "expected a JSON object, got string"),
    (
        "missing OrgID",
        orjson.dumps(message(OrgID=_DROP)),
        "missing_field",
        "OrgID: required field is missing",
    ),
    (
        "null OrgID",
        orjson.dumps(message(OrgID=None)),
        "missing_field",
        "OrgID: required field is null",
    ),
    (
        "string OrgID",
        orjson.dumps(message(OrgID="42")),
        "wrong_type",
        "OrgID: expected integer, got string",
    ),
    (
        "float OrgID",
        orjson.dumps(message(OrgID=42.0)),
        "wrong_type",
        "OrgID: expected integer, got float",
    ),
    (
        "bool OrgID",
        orjson.dumps(message(OrgID=True)),
        "wrong_type",
        "OrgID: expected integer, got boolean",
    ),
    ("negative OrgID", orjson.dumps(message(OrgID=-1)), "out_of_range", "OrgID: -1 is outside"),
    ("huge OrgID", orjson.dumps(message(OrgID=2**31)), "out_of_range", "OrgID: 2147483648"),
    (
        "30-digit OrgID",
        orjson.dumps(message(OrgID=0)).replace(b'"OrgID":0', b'"OrgID":' + b"9" * 30),
        "out_of_range",
        "OrgID: " + "9" * 30 + " is outside 0..2147483647",
    ),
    (
        "exponent OrgID",
        orjson.dumps(message(OrgID=0)).replace(b'"OrgID":0', b'"OrgID":1e2'),
        "wrong_type",
        "OrgID: expected integer, got float",
    ),
    (
        "string account",
        orjson.dumps(message(AccountNumber="7")),
        "wrong_type",
        "AccountNumber: expected integer, got string",
    ),
    (
        "negative account",
        orjson.dumps(message(AccountNumber=-7)),
        "out_of_range",
        "AccountNumber: -7",
    ),
    ("missing cluster", orjson.dumps(message(ClusterName=_DROP)), "missing_field", "ClusterName"),
    (
        "numeric cluster",
        orjson.dumps(message(ClusterName=5)),
        "wrong_type",
        "ClusterName: expected string, got integer",
    ),
    (
        "bad cluster",
        orjson.dumps(message(ClusterName="not-a-uuid")),
        "bad_cluster",
        "ClusterName: not a UUID",
    ),
    ("missing report", orjson.dumps(message(Report=_DROP)), "missing_field", "Report"),
    (
        "report string",
        orjson.dumps(message(Report="{}")),
        "wrong_type",
        "Report: expected object, got string",
    ),
    (
        "report without reports",
        orjson.dumps(message(Report={"fingerprints": [], "system": {}})),
        "bad_report",
        "Report: missing required key(s) reports",
    ),
    (
        "missing LastChecked",
        orjson.dumps(message(LastChecked=_DROP)),
        "missing_field",
        "LastChecked",
    ),
    (
        "numeric LastChecked",
        orjson.dumps(message(LastChecked=1700000000)),
        "wrong_type",
        "LastChecked: expected string, got integer",
    ),
    (
        "garbled LastChecked",
        orjson.dumps(message(LastChecked="yesterday")),
        "bad_timestamp",
        "LastChecked: not an RFC 3339",
    ),
    ("date only", orjson.dumps(message(LastChecked="2026-05-04")), "bad_timestamp", "LastChecked"),
    (
        "no offset",
        orjson.dumps(message(LastChecked="2026-05-04T09:30:12")),
        "bad_timestamp",
        "with offset",
    ),
    (
        "before year 1 in UTC",
        orjson.dumps(message(LastChecked="0001-01-01T00:30:00+01:00")),
        "bad_timestamp",
        "out of the datetime range",
    ),
    (
        "future",
        orjson.dumps(message(LastChecked="2026-11-29T12:05:01Z")),
        "future_timestamp",
        "message from the future",
    ),
    (
        "nul in report",
        orjson.dumps(message(Report=message()["Report"] | {"reports": ["a\x00"]})),
        "unstorable_text",
        "\\u0000",
    ),
    (
        "nul in a report key",
        orjson.dumps(message(Report=message()["Report"] | {"k\x00": 1})),
        "unstorable_text",
        "\\u0000",
    ),
    (
        "lone surrogate",
        orjson.dumps(message()).replace(b'"abc"', b'"\\ud800"'),
        "unstorable_text",
        "lone UTF-16 surrogate",
    ),
    (
        "lone low surrogate in the report",
        orjson.dumps(message()).replace(b'"r|KEY"', b'"\\udc00x"'),
        "unstorable_text",
        "surrogate",
    ),
    (
        "key repeated in another case",
        b'{"OrgID":1,"orgid":2}',
        "duplicate_key",
        'OrgID: the key appears more than once ("OrgID" and "orgid")',
    ),
    (
        "key repeated exactly",
        orjson.dumps(message()).replace(b'"Version":2', b'"Version":2,"Version":3'),
        "duplicate_key",
        "Version: the key appears more than once",
    ),
    (
        "report key repeated in another case",
        orjson.dumps(message()).replace(b'"Version":2', b'"REPORT":{}'),
        "duplicate_key",
        'Report: the key appears more than once ("Report" and "REPORT")',
    ),
]

# LastChecked is RFC 3339 and nothing looser.
BAD_STAMPS = [
    "2026-05-04T09:30:12\\u0000Z",
    "2026-05-04T09:30:12XZ",
    "2026-05-04T09:30:12.Z",
    "2026-W01-1T00:00:00Z",
    "2026-124T00:00:00Z",
    "20240101T000000Z",
    "2026-05-04T09:30:12+01",
    "2026-05-04T09:30:12+0100",
    "2026-05-04 09:30:12Z",
    " 2026-05-04T09:30:12Z",
    "2026-05-04T09:30:12Z ",
    "2026-05-04T09:30:12.1234567891Z",
    "2026-02-29T09:30:12Z",
    "2026-05-04T09:30:60Z",
    "2026-05-04T09:30Z",
]
BAD += [
    (
        f"LastChecked {stamp!r}",
        orjson.dumps(message(LastChecked="X")).replace(b'"X"', b'"%s"' % stamp.encode()),
        "bad_timestamp",
        "LastChecked: not an RFC 3339 timestamp",
    )
    for stamp in BAD_STAMPS
]

# ClusterName: only the spellings docs/message-contract.md lists.
BAD_CLUSTERS = [
    "+" + CLUSTER.replace("-", "")[1:],
    "0_" + CLUSTER.replace("-", "")[2:],
    CLUSTER[:7] + "-" + CLUSTER[7:].replace("-", ""),
    " " + CLUSTER,
    CLUSTER + "\\n",
    "uuid:" + CLUSTER,
    "{" + CLUSTER,
    CLUSTER[:-1] + "g",
]
BAD += [
    (
        f"ClusterName {spelling!r}",
        orjson.dumps(message(ClusterName="X")).replace(b'"X"', b'"%s"' % spelling.encode()),
        "bad_cluster",
        "ClusterName: not a UUID",
    )
    for spelling in BAD_CLUSTERS
]


@pytest.mark.parametrize(
    ("value", "reason", "detail"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_messages_are_rejected_with_a_specific_reason(
    value: bytes | None, reason: str, detail: str
) -> None:
    result = rejected(value)
    assert result.reason == reason
    assert detail in result.detail


def test_escaped_backslash_u0000_text_is_not_a_nul() -> None:
    # The six characters \u0000 written literally (escaped backslash) are storable text.
    report = message()["Report"] | {"reports": ["\\u0000"]}
    assert orjson.loads(ok(orjson.dumps(message(Report=report))).report)["reports"] == ["\\u0000"]


def test_request_id_is_kept_for_the_tracker_on_rows_and_rejections() -> None:
    assert ok(orjson.dumps(message())).request_id == "abc"
    assert rejected(orjson.dumps(message(OrgID="x"))).request_id == "abc"
    assert rejected(b"[]").request_id is None
    assert ok(orjson.dumps(message(RequestId=5))).request_id is None


@pytest.mark.parametrize("depth", [254, 256, 1000, 1023])
def test_a_deeply_nested_report_is_a_value_never_an_exception(depth: int) -> None:
    report = message()["Report"] | {"deep": "@"}
    raw = orjson.dumps(message(Report=report)).replace(b'"@"', b"[" * depth + b"]" * depth)
    result = decode(raw, LATEST)
    assert isinstance(result, Row | Rejection)


def test_the_contract_constants_are_read_from_the_core() -> None:
    assert REASONS is _native.REASONS
    assert DROPPED_REPORT_KEYS is _native.DROPPED_REPORT_KEYS
    assert len(set(REASONS)) == len(REASONS) == 11
    assert all(isinstance(r, str) for r in REASONS + DROPPED_REPORT_KEYS)
    assert "system" in DROPPED_REPORT_KEYS
    assert ok(orjson.dumps(message(Version=EXPECTED_VERSION))).unexpected_version is None
    assert ok(orjson.dumps(message(Version=EXPECTED_VERSION + 1))).unexpected_version == "3"


def test_a_rejection_is_a_value_with_named_fields() -> None:
    made = Rejection("invalid_json", "not valid JSON", None)
    assert made == Rejection("invalid_json", "not valid JSON")
    assert hash(made) == hash(Rejection("invalid_json", "not valid JSON"))
    assert made != Rejection("invalid_json", "not valid JSON", "abc")
    assert (
        repr(made) == "Rejection(reason='invalid_json', detail='not valid JSON', request_id=None)"
    )
    assert rejected(b"") == Rejection("empty_value", "message value is empty")
    assert "org_id=42" in repr(ok(orjson.dumps(message())))


def test_a_slice_comes_back_as_one_chunk_per_partition_in_input_order() -> None:
    messages = [
        Message(3, 100, None, orjson.dumps(message(OrgID=1))),
        Message(1, 7, None, orjson.dumps(message(OrgID=2))),
        Message(3, 101, None, b"{}"),
        Message(1, 8, None, orjson.dumps(message(OrgID=3))),
        Message(3, 102, None, orjson.dumps(message(OrgID=4))),
        Message(5, 0, None, None),  # rejected: no chunk for partition 5
    ]
    decoded = decode_batch(messages, LATEST)
    assert [(c.partition, c.rows) for c in decoded.chunks] == [(3, 2), (1, 2)]
    assert decoded.rows == 4
    assert [(i, r.reason) for i, r in decoded.rejections] == [
        (2, "missing_field"),
        (5, "empty_value"),
    ]
    assert decoded.request_ids == ["abc"] * 4
    for chunk in decoded.chunks:
        tuples = parse(bytes(memoryview(chunk)))
        assert len(chunk) == len(bytes(chunk))
        assert {r.kafka_partition for r in tuples} == {chunk.partition}
    offsets = [[r.kafka_offset for r in parse(bytes(c))] for c in decoded.chunks]
    assert offsets == [[100, 102], [7, 8]]
