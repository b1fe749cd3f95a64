"""PostgreSQL adapter: a batch's rows and rejections durably stored in one transaction, or an error.

Per batch, in ONE transaction: ``COPY ... (FORMAT BINARY)`` of the rows (tuples built by the
compiled core, sent from its buffers) straight into ``new_reports`` inside a savepoint; if the
batch repeats a key already held (a replay) that fails, and the batch goes through a session
temp table of the same column types and ``INSERT INTO new_reports ...
SELECT ... ON CONFLICT DO NOTHING`` instead (a replayed batch inserts nothing twice and never
fails on a key already held; rows repeating a key inside the batch are skipped as
duplicates). Then the rejections go in ``ON CONFLICT DO NOTHING`` on (topic, partition,
offset), and the offset ranges the batch covers into ``etl_progress`` (`etl.pg.progress`), so
the database's position moves with its rows. ``synchronous_commit`` is forced on for the
session: the run commits Kafka offsets right after this returns, so the batch must survive a
server crash.

Several writers may store batches at once, each on its own connection. A key two of them hold
makes the later one wait for the earlier's transaction and then take the staging path; keys
held crosswise end in a deadlock that PostgreSQL breaks by failing one transaction (40P01),
which is retried like any transient error.

The whole transaction is idempotent, so it is retried on transient errors (as decided by
`etl.pg.failures.is_transient`), on a fresh connection each time, with full jitter and waits
capped at `MAX_WAIT_SECONDS`. The budget is time, not attempts: no new attempt starts later
than ``postgres.retry_max_seconds`` after the operation's first failure, so a server restart of
up to about that long is ridden out. Counting from the first failure (not from the start of the
first attempt) keeps ``statement_timeout_seconds`` consistent with the budget whatever the two
values: a statement cancelled by its timeout is always retried at least once.
``postgres.retry_attempts`` (0 by default: no limit) can cap the attempts as well. Failures no
retry can fix (options libpq rejects, TLS verification, a refused login) end the operation at
once; see `etl.pg.failures`. A stop request (SIGTERM) ends the retrying within a fraction of a
second: the transaction in hand was rolled back by the failure, so `Interrupted` (exit 6) loses
nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, TypeVar

import psycopg
from psycopg import sql
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from etl.core import events
from etl.core.config import PostgresConfig
from etl.core.errors import Interrupted, SchemaMissing
from etl.core.ports import RowBatch, RunOutcome, StoredRejection, WriteResult
from etl.core.statements import (
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
from etl.pg import ledger
from etl.pg.connect import open_session
from etl.pg.failures import is_transient, safe_text, translate
from etl.pg.progress import PROGRESS_TABLE, RANGE_INSERT, PgPositions, range_params

log = events.logger(__name__)

_CANCEL_SECONDS: Final = 5.0

MAX_WAIT_SECONDS: Final = 5.0  # longest single wait between attempts
_STAGING_STREAK: Final = 8  # batches sent through staging after a key conflict
_REQUIRED: Final = {
    REPORTS_TABLE: COLUMNS,
    REJECTIONS_TABLE: REJECTION_COLUMNS,
    ledger.RUNS_TABLE: ("id", "status", *ledger.COUNT_COLUMNS),
    ledger.RUN_PARTITIONS_TABLE: (
        "run_id",
        "start_offset",
        "stop_offset",
        "reached_offset",
        "rewound",
    ),
    PROGRESS_TABLE: ("group_id", "kafka_partition", "start_offset", "stop_offset", "origin"),
}

T = TypeVar("T")
_NO_RANGES: Final[Mapping[int, tuple[int, int]]] = MappingProxyType({})


class PostgresSink:
    """One connection per writing thread (`write` may run on several at once), each re-opened
    after a transient failure; the run's record has a connection of its own.

    With ``dry_run`` every batch transaction is rolled back after its statements ran, so the
    counts are real but nothing stays; run records are not written either.
    """

    def __init__(
        self,
        cfg: PostgresConfig,
        *,
        group_id: str = "",
        dry_run: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self._cfg = cfg
        self._group_id = group_id
        self._dry_run = dry_run
        self._sleep = sleep
        self._clock = clock
        self._stop_requested = stop_requested
        self._conns: dict[int, psycopg.Connection[Any]] = {}  # one per writing thread
        self._conns_lock = threading.Lock()
        self._run_conn: psycopg.Connection[Any] | None = None  # holds the live run's lock
        # Batches left to send through staging after a conflict; shared by the writers: a
        # lost update only changes which of two equivalent paths a batch takes.
        self._staging_streak = 0

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
        self,
        topic: str,
        rows: RowBatch,
        rejections: Sequence[StoredRejection],
        ranges: Mapping[int, tuple[int, int]] = _NO_RANGES,
    ) -> WriteResult:
        params = [rejection_params(topic, r) for r in rejections]
        stored = range_params(topic, self._group_id, ranges)
        return self._retrying(lambda conn: self._write_once(conn, rows, params, stored))

    def positions(self, topic: str) -> PgPositions:
        """The database's progress for ``topic`` and this sink's group, read and adopted
        with the same retries as the writes."""
        return PgPositions(self._retrying, topic, self._group_id, dry_run=self._dry_run)

    def begin_run(self, topic: str, group_id: str, options: Mapping[str, Any]) -> int | None:
        """Record a starting run, marking dead runs ``abandoned``; its id, or None in a dry run.

        The run's row is inserted and its advisory lock taken on a connection of its own,
        held until `close`: the batch connection is re-opened after transient failures, which
        would drop the lock (see `etl.pg.ledger`).
        """
        if self._dry_run:
            return None

        def insert(_conn: psycopg.Connection[Any]) -> int:
            self._close_run_connection()
            conn = open_session(self._cfg)
            self._run_conn = conn
            with conn.transaction():
                run_id, abandoned = ledger.begin(conn, topic, group_id, options)
            if abandoned:
                log.warning("runs_abandoned", run_ids=abandoned, cause="their process died")
            return run_id

        return self._retrying(insert)

    def end_run(self, outcome: RunOutcome) -> None:
        def update(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                ledger.end(conn, outcome)

        self._retrying(update)

    def cancel(self) -> None:
        """Ask the server to cancel the statements in flight on every writer's connection.

        Called from the loop's thread while `write` runs on writer threads: each write fails
        with SQLSTATE 57014, its transaction rolls back, and with a stop requested the retry
        loop ends it as `Interrupted`. Never raises; a failed cancel leaves the write running.
        """
        with self._conns_lock:
            live = [c for c in self._conns.values() if not c.closed]
        for conn in live:
            try:
                conn.cancel_safe(timeout=_CANCEL_SECONDS)
            except psycopg.Error as exc:
                log.warning("postgres_cancel_failed", error=safe_text(exc))

    def close(self) -> None:
        """Release the connections; closing the run's own one frees its advisory lock."""
        with self._conns_lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        self._close_run_connection()

    def _close_batch_connection(self) -> None:
        """Close the calling thread's connection (after a failure: the next attempt opens anew)."""
        with self._conns_lock:
            conn = self._conns.pop(threading.get_ident(), None)
        if conn is not None:
            conn.close()

    def _close_run_connection(self) -> None:
        if self._run_conn is not None:
            self._run_conn.close()
            self._run_conn = None

    # -- internals ------------------------------------------------------------------------

    def _write_once(
        self,
        conn: psycopg.Connection[Any],
        rows: RowBatch,
        rejections: list[tuple[Any, ...]],
        ranges: list[tuple[Any, ...]],
    ) -> WriteResult:
        inserted = 0
        n_rows = rows.count
        with conn.transaction() as tx, conn.cursor() as cur:
            if n_rows:
                inserted = self._store_rows(conn, cur, rows)
            if rejections:
                cur.executemany(INSERT_REJECTION, rejections)
            if ranges:
                cur.executemany(RANGE_INSERT, ranges)
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
                    copy_batch(cur, sql.Identifier(REPORTS_TABLE), rows)
                return cur.rowcount
            except psycopg.errors.UniqueViolation:
                self._staging_streak = _STAGING_STREAK
        self._staging_streak = max(0, self._staging_streak - 1)
        cur.execute(CREATE_STAGING)  # rare path: a no-op once the session has the table
        copy_batch(cur, STAGING, rows)
        cur.execute(INSERT_FROM_STAGING)
        return cur.rowcount

    def _connection(self) -> psycopg.Connection[Any]:
        """The calling thread's connection: writers on several threads never share one."""
        key = threading.get_ident()
        conn = self._conns.get(key)
        if conn is None or conn.closed:
            conn = open_session(self._cfg)
            conn.execute("SET synchronous_commit TO on")
            conn.commit()
            with self._conns_lock:
                self._conns[key] = conn
        return conn

    def _retrying(self, operation: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``operation`` on a live connection; retry it only on transient errors."""
        retrying = Retrying(
            stop=self._budget(),
            wait=wait_random_exponential(multiplier=0.5, max=MAX_WAIT_SECONDS),
            retry=retry_if_exception(is_transient),
            sleep=self._wait,
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            return retrying(lambda: operation(self._connection()))
        except psycopg.Error as exc:
            if self._stop_requested() and is_transient(exc):
                raise Interrupted(
                    f"stopped by signal while retrying PostgreSQL ({safe_text(exc)}); "
                    "the batch in hand was rolled back"
                ) from exc
            raise translate(exc) from exc

    def _wait(self, seconds: float) -> None:
        """Sleep between attempts in short slices, so a stop request ends the wait at once."""
        end = self._clock() + seconds
        while not self._stop_requested():
            left = end - self._clock()
            if left <= 0:
                return
            self._sleep(min(left, 0.1))

    def _budget(self) -> Callable[[RetryCallState], bool]:
        """Stop when the next attempt would start past the budget after the first failure."""
        cap = self._cfg.retry_attempts
        first_failure: list[float] = []

        def stop(state: RetryCallState) -> bool:
            now = self._clock()
            if not first_failure:
                first_failure.append(now)
            if self._stop_requested() or (cap and state.attempt_number >= cap):
                return True
            waited = now - first_failure[0]
            return waited + (state.upcoming_sleep or 0.0) > self._cfg.retry_max_seconds

        return stop

    def _before_retry(self, state: RetryCallState) -> None:
        self._close_batch_connection()  # the run's lock stays held on its own connection
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "postgres_retry",
            attempt=state.attempt_number,
            wait_seconds=round(state.upcoming_sleep, 2),
            error=safe_text(exc),
        )


def copy_batch(cur: psycopg.Cursor[Any], table: sql.Identifier, rows: RowBatch) -> None:
    """One binary COPY of the batch's tuples, sent from the core's buffers without a copy."""
    with cur.copy(copy_sql(table)) as copy:
        copy.write(COPY_HEADER)
        for chunk in rows.chunks:
            copy.write(memoryview(chunk))
        copy.write(COPY_TRAILER)
