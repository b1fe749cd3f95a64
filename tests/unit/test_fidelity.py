"""The stored report is the Report that was sent, less the dropped keys: every token as sent."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from etl.core.decode import DROPPED_REPORT_KEYS, Row, decode, decode_batch
from etl.core.ports import Message
from tests.helpers.copy_rows import decoded_rows
from tests.helpers.services import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import corpus

LATEST = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)
ENVELOPE = (
    '{"OrgID":1,"ClusterName":"5d5892d3-1f74-4ccf-91af-548dfc9767aa",'
    '"LastChecked":"2026-05-04T09:30:12Z","Report":%s}'
)


def stored(report: str) -> bytes:
    row = decode((ENVELOPE % report).encode(), LATEST)
    assert isinstance(row, Row), row
    return row.report


def test_hostile_values_are_stored_byte_for_byte() -> None:
    kept = (
        '{"reports":[123456789012345678901234567890,-1e-400,1e400,1E+2,-0,0.10e-7,-0.0],'
        '"z":{"b":1,"a":2,"b":3},"s":"\\u00e9\\/\\"\\ud83d\\ude00\\t é ✓","e":{},"a":[],'
        '"System":true,"n":null}'
    )
    sent = (
        '{ "system" : { "x" : 1 } ,\n\t"reports" : [ 123456789012345678901234567890 , -1e-400 ,'
        ' 1e400 , 1E+2 , -0 , 0.10e-7 , -0.0 ] , "fingerprints": [ ] ,\r\n'
        '  "z" : { "b" : 1 , "a" : 2 , "b" : 3 } , "info" : [ ] ,'
        ' "s" : "\\u00e9\\/\\"\\ud83d\\ude00\\t é ✓" , "e" : { } , "a" : [ ] ,'
        ' "syst\\u0065m" : 1 , "pass" : [ ], "skips" : { }, "analysis_metadata" : "m" ,'
        ' "System" : true , "n" : null }'
    )
    assert stored(sent) == kept.encode()


def test_whitespace_inside_strings_and_keys_is_kept() -> None:
    sent = '{"system":1,"fingerprints":1,"reports":1,"a b":" x  y ","\\n":"\\r\\n"}'
    assert stored(sent) == b'{"reports":1,"a b":" x  y ","\\n":"\\r\\n"}'


def test_a_report_of_only_required_keys_keeps_reports() -> None:
    assert stored('{"system":{},"fingerprints":[],"reports":[]}') == b'{"reports":[]}'


def _expected(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in DROPPED_REPORT_KEYS}


def _check_corpus(size: str, count: int, written: str) -> int:
    """``written``: "compact" as `corpus` makes it, "pretty" each valid value re-written by a
    pretty-printer, "sent" as the reports' producer writes them (`corpus`'s "sent" shape).
    Rewritten by Python's ``json``, the stored escapes are what was sent."""
    values, reasons = [], []
    shape = "sent" if written == "sent" else "compact"
    for sent, reason in corpus.generate(size, count, seed=7, shape=shape):
        if written == "pretty" and reason is None:  # as a pretty-printer sends it
            sent = json.dumps(json.loads(sent), indent=2).encode()  # noqa: PLW2901
        if written == "sent" and reason is None:
            assert sent.endswith(b"}\n") and b'"reports": [' in sent, sent[:80]
        values.append(sent)
        reasons.append(reason)
    messages = [Message(3, i, None, v) for i, v in enumerate(values)]
    decoded = decode_batch(messages, datetime.now(UTC) + timedelta(minutes=5))
    assert {i: r.reason for i, r in decoded.rejections} == {
        i: r for i, r in enumerate(reasons) if r is not None
    }
    valid = [i for i, r in enumerate(reasons) if r is None]
    rows = decoded_rows(decoded)
    assert [r.kafka_offset for r in rows] == valid
    for i, row in zip(valid, rows, strict=True):
        report = json.loads(values[i])["Report"]
        assert json.loads(row.report) == _expected(report)
        if written != "compact":  # json.dumps escapes non-ASCII: the escapes are what was sent
            compact = json.dumps(_expected(report), separators=(",", ":")).encode()
        else:
            compact = orjson.dumps(_expected(report))
        assert row.report == compact
        if written == "compact":  # each kept member is a run of the bytes that were sent
            members = orjson.loads(row.report)
            assert all(orjson.dumps({k: v})[1:-1] in values[i] for k, v in members.items())
    assert decoded.report_bytes == sum(len(r.report) for r in rows)
    return len(rows)


def test_a_realistic_corpus_is_stored_as_a_plain_parse_sees_it() -> None:
    assert _check_corpus("1k", 20_000, "compact") > 19_000
    assert _check_corpus("10k", 2_000, "compact") > 1_900
    assert _check_corpus("100k", 100, "compact") > 90


def test_a_pretty_printed_corpus_is_stored_compact_with_its_escapes() -> None:
    assert _check_corpus("10k", 500, "pretty") > 490


def test_a_corpus_written_as_its_producer_writes_it_is_stored_compact() -> None:
    """Python's ``json.dumps``: a space after every ',' and ':', non-ASCII escaped, a newline."""
    assert _check_corpus("1k", 2_000, "sent") > 1_900
    assert _check_corpus("100k", 20, "sent") > 18
