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
    │                                     credentials, security protocol or authorization: a
    │                                     retry cannot help
    └── DatabaseMismatch          exit 10: only ``etl verify``: the database lacks messages
                                           of the topic, or holds a row otherwise

Exit codes 3 and 4 mean "try again later"; `PERMANENT_EXIT_CODES` are those a scheduler should
not retry (the Kubernetes ``podFailurePolicy`` fails the Job at once on them).

A bad message is never an exception: `etl.core.decode` turns it into a `Rejection` value.
Adapters (`source`, `sink`, `metrics`) translate third-party errors into this tree once, with
``raise ... from exc``; nothing above them imports confluent_kafka or psycopg errors.
`is_transient_sqlstate` and `is_transient_connection_failure` decide which database errors are
worth a retry, by SQLSTATE (recovered from the message when libpq gives none: a connection
refused while the server starts, recovers or stops is 57P03); `etl.pg.failures` applies them to
psycopg's errors.
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


# The one table of what each exit code means; a command's ``--help`` lists the rows of the codes
# it can return (`exit_codes_help`), so each row is worded for every command that returns it.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_BUG: "unexpected error (a bug): traceback on stderr",
    ConfigError.exit_code: "usage or configuration error; nothing was touched",
    KafkaUnavailable.exit_code: "Kafka unavailable",
    PostgresUnavailable.exit_code: "PostgreSQL unavailable (after retry_max_seconds of retries),"
    " TLS verification failed, or it refused the operation",
    # SchemaMissing and SchemaConflict share the code: the message says which.
    SchemaMissing.exit_code: "database schema missing (run etl db migrate), or a schema conflict:"
    " its version or state forbids the operation, or the database refused a migration step"
    " (rolled back); the message says which",
    Interrupted.exit_code: "interrupted by SIGTERM/SIGINT; committed what was written",
    PushgatewayUnavailable.exit_code: "Pushgateway unavailable",
    PostgresRefused.exit_code: "PostgreSQL refused the login or a privilege; fix the"
    " configuration (not retried)",
    KafkaRefused.exit_code: "topic missing, or Kafka refused authentication, the security"
    " protocol or authorization; fix the configuration (not retried)",
    DatabaseMismatch.exit_code: "etl verify only: the database lacks messages of the topic or"
    " holds a row that differs (each named by partition:offset)",
}
# What any command talking to Kafka, or to PostgreSQL, can end with.
KAFKA_ERRORS: tuple[type[EtlError], ...] = (KafkaUnavailable, KafkaRefused)
POSTGRES_ERRORS: tuple[type[EtlError], ...] = (PostgresUnavailable, PostgresRefused)

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


# The FATAL messages with which the server refuses a connection attempt while it cannot take
# one, and the SQLSTATE it sends with each (PostgreSQL 12 to 17, postmaster.c and postgres.c).
# psycopg reports a failed connection attempt without that SQLSTATE (libpq keeps it to itself):
# only the message reaches us, so the SQLSTATE is recovered from it. The server writes these in
# its own ``lc_messages``: with another language than English they are not recognised, and the
# attempt counts as refused (not retried).
_CONNECTION_REFUSALS = (
    ("the database system is starting up", "57P03"),
    ("the database system is not yet accepting connections", "57P03"),  # crash recovery redo
    ("the database system is not accepting connections", "57P03"),  # hot standby off
    ("the database system is shutting down", "57P03"),
    ("the database system is in recovery mode", "57P03"),  # reinitialising after a crash
    ("terminating connection due to administrator command", "57P01"),
    ("terminating connection because of crash of another server process", "57P02"),
    ("sorry, too many clients already", "53300"),
    ("remaining connection slots are reserved", "53300"),
)


def connection_refusal_sqlstate(message: str) -> str | None:
    """The SQLSTATE of the server's ``FATAL`` refusal quoted in a failed connection's message,
    when it is one of `_CONNECTION_REFUSALS`; None otherwise."""
    if "FATAL:" not in message:
        return None
    return next((code for text, code in _CONNECTION_REFUSALS if text in message), None)


def is_transient_connection_failure(message: str) -> bool:
    """True for a refused, reset or timed-out connection, or a server that said it cannot take
    connections yet (starting, recovering, shutting down, full); False when it refused us.

    For a failure that carries no SQLSTATE (libpq's connection failures; an error with one is
    decided by `is_transient_sqlstate`): the server's message is mapped to the SQLSTATE it was
    sent with. A failure the server did not answer (no ``FATAL``: refused, reset, timed out) is
    transient.
    """
    if "FATAL:" not in message:
        return True
    found = connection_refusal_sqlstate(message)
    return found is not None and is_transient_sqlstate(found)


def exit_codes_help(*errors: type[EtlError], ok: str = EXIT_CODES[EXIT_OK]) -> str:
    """The exit codes of a command that can raise ``errors``, one ``code: meaning`` line each
    from `EXIT_CODES`, in numeric order: 0 (meaning ``ok``), 1 (a bug) and 2 (usage, which every
    command can return), then the codes of ``errors``, each once."""
    texts = {**EXIT_CODES, EXIT_OK: ok}
    codes = {EXIT_OK, EXIT_BUG, ConfigError.exit_code, *(error.exit_code for error in errors)}
    return "\n".join(f"{code}: {texts[code]}" for code in sorted(codes))
