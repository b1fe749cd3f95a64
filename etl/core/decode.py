"""Pure decoding and validation of one Kafka message value: bytes in, a `Row` or a `Rejection` out.

Never raises for bad data and does no I/O. The message contract (README "Message contract"):
top-level keys in any letter case; ``OrgID`` and ``AccountNumber`` integers in 0..2**31-1 (a
missing or null account becomes 0 and is flagged); ``ClusterName`` a UUID stored in canonical
lowercase form; ``Report`` an object holding ``fingerprints``, ``reports`` and ``system``, stored
without the keys in `DROPPED_REPORT_KEYS`, serialised compactly; ``LastChecked`` an RFC 3339
timestamp no later than ``now + clock skew``, stored as naive UTC.

The value is parsed once with orjson; the report dict is trimmed in place and serialised once,
to UTF-8 bytes that go to COPY as they are. Common spellings (canonical keys, a canonical
lowercase UUID, a UTC timestamp) take fast paths; any other spelling takes the general one.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

import orjson

INT32_MAX: Final = 2_147_483_647
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

# Top-level keys match in any letter case; this maps the lowercase form to the spelling used here.
_CANONICAL: Final = {
    name.lower(): name
    for name in (
        "OrgID",
        "AccountNumber",
        "ClusterName",
        "Report",
        "LastChecked",
        "Version",
        "RequestId",
        "Metadata",
    )
}
_CANONICAL_KEYS: Final = frozenset(_CANONICAL.values())
_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ZERO: Final = timedelta(0)

# The fixed set of rejection reasons, used as the `reason` metric label.
REASONS: Final = (
    "empty_value",
    "invalid_json",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "bad_cluster",
    "bad_report",
    "bad_timestamp",
    "future_timestamp",
    "unstorable_text",
)


class Row(NamedTuple):
    """A valid report, ready for ``new_reports``."""

    org_id: int
    account_number: int
    cluster: str
    report: bytes  # compact UTF-8 JSON
    updated_at: datetime  # naive, UTC, microsecond precision
    account_missing: bool
    unexpected_version: object | None  # the Version value when present and not 2
    request_id: str | None = None  # for the payload tracker


class Rejection(NamedTuple):
    """Why a message cannot be stored: `reason` from `REASONS`, `detail` names field and problem."""

    reason: str
    detail: str
    request_id: str | None = None  # when the value parsed and carried one


def decode(value: bytes | None, latest_allowed: datetime) -> Row | Rejection:
    """Validate one message value. ``latest_allowed`` is now + clock skew, timezone-aware."""
    if not value:
        return Rejection("empty_value", "message value is empty")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        if "surrogate" in text and "UTF-8" not in text:
            return Rejection("unstorable_text", f"lone UTF-16 surrogate in a string: {text}")
        return Rejection("invalid_json", f"not valid UTF-8 JSON: {text}")
    if not isinstance(doc, dict):
        return Rejection("invalid_json", f"expected a JSON object, got {_json_type(doc)}")
    fields: dict[str, Any] = (
        doc
        if doc.keys() <= _CANONICAL_KEYS
        else {_CANONICAL.get(str(key).lower(), str(key)): item for key, item in doc.items()}
    )
    request_id = fields.get("RequestId")
    request_id = request_id if isinstance(request_id, str) and request_id else None
    result = _validate(fields, value, latest_allowed, request_id)
    if request_id is not None and isinstance(result, Rejection):
        return result._replace(request_id=request_id)
    return result


def _validate(
    fields: dict[str, Any], value: bytes, latest_allowed: datetime, request_id: str | None
) -> Row | Rejection:
    org_id = _int32(fields, "OrgID", required=True)
    if not isinstance(org_id, int):  # required: None is impossible, a Rejection is not
        return org_id or Rejection("missing_field", "OrgID: required field is missing")
    account = _int32(fields, "AccountNumber", required=False)
    if isinstance(account, Rejection):
        return account
    cluster = _cluster(fields.get("ClusterName"))
    if isinstance(cluster, Rejection):
        return cluster
    report = _report(fields.get("Report"), value)
    if isinstance(report, Rejection):
        return report
    updated_at = _timestamp(fields.get("LastChecked"), latest_allowed)
    if isinstance(updated_at, Rejection):
        return updated_at
    version = fields.get("Version")
    unexpected = None if version is None or _is_int(version, EXPECTED_VERSION) else version
    return Row(
        org_id=org_id,
        account_number=0 if account is None else account,
        cluster=cluster,
        report=report,
        updated_at=updated_at,
        account_missing=account is None,
        unexpected_version=unexpected,
        request_id=request_id,
    )


def _int32(fields: dict[str, Any], name: str, *, required: bool) -> int | Rejection | None:
    raw = fields.get(name)
    if raw is None:
        if required:
            state = "null" if name in fields else "missing"
            return Rejection("missing_field", f"{name}: required field is {state}")
        return None
    if type(raw) is not int:
        return Rejection("wrong_type", f"{name}: expected integer, got {_json_type(raw)}")
    if not 0 <= raw <= INT32_MAX:
        return Rejection("out_of_range", f"{name}: {raw} is outside 0..{INT32_MAX}")
    return raw


def _cluster(raw: Any) -> str | Rejection:
    if raw is None:
        return Rejection("missing_field", "ClusterName: required field is missing or null")
    if not isinstance(raw, str):
        return Rejection("wrong_type", f"ClusterName: expected string, got {_json_type(raw)}")
    if _CANONICAL_UUID.fullmatch(raw):
        return raw
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        return Rejection("bad_cluster", f"ClusterName: not a UUID: {raw[:80]!r}")


def _report(raw: Any, value: bytes) -> bytes | Rejection:
    if raw is None:
        return Rejection("missing_field", "Report: required field is missing or null")
    if not isinstance(raw, dict):
        return Rejection("wrong_type", f"Report: expected object, got {_json_type(raw)}")
    missing = [key for key in REQUIRED_REPORT_KEYS if key not in raw]
    if missing:
        return Rejection("bad_report", f"Report: missing required key(s) {', '.join(missing)}")
    for key in DROPPED_REPORT_KEYS:
        raw.pop(key, None)
    try:
        out = orjson.dumps(raw)
    except TypeError:  # orjson parses deeper nesting than it writes (255 levels)
        return Rejection("bad_report", "Report: nested deeper than 255 levels")
    # The cheap byte test keeps the exact walk off the common path; the depth is bounded now.
    if b"\\u0000" in value and _contains_nul(raw):
        return Rejection("unstorable_text", "Report: contains a \\u0000 character")
    return out


def _contains_nul(node: Any) -> bool:
    if isinstance(node, str):
        return "\x00" in node
    if isinstance(node, dict):
        return any("\x00" in key or _contains_nul(item) for key, item in node.items())
    if isinstance(node, list):
        return any(_contains_nul(item) for item in node)
    return False


def _timestamp(raw: Any, latest_allowed: datetime) -> datetime | Rejection:
    if raw is None:
        return Rejection("missing_field", "LastChecked: required field is missing or null")
    if not isinstance(raw, str):
        return Rejection("wrong_type", f"LastChecked: expected string, got {_json_type(raw)}")
    text = raw.strip()
    try:
        # fromisoformat (3.11) accepts RFC 3339 incl. "Z" and truncates beyond microseconds.
        parsed = datetime.fromisoformat(text) if len(text) >= 20 and "T" in text.upper() else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return Rejection(
            "bad_timestamp", f"LastChecked: not an RFC 3339 timestamp with offset: {raw[:80]!r}"
        )
    try:
        if parsed > latest_allowed:
            return Rejection(
                "future_timestamp",
                f"LastChecked: {text} is later than now plus the allowed clock skew "
                "(message from the future)",
            )
        if parsed.utcoffset() == _ZERO:
            return parsed.replace(tzinfo=None)
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # e.g. 0001-01-01T00:30:00+01:00 is before year 1 in UTC
        return Rejection("bad_timestamp", f"LastChecked: {text} is out of the datetime range")


def _is_int(raw: Any, expected: int) -> bool:
    return type(raw) is int and raw == expected


def _json_type(raw: Any) -> str:
    match raw:
        case bool():
            return "boolean"
        case int():
            return "integer"
        case float():
            return "float"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
        case None:
            return "null"
    return type(raw).__name__
