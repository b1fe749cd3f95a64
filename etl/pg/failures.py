"""psycopg errors translated once into the `etl.core.errors` tree, with text safe to log.

Four kinds of failure, decided here for the sink and the administration commands alike:

    transient       worth retrying the idempotent transaction (`is_transient`): a refused or
                    reset connection, a server starting up, shutting down or recovering
                    (57P01-57P03, also when only libpq's message names it), a SQLSTATE
                    `etl.core.errors.is_transient_sqlstate` accepts
    configuration   libpq rejected the connection options before connecting (``sslmode=bogus``,
                    ``port=notaport``): `ConfigError`, exit 2, never retried
    TLS             certificate or host-name verification failed, or the server lacks the TLS
                    the DSN requires: `PostgresUnavailable`, exit 4, never retried
    refused         the server refused the login (SQLSTATE class 28, bad password, unknown role,
                    no pg_hba.conf entry) or a privilege (42501): `PostgresRefused`, exit 8

Anything else is "refused the operation" (exit 4, its SQLSTATE named). The text of every error
produced here is `safe_text`: the primary message only, on one line. libpq's ``DETAIL`` and
``CONTEXT`` lines (``COPY new_reports, line 3630: "1 7 ...``, ``Failing row contains (...)``)
and the message of data and integrity errors can quote customer data or a value from the DSN,
so they never reach a log line or the ``etl: error:`` line.
"""

from __future__ import annotations

import re
from typing import Final

import psycopg

from etl.core.errors import (
    ConfigError,
    EtlError,
    PostgresRefused,
    PostgresUnavailable,
    SchemaMissing,
    is_transient_connection_failure,
    is_transient_sqlstate,
)

# psycopg's prefix when libpq fails before any network activity: the options themselves.
_OPTIONS_REJECTED: Final = "connection is bad:"
_OPTION_NAMES: Final = (
    re.compile(r'connection option "([a-z_]+)"'),
    re.compile(r"invalid ([a-z_]+) value"),
)
_TLS_MARKERS: Final = ("certificate", "does not match host name", "does not support SSL")
_REFUSED_MARKERS: Final = (
    "password authentication failed",
    "authentication failed for user",
    "no password supplied",
    "pg_hba.conf",
    "permission denied",
)
# Classes whose primary message may quote a value of the data (22: data exception,
# 23: integrity constraint violation): only their condition and constraint are shown.
_DATA_CLASSES: Final = ("22", "23")


def is_transient(exc: BaseException) -> bool:
    """True when repeating the same idempotent transaction on a new connection may succeed.

    By SQLSTATE first. A failed connection attempt carries none (libpq does not hand it over):
    its message decides, with the server's ``FATAL`` refusal mapped back to the SQLSTATE it was
    sent with (57P03 while the server starts, replays its WAL after a crash or shuts down).
    """
    if not isinstance(exc, psycopg.Error):
        return False
    if exc.sqlstate is not None:
        return is_transient_sqlstate(exc.sqlstate)
    text = str(exc)  # libpq-level failure: the connection, not a statement
    if _kind_of_connection_failure(text) is not None:
        return False
    return isinstance(
        exc, psycopg.OperationalError | psycopg.InterfaceError
    ) and is_transient_connection_failure(text)


def translate(exc: psycopg.Error, where: str = "") -> EtlError:
    """The `EtlError` this psycopg error stands for; its text is safe to log."""
    text = safe_text(exc)
    at = f" at {where}" if where else ""
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return SchemaMissing(f"{text}; run etl db migrate")
    if exc.sqlstate is None:
        kind = _kind_of_connection_failure(str(exc))
        if kind == "options":
            return ConfigError(f"postgres.dsn: {text}")
        if kind == "tls":
            return PostgresUnavailable(
                f"PostgreSQL TLS verification failed{at} (not retried): {text}"
            )
        if kind == "refused":
            return PostgresRefused(f"PostgreSQL refused the login{at}: {text}")
    elif exc.sqlstate.startswith("28") or exc.sqlstate == "42501":
        return PostgresRefused(f"PostgreSQL refused (SQLSTATE {exc.sqlstate}){at}: {text}")
    if is_transient(exc) or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return PostgresUnavailable(f"PostgreSQL unavailable{at}: {text}")
    # Not transient (a violated constraint, ...): retrying cannot help.
    return PostgresUnavailable(
        f"PostgreSQL refused the operation (SQLSTATE {exc.sqlstate}){at}: {text}"
    )


def safe_text(exc: BaseException | None) -> str:
    """One line naming the failure without DETAIL, CONTEXT, row content or option values."""
    if exc is None:
        return "unknown error"
    if not isinstance(exc, psycopg.Error):
        return _one_line(str(exc))
    if exc.sqlstate is None:
        text = str(exc)
        if _kind_of_connection_failure(text) == "options":
            found = (m.group(1) for p in _OPTION_NAMES if (m := p.search(text)))
            option = next(found, "?")
            return f'libpq rejected the value of connection option "{option}"'
        # libpq's connection messages name hosts, ports, roles and databases, never a password.
        return _one_line(text.split("\nDETAIL:", maxsplit=1)[0].split("\nCONTEXT:", maxsplit=1)[0])
    if exc.sqlstate[:2] in _DATA_CLASSES:
        what = re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).lower()  # "foreign key ..."
        constraint = exc.diag.constraint_name
        return f"{what}" + (f" (constraint {constraint})" if constraint else "")
    return _one_line(exc.diag.message_primary or type(exc).__name__)


def _kind_of_connection_failure(text: str) -> str | None:
    """``options``, ``tls`` or ``refused`` for a failure no retry can fix; None otherwise."""
    if text.startswith(_OPTIONS_REJECTED):
        return "options"
    if any(marker in text for marker in _TLS_MARKERS):
        return "tls"
    server_said = "FATAL:" in text or "fe_sendauth:" in text
    if server_said and any(marker in text for marker in _REFUSED_MARKERS):
        return "refused"
    if re.search(r'FATAL:\s+role "[^"]*" does not exist', text):
        return "refused"
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
