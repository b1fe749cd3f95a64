"""PostgreSQL adapter: a batch's rows and rejections durably stored in one transaction, or an error.

Per batch, in ONE transaction: ``COPY ... (FORMAT BINARY)`` of the rows (tuples built by the
compiled core, sent from its buffers) straight into ``new_reports`` inside a savepoint; if the
batch repeats a key already held (a replay) that fails, and the batch goes through a session
temp table of the same column types and ``INSERT INTO new_reports ...
SELECT ... ON CONFLICT DO NOTHING`` instead (a replayed batch inserts nothing twice and never
fails on a key already held; rows repeating a key inside the batch are skipped as
duplicates). Then the rejections go in ``ON CONFLICT DO NOTHING`` on (topic, partition,
offset). ``synchronous_commit`` is forced on for the session: the run commits
Kafka offsets right after this returns, so the batch must survive a server crash.

The whole transaction is idempotent, so it is retried (bounded, with jitter) on transient
errors as decided by `etl.errors.is_transient_sqlstate`, on a fresh connection each time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from etl import runs
from etl.config import PostgresConfig
from etl.errors import (
    PostgresUnavailable,
    SchemaMissing,
    is_transient_connection_failure,
    is_transient_sqlstate,
)
from etl.ports import PartitionProgress, RowBatch, StoredRejection, WriteResult
from etl.statements import (
    COLUMNS,
    COPY_HEADER,
    COPY_TRAILER,
    CREATE_STAGING,
    INSERT_FROM_STAGING,
    INSERT_REJECTION,
    REJECTION_COLUMNS,
    REJECTIONS_TABLE,
    REPORTS_TABLE,
    STAGING,
    copy_sql,
    rejection_params,
)

log = logging.getLogger(__name__)

_STAGING_STREAK: Final = 8  # batches sent through staging after a key conflict
_REQUIRED: Final = {
    REPORTS_TABLE: COLUMNS,
    REJECTIONS_TABLE: REJECTION_COLUMNS,
    runs.RUNS_TABLE: ("id", "status", *runs.COUNT_COLUMNS),
    runs.RUN_PARTITIONS_TABLE: ("run_id", "start_offset", "stop_offset", "reached_offset"),
}

T = TypeVar("T")


class PostgresSink:
    """One connection, re-opened after a transient failure.

    With ``dry_run`` every batch transaction is rolled back after its statements ran, so the
    counts are real but nothing stays; run records are not written either.
    """

    def __init__(
        self,
        cfg: PostgresConfig,
        *,
        dry_run: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cfg = cfg
        self._dry_run = dry_run
        self._sleep = sleep
        self._conn: psycopg.Connection[Any] | None = None
        self._staging_streak = 0  # batches left to send through staging after a conflict

    def check_schema(self) -> None:
        query = sql.SQL(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ANY(%s)"
        )

        def present(conn: psycopg.Connection[Any]) -> set[tuple[str, str]]:
            with conn.cursor() as cur:
                cur.execute(query, (list(_REQUIRED),))
                found = {(t, c) for t, c in cur.fetchall()}
            conn.rollback()
            return found

        found = self._retrying(present)
        for table, columns in _REQUIRED.items():
            if not any(t == table for t, _ in found):
                raise SchemaMissing(f"table {table} does not exist; run etl db migrate")
            absent = [c for c in columns if (table, c) not in found]
            if absent:
                raise SchemaMissing(
                    f"table {table} lacks column(s) {', '.join(absent)}; run etl db migrate"
                )

    def write(
        self, topic: str, rows: RowBatch, rejections: Sequence[StoredRejection]
    ) -> WriteResult:
        params = [rejection_params(topic, r) for r in rejections]
        return self._retrying(lambda conn: self._write_once(conn, rows, params))

    def begin_run(self, topic: str, group_id: str, options: Mapping[str, Any]) -> int | None:
        """Record a starting run; its id, or None in a dry run."""
        if self._dry_run:
            return None

        def insert(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                return runs.begin(conn, topic, group_id, options)

        return self._retrying(insert)

    def end_run(
        self,
        run_id: int,
        topic: str,
        *,
        status: str,
        exit_code: int,
        error: str | None,
        counts: Mapping[str, int],
        partitions: Sequence[PartitionProgress],
    ) -> None:
        def update(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                runs.end(
                    conn,
                    run_id,
                    topic,
                    status=status,
                    exit_code=exit_code,
                    error=error,
                    counts=counts,
                    partitions=partitions,
                )

        self._retrying(update)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- internals ------------------------------------------------------------------------

    def _write_once(
        self,
        conn: psycopg.Connection[Any],
        rows: RowBatch,
        rejections: list[tuple[Any, ...]],
    ) -> WriteResult:
        inserted = 0
        n_rows = rows.count
        with conn.transaction() as tx, conn.cursor() as cur:
            if n_rows:
                inserted = self._store_rows(conn, cur, rows)
            if rejections:
                cur.executemany(INSERT_REJECTION, rejections)
            if self._dry_run:
                raise psycopg.Rollback(tx)
        return WriteResult(inserted=inserted, duplicates=n_rows - inserted)

    def _store_rows(
        self, conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any], rows: RowBatch
    ) -> int:
        """COPY the rows straight into new_reports; on a key already held, use the staging path.

        The direct COPY (inside a savepoint) skips writing every row twice. A batch that
        repeats a stored key (a replay, a redelivery) makes it fail with a unique violation:
        the savepoint is rolled back and the batch goes through the staging table with
        ``ON CONFLICT DO NOTHING``. After such a fallback the next batches go straight to the
        staging path for a while, since a replay tends to continue.
        """
        if self._staging_streak == 0:
            try:
                with conn.transaction():
                    _copy(cur, sql.Identifier(REPORTS_TABLE), rows)
                return cur.rowcount
            except psycopg.errors.UniqueViolation:
                self._staging_streak = _STAGING_STREAK
        self._staging_streak = max(0, self._staging_streak - 1)
        cur.execute(CREATE_STAGING)  # rare path: a no-op once the session has the table
        _copy(cur, STAGING, rows)
        cur.execute(INSERT_FROM_STAGING)
        return cur.rowcount

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._cfg.dsn, **connection_defaults(self._cfg))
            conn.execute("SET synchronous_commit TO on")
            conn.execute(
                sql.SQL("SET statement_timeout = {}").format(
                    sql.Literal(int(self._cfg.statement_timeout_seconds * 1000))
                )
            )
            conn.commit()
            self._conn = conn
        return self._conn

    def _retrying(self, operation: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``operation`` on a live connection; retry it only on transient errors."""
        retrying = Retrying(
            stop=stop_after_attempt(self._cfg.retry_attempts)
            | stop_after_delay(self._cfg.retry_max_seconds),
            wait=wait_random_exponential(multiplier=0.5, max=10),
            retry=retry_if_exception(_is_transient),
            sleep=self._sleep,
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            return retrying(lambda: operation(self._connection()))
        except psycopg.errors.UndefinedTable as exc:
            raise SchemaMissing(f"{exc.diag.message_primary}; run etl db migrate") from exc
        except psycopg.Error as exc:
            if _is_transient(exc) or isinstance(exc, psycopg.OperationalError):
                raise PostgresUnavailable(f"PostgreSQL unavailable: {_one_line(exc)}") from exc
            # Not transient (permission denied, a violated constraint, ...): retrying cannot
            # help and the batch stays uncommitted in Kafka.
            raise PostgresUnavailable(
                f"PostgreSQL refused the operation (SQLSTATE {exc.sqlstate}): {_one_line(exc)}"
            ) from exc

    def _before_retry(self, state: Any) -> None:
        self.close()
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "PostgreSQL operation failed, retrying",
            extra={"fields": {"attempt": state.attempt_number, "error": _one_line(exc)}},
        )


