"""The exceptions of etl: one root, each infrastructure failure with its documented exit code.

    EtlError                      root; never raised itself
    ├── ConfigError               exit 2: bad configuration or usage, nothing was touched
    ├── KafkaUnavailable          exit 3: broker unreachable, group join or commit failed
    ├── PostgresUnavailable       exit 4: database unreachable after the retry budget, TLS
    │                                     verification failed, or it refused the operation
    │                                     (a constraint, ...)
    ├── SchemaMissing             exit 5: the tables etl writes do not exist (run etl db migrate)
    ├── SchemaConflict            exit 5: the schema's version forbids the operation, or the
    │                                     database refused a migration step (rolled back)
    ├── Interrupted               exit 6: SIGTERM/SIGINT; work written so far is committed
    ├── PushgatewayUnavailable    exit 7: only ``etl check``; ``etl run`` logs a failed push
    ├── PostgresRefused           exit 8: PostgreSQL refused the login or the privilege
    │                                     (SQLSTATE class 28, 42501): a retry cannot help
    ├── KafkaRefused              exit 9: the topic does not exist, or Kafka refused our
    │                                     credentials or authorization: a retry cannot help
    └── DatabaseMismatch          exit 10: only ``etl verify``: the database lacks messages
                                           of the topic, or holds a row otherwise

Exit codes 3 and 4 mean "try again later"; `PERMANENT_EXIT_CODES` are those a scheduler should
not retry (the Kubernetes ``podFailurePolicy`` fails the Job at once on them).

A bad message is never an exception: `etl.core.decode` turns it into a `Rejection` value.
Adapters (`source`, `sink`, `metrics`) translate third-party errors into this tree once, with
``raise ... from exc``; nothing above them imports confluent_kafka or psycopg errors.
`is_transient_sqlstate` and `is_transient_connection_failure` decide which database errors are
worth a retry; `etl.pg.failures` applies them to psycopg's errors.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUG = 1


class EtlError(Exception):
    """Root of every error etl raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_BUG


class ConfigError(EtlError):
    """Invalid configuration or command line; raised before any connection is opened."""

    exit_code = 2


class KafkaUnavailable(EtlError):
    """Kafka could not be reached or refused an operation the run depends on."""

    exit_code = 3


class PostgresUnavailable(EtlError):
    """PostgreSQL could not be reached or kept failing after the bounded retries."""

    exit_code = 4


class SchemaMissing(EtlError):
    """The database lacks a table or column etl writes; the message says which."""

    exit_code = 5


class SchemaConflict(EtlError):
    """The schema is at a version that forbids the operation, or a migration step was refused."""

    exit_code = 5


class Interrupted(EtlError):
    """The run stopped on a signal after committing every batch it had written."""

    exit_code = 6


class PushgatewayUnavailable(EtlError):
    """The Pushgateway did not answer; an exit code of ``etl check`` only."""

    exit_code = 7


class PostgresRefused(EtlError):
    """PostgreSQL refused our login or a privilege; only a change of configuration helps."""

    exit_code = 8


class KafkaRefused(EtlError):
    """The topic is missing, or Kafka refused authentication or authorization."""

    exit_code = 9


class DatabaseMismatch(EtlError):
    """``etl verify`` found messages whose row or rejection is missing, or a row that differs
    from what ``etl run`` stores; the output names each by partition and offset."""

    exit_code = 10


EXIT_CODES: dict[int, str] = {
    EXIT_OK: "reached the stop offsets of every assigned partition (rejections included)",
    EXIT_BUG: "unexpected error (a bug): traceback on stderr",
    ConfigError.exit_code: "usage or configuration error; nothing was touched",
    KafkaUnavailable.exit_code: "Kafka unavailable",
    PostgresUnavailable.exit_code: "PostgreSQL unavailable (after retry_max_seconds of retries),"
    " TLS verification failed, or it refused the operation",
    SchemaMissing.exit_code: "database schema missing (run etl db migrate)",
    Interrupted.exit_code: "interrupted by SIGTERM/SIGINT; committed what was written",
    PushgatewayUnavailable.exit_code: "Pushgateway unavailable (etl check only)",
    PostgresRefused.exit_code: "PostgreSQL refused the login or a privilege; fix the"
    " configuration (not retried)",
    KafkaRefused.exit_code: "topic missing, or Kafka refused authentication or authorization;"
    " fix the configuration (not retried)",
    DatabaseMismatch.exit_code: "etl verify only: the database lacks messages of the topic or"
    " holds a row that differs (each named by partition:offset)",
}

# Exit codes after which running the same job again cannot succeed without a change.
PERMANENT_EXIT_CODES: frozenset[int] = frozenset(
    {EXIT_BUG, ConfigError.exit_code, PostgresRefused.exit_code, KafkaRefused.exit_code}
)

# SQLSTATE classes/codes after which repeating the same idempotent transaction can succeed:
# connection exceptions (08), serialization failure / deadlock (40001, 40P01), operator
# intervention such as admin shutdown or crash recovery (57P01..57P03), a statement cancelled by
# statement_timeout (57014, e.g. behind a lock), insufficient resources (53).
_TRANSIENT_CLASSES = ("08", "53")
_TRANSIENT_CODES = frozenset({"40001", "40P01", "57014", "57P01", "57P02", "57P03"})


def is_transient_sqlstate(sqlstate: str) -> bool:
    """True when a database error with this SQLSTATE may go away if the transaction is retried."""
    return sqlstate[:2] in _TRANSIENT_CLASSES or sqlstate in _TRANSIENT_CODES


# libpq reports a failed connection without a SQLSTATE. A server that answered ``FATAL`` refused
# us (bad password, unknown role or database): retrying cannot help, unless it said it is
# starting, stopping, recovering or full.
_TRANSIENT_FATAL = (
    "starting up",
    "shutting down",
    "in recovery",
    "too many clients",
    "remaining connection slots",
)


def is_transient_connection_failure(message: str) -> bool:
    """True for a refused, reset or timed-out connection; False when the server refused us."""
    if "FATAL:" not in message:
        return True
    return any(reason in message for reason in _TRANSIENT_FATAL)


def exit_codes_help() -> str:
    """The exit code table as shown by ``etl run --help`` and the README."""
    return "\n".join(f"{code}: {text}" for code, text in sorted(EXIT_CODES.items()))
