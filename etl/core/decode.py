"""Pure decoding and validation of Kafka message values: bytes in, rows or rejections out.

Never raises for bad data and does no I/O. The rules (docs/message-contract.md) live in the
compiled core `etl.core._native` (Rust, under ``native/``), which walks each value once:

- top-level keys match in any ASCII letter case; a known key given twice, in any case, is
  ambiguous and rejects the message (``duplicate_key``);
- ``OrgID`` and ``AccountNumber`` are JSON integers in 0..2**31-1 (a missing or null account
  becomes 0 and is flagged);
- ``ClusterName`` is a UUID in one of the listed spellings, stored in canonical lowercase form;
- ``Report`` is an object holding ``fingerprints``, ``reports`` and ``system``, stored without
  the keys in `DROPPED_REPORT_KEYS` and otherwise exactly as sent: every remaining token
  (number spelling, string escapes, nested key order) byte for byte, whitespace between
  tokens removed;
- ``LastChecked`` is an RFC 3339 date-time no later than ``now + clock skew``, stored as
  naive UTC with microseconds (up to 9 fraction digits are accepted and truncated).

`decode_batch` is the hot path: one call per slice of a batch, the GIL released while it runs,
giving the valid rows as PostgreSQL binary COPY tuples (``etl.core.statements.COLUMNS`` order).
`decode` applies the same rules to one value and returns a `Row`, for inspection and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from etl.core import _native

EXPECTED_VERSION: Final = 2
DROPPED_REPORT_KEYS: Final = (
    "system",
    "fingerprints",
    "skips",
    "info",
    "pass",
    "analysis_metadata",
)
REQUIRED_REPORT_KEYS: Final = ("fingerprints", "reports", "system")

# The fixed set of rejection reasons, used as the `reason` metric label.
REASONS: Final = (
    "empty_value",
    "invalid_json",
    "duplicate_key",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "bad_cluster",
    "bad_report",
    "bad_timestamp",
    "future_timestamp",
    "unstorable_text",
)

CopyData = _native.CopyData  # binary COPY tuples, read with memoryview()
_UNIX: Final = datetime(1970, 1, 1)
_UNIX_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


class Row(NamedTuple):
    """A valid report, as it is stored in ``new_reports``."""

    org_id: int
    account_number: int
    cluster: str
    report: bytes  # compact UTF-8 JSON, every token as sent
    updated_at: datetime  # naive, UTC, microsecond precision
    account_missing: bool
    unexpected_version: str | None  # the Version token as sent, when present and not 2
    request_id: str | None = None  # for the payload tracker


class Rejection(NamedTuple):
    """Why a message cannot be stored: `reason` from `REASONS`, `detail` names field and problem."""

    reason: str
    detail: str
    request_id: str | None = None  # when the value parsed and carried one


class Decoded(NamedTuple):
    """A slice decoded at once. Indexes refer to positions in the slice."""

    copy: CopyData  # binary COPY tuples of the valid messages, without header/trailer
    rows: int
    report_bytes: int
    missing_account: int
    unexpected_version: int  # valid messages whose Version is present and not 2
    versions: list[tuple[int, str]]  # first message of each distinct unexpected Version
    rejections: list[tuple[int, Rejection]]
    request_ids: list[str]  # of the valid messages that carry one, in order


def latest_allowed_us(latest_allowed: datetime) -> int:
    """A timezone-aware instant as microseconds since 1970-01-01 UTC, as the core takes it."""
    return (latest_allowed - _UNIX_UTC) // _US


def decode_batch(
    messages: Sequence[tuple[int, int, int | None, bytes | None]], latest_allowed: datetime
) -> Decoded:
    """Decode ``messages`` (partition, offset, timestamp, value; `etl.core.ports.Message` fits)."""
    copy, rows, size, missing, unexpected, versions, rejected, ids = _native.decode_batch(
        list(messages), latest_allowed_us(latest_allowed)
    )
    rejections = [(i, Rejection(reason, detail, rid)) for i, reason, detail, rid in rejected]
    return Decoded(copy, rows, size, missing, unexpected, versions, rejections, ids)


def decode(value: bytes | None, latest_allowed: datetime) -> Row | Rejection:
    """Validate one message value. ``latest_allowed`` is now + clock skew, timezone-aware."""
    result = _native.decode_one(value, latest_allowed_us(latest_allowed))
    if len(result) == 3:
        return Rejection(*result)
    org, account, missing, cluster, report, updated_us, version, request_id = result
    return Row(
        org, account, cluster, report, _UNIX + updated_us * _US, missing, version, request_id
    )
