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
- a ``Version`` other than `EXPECTED_VERSION` is stored, flagged and counted;
- ``LastChecked`` is an RFC 3339 date-time no later than ``now + clock skew``, stored as
  naive UTC with microseconds (up to 9 fraction digits are accepted and truncated).

`decode_batch` is the hot path: one call per slice of a batch, the GIL released while it runs,
giving the valid rows as PostgreSQL binary COPY tuples (``etl.core.statements.COLUMNS`` order),
one `CopyData` per partition, so that a partition given up in a rebalance drops whole pieces.
`decode` applies the same rules to one value and returns a `Row`, for inspection and tests.
The result types and the constants are the core's own; this module names them for Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from etl.core import _native

# The contract's constants are the core's own, read from it, never restated here.
DROPPED_REPORT_KEYS: Final = _native.DROPPED_REPORT_KEYS
EXPECTED_VERSION: Final = _native.EXPECTED_VERSION
REASONS: Final = _native.REASONS  # the fixed set of rejection reasons, the `reason` label

# The core's result types (`etl/core/_native.pyi` states them).
CopyData = _native.CopyData  # one partition's binary COPY tuples, read with memoryview()
Decoded = _native.Decoded
Rejection = _native.Rejection
Row = _native.Row

_UNIX_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def latest_allowed_us(latest_allowed: datetime) -> int:
    """A timezone-aware instant as microseconds since 1970-01-01 UTC, as the core takes it."""
    return (latest_allowed - _UNIX_UTC) // _US


def decode_batch(
    messages: Sequence[tuple[int, int, int | None, bytes | None]], latest_allowed: datetime
) -> Decoded:
    """Decode ``messages`` (partition, offset, timestamp, value; `etl.core.ports.Message` fits)."""
    return _native.decode_batch(list(messages), latest_allowed_us(latest_allowed))


def decode(value: bytes | None, latest_allowed: datetime) -> Row | Rejection:
    """Validate one message value. ``latest_allowed`` is now + clock skew, timezone-aware."""
    return _native.decode_one(value, latest_allowed_us(latest_allowed))
