"""Which database errors are retried: by SQLSTATE, or by libpq's message when it carries none."""

from __future__ import annotations

import psycopg
import pytest

from etl.core.errors import connection_refusal_sqlstate, is_transient_connection_failure
from etl.pg.failures import is_transient

_AT = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  '


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.AdminShutdown,  # 57P01
        psycopg.errors.CrashShutdown,  # 57P02
        psycopg.errors.CannotConnectNow,  # 57P03
        psycopg.errors.TooManyConnections,  # 53300
        psycopg.errors.SerializationFailure,  # 40001
        psycopg.errors.QueryCanceled,  # 57014
    ],
)
def test_errors_whose_sqlstate_says_try_again_are_transient(error: type[psycopg.Error]) -> None:
    assert is_transient(error("whatever the text says"))


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.InvalidPassword,  # 28P01
        psycopg.errors.InsufficientPrivilege,  # 42501
        psycopg.errors.UniqueViolation,  # 23505
    ],
)
def test_errors_whose_sqlstate_says_refused_are_not_transient(error: type[psycopg.Error]) -> None:
    assert not is_transient(error("the database system is starting up"))


@pytest.mark.parametrize(
    ("fatal", "sqlstate"),
    [
        ("the database system is starting up", "57P03"),
        (
            "the database system is not yet accepting connections\n"
            "DETAIL:  Consistent recovery state has not been yet reached.",
            "57P03",
        ),
        (
            "the database system is not accepting connections\n"
            "DETAIL:  Hot standby mode is disabled.",
            "57P03",
        ),
        ("the database system is shutting down", "57P03"),
        ("the database system is in recovery mode", "57P03"),
        ("terminating connection due to administrator command", "57P01"),
        ("sorry, too many clients already", "53300"),
    ],
)
def test_a_connection_refused_while_the_server_cannot_take_one_is_retried(
    fatal: str, sqlstate: str
) -> None:
    text = _AT + fatal
    assert connection_refusal_sqlstate(text) == sqlstate
    assert is_transient_connection_failure(text)
    assert is_transient(psycopg.OperationalError(text))  # psycopg gives no SQLSTATE here


@pytest.mark.parametrize(
    "fatal",
    [
        'password authentication failed for user "etl"',
        'database "nope" does not exist',
        'role "nobody" does not exist',
    ],
)
def test_a_connection_the_server_refused_us_is_not_retried(fatal: str) -> None:
    text = _AT + fatal
    assert connection_refusal_sqlstate(text) is None
    assert not is_transient(psycopg.OperationalError(text))


def test_a_connection_no_server_answered_is_retried() -> None:
    text = _AT.replace("FATAL:  ", "Connection refused")
    assert connection_refusal_sqlstate(text) is None
    assert is_transient(psycopg.OperationalError(text))
