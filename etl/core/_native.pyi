"""Types of the compiled core (native/src/python.rs), stated once: `etl.core.decode` re-exports
them and reads the contract's constants from here."""

from datetime import datetime
from typing import Final

REASONS: Final[tuple[str, ...]]  # every rejection reason, the `reason` metric label
DROPPED_REPORT_KEYS: Final[tuple[str, ...]]  # Report members never stored
EXPECTED_VERSION: Final[int]  # a valid message with another Version is stored and counted

class CopyData:
    """One partition's binary COPY tuples of a decoded slice (``etl.core.statements.COLUMNS``
    order, no file header or trailer), lent through the buffer protocol (``memoryview(data)``).
    Built by `decode_batch`; built from ``data`` (copied) only for a filtered cold path."""

    def __init__(self, partition: int, rows: int, data: bytes, /) -> None: ...
    @property
    def partition(self) -> int: ...
    @property
    def rows(self) -> int: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

class Rejection:
    """Why a message cannot be stored: `reason` from `REASONS`, `detail` names field and problem."""

    def __init__(self, reason: str, detail: str, request_id: str | None = None) -> None: ...
    @property
    def reason(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def request_id(self) -> str | None:
        """When the value parsed and carried one, for the payload tracker."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class Row:
    """A valid report, as it is stored in ``new_reports``."""

    @property
    def org_id(self) -> int: ...
    @property
    def account_number(self) -> int: ...  # 0 when missing or null (`account_missing`)
    @property
    def cluster(self) -> str: ...  # canonical lowercase UUID
    @property
    def report(self) -> bytes: ...  # compact UTF-8 JSON, every token as sent
    @property
    def updated_at(self) -> datetime: ...  # naive, UTC, microsecond precision
    @property
    def account_missing(self) -> bool: ...
    @property
    def unexpected_version(self) -> str | None:
        """The Version token as sent, when present and not `EXPECTED_VERSION`."""
    @property
    def request_id(self) -> str | None: ...

class Decoded:
    """A slice decoded at once. Indexes refer to positions in the slice."""

    @property
    def chunks(self) -> list[CopyData]:
        """One per partition with valid messages, in order of its first message."""
    @property
    def rows(self) -> int: ...
    @property
    def report_bytes(self) -> int: ...
    @property
    def missing_account(self) -> int: ...
    @property
    def unexpected_version(self) -> int:
        """Valid messages whose Version is present and not `EXPECTED_VERSION`."""
    @property
    def versions(self) -> list[tuple[int, str]]:
        """(index, token) of the first message of each distinct unexpected Version."""
    @property
    def rejections(self) -> list[tuple[int, Rejection]]: ...
    @property
    def request_ids(self) -> list[str]:
        """Of the valid messages that carry one, in input order."""

def decode_batch(
    messages: list[tuple[int, int, int | None, bytes | None]], latest_allowed_us: int, /
) -> Decoded: ...
def decode_one(value: bytes | None, latest_allowed_us: int, /) -> Row | Rejection: ...