def _copy(cur: psycopg.Cursor[Any], table: sql.Identifier, rows: RowBatch) -> None:
    """One binary COPY of the batch's tuples, sent from the core's buffers without a copy."""
    with cur.copy(copy_sql(table)) as copy:
        copy.write(COPY_HEADER)
        for chunk in rows.chunks:
            copy.write(memoryview(chunk))
        copy.write(COPY_TRAILER)


def _is_transient(exc: BaseException) -> bool:
    if not isinstance(exc, psycopg.Error):
        return False
    if exc.sqlstate is None:  # libpq-level failure
        return isinstance(
            exc, psycopg.OperationalError | psycopg.InterfaceError
        ) and is_transient_connection_failure(str(exc))
    return is_transient_sqlstate(exc.sqlstate)


def connection_defaults(cfg: PostgresConfig) -> dict[str, Any]:
    """libpq settings for our sessions; anything the DSN itself sets wins.

    TCP keepalives and ``tcp_user_timeout`` turn a half-open connection (a vanished server or
    network) into an error within about a minute instead of the kernel's quarter of an hour,
    so the bounded retries and SIGTERM keep working.
    """
    defaults: dict[str, Any] = {
        "connect_timeout": cfg.connect_timeout_seconds,
        "application_name": "etl",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,
    }
    given = conninfo_to_dict(cfg.dsn)
    return {k: v for k, v in defaults.items() if k not in given}


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split()) if exc is not None else "unknown error"
