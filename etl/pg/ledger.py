"""The record of every non-dry run: tables ``etl_runs`` and ``etl_run_partitions``.

A run is inserted as ``running`` when it starts and completed when it ends (status, exit code,
counts, and per partition the start, stop and reached offsets), so "which run loaded offset 1234
of partition 3?" is one query::

    SELECT run_id FROM etl_run_partitions
     WHERE topic = 'ccx.ocp.results' AND kafka_partition = 3
       AND start_offset <= 1234 AND 1234 < reached_offset;

A live run holds a session-level advisory lock keyed by its id (`RUN_LOCK_CLASS`, id) on a
connection of its own, taken in the transaction that inserts its row, so the row is never
seen without the lock. A row still ``running`` whose lock is free belongs to a process that
died (SIGKILL, OOM, a lost node): the next run's `begin` marks it ``abandoned``. A run whose
lock connection was cut (a database restart) and that is marked abandoned meanwhile still
writes its real outcome at its end.

The functions here take an open connection and run inside the caller's transaction; the sink
calls `begin`/`end` with its retries, ``etl runs`` and ``--replay-run`` call `recent`/`load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
import psycopg
from psycopg import sql

from etl.core.errors import ConfigError, SchemaMissing
from etl.core.ports import RunOutcome

RUNS_TABLE: Final = "etl_runs"
RUN_PARTITIONS_TABLE: Final = "etl_run_partitions"
COUNT_COLUMNS: Final = ("consumed", "inserted", "duplicates", "rejected", "bytes_consumed")
RUN_LOCK_CLASS: Final = 0x45544C  # first key of the advisory locks of live runs ("ETL")
ABANDONED_ERROR: Final = "the process ended without completing its run record (killed or crashed)"


@dataclass(frozen=True)
class RunRecord:
    id: int
    started_at: datetime
    ended_at: datetime | None
    status: str
    exit_code: int | None
    topic: str
    group_id: str
    options: dict[str, Any]
    counts: dict[str, int]
    partitions: dict[int, tuple[int, int, int]]  # partition -> (start, stop, reached)
    error: str | None = None
    rewound: dict[int, int] = field(default_factory=dict)  # messages read again, per partition


STATUSES: Final = ("running", "completed", "failed", "interrupted", "crashed")


@dataclass(frozen=True)
class RunFilter:
    """Which runs ``etl runs`` lists; None matches anything. ``since`` is a moment or an
    interval text (``'2 days'``) counted back from the server's ``now()``."""

    status: str | None = None
    topic: str | None = None
    group_id: str | None = None
    since: datetime | str | None = None

    def where(self) -> tuple[sql.Composable, tuple[Any, ...]]:
        conds: list[sql.Composable] = []
        params: list[Any] = []
        for column, value in (("status", self.status), ("topic", self.topic)):
            if value is not None:
                conds.append(sql.SQL("r.{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if self.group_id is not None:
            conds.append(sql.SQL("r.group_id = %s"))
            params.append(self.group_id)
        if isinstance(self.since, datetime):
            conds.append(sql.SQL("r.started_at >= %s"))
            params.append(self.since)
        elif self.since is not None:
            conds.append(sql.SQL("r.started_at >= now() - %s::interval"))
            params.append(self.since)
        if not conds:
            return sql.SQL(""), ()
        return sql.SQL("WHERE ") + sql.SQL(" AND ").join(conds), tuple(params)


def begin(
    conn: psycopg.Connection[Any], topic: str, group_id: str, options: Mapping[str, Any]
) -> tuple[int, list[int]]:
    """Insert the run as ``running`` and take its lock (keep ``conn`` open for the whole run);
    its id, and the ids of dead runs marked ``abandoned`` on the way."""
    abandoned = conn.execute(
        sql.SQL(
            "UPDATE {runs} r SET status = 'abandoned', ended_at = now(), error = %s"
            " WHERE r.status = 'running' AND NOT EXISTS (SELECT 1 FROM pg_locks l"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid = %s::oid AND l.objid = r.id::oid) RETURNING r.id"
        ).format(runs=sql.Identifier(RUNS_TABLE)),
        (ABANDONED_ERROR, RUN_LOCK_CLASS),
    ).fetchall()
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (started_at, status, topic, group_id, options)"
            " VALUES (now(), 'running', %s, %s, %s::jsonb) RETURNING id"
        ).format(sql.Identifier(RUNS_TABLE)),
        (topic, group_id, orjson.dumps(dict(options), default=str).decode()),
    ).fetchone()
    assert row is not None  # RETURNING always yields the row
    run_id = int(row[0])
    conn.execute("SELECT pg_advisory_lock(%s, %s::int4)", (RUN_LOCK_CLASS, run_id))
    return run_id, sorted(int(r[0]) for r in abandoned)


def end(conn: psycopg.Connection[Any], outcome: RunOutcome) -> None:
    """Complete the run's row and upsert one row per partition it loaded."""
    run_id, topic, counts = outcome.run_id, outcome.topic, outcome.counts
    conn.execute(
        sql.SQL(
            "UPDATE {} SET ended_at = now(), status = %s, exit_code = %s, error = %s, {}"
            " WHERE id = %s"
        ).format(
            sql.Identifier(RUNS_TABLE),
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in COUNT_COLUMNS),
        ),
        (
            outcome.status,
            outcome.exit_code,
            outcome.error,
            *(int(counts.get(c, 0)) for c in COUNT_COLUMNS),
            run_id,
        ),
    )
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL(
                "INSERT INTO {} (run_id, topic, kafka_partition, start_offset, stop_offset,"
                " reached_offset, rewound) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (run_id, kafka_partition) DO UPDATE SET"
                " reached_offset = EXCLUDED.reached_offset, rewound = EXCLUDED.rewound"
            ).format(sql.Identifier(RUN_PARTITIONS_TABLE)),
            [
                (run_id, topic, p.partition, p.start, p.stop, p.next, p.rewound)
                for p in outcome.partitions
            ],
        )


def recent(
    conn: psycopg.Connection[Any], limit: int, where: RunFilter | None = None
) -> list[RunRecord]:
    """The newest ``limit`` runs that match ``where``, newest first."""
    cond, params = (where or RunFilter()).where()
    return _select(conn, cond + sql.SQL(" ORDER BY r.id DESC LIMIT %s"), (*params, limit))


def load(conn: psycopg.Connection[Any], run_id: int) -> RunRecord:
    found = _select(conn, sql.SQL("WHERE r.id = %s"), (run_id,))
    if not found:
        raise ConfigError(f"--replay-run: no run with id {run_id}")
    return found[0]


def replay_ranges(record: RunRecord, topic: str) -> dict[int, tuple[int, int]]:
    """The half-open offset ranges the run actually covered, per partition it read from."""
    if record.topic != topic:
        raise ConfigError(
            f"--replay-run: run {record.id} read topic {record.topic!r}, not {topic!r}"
        )
    ranges = {
        p: (start, reached)
        for p, (start, _stop, reached) in record.partitions.items()
        if reached > start
    }
    if not ranges:
        raise ConfigError(f"--replay-run: run {record.id} read no offsets; nothing to replay")
    return ranges


def _select(
    conn: psycopg.Connection[Any], tail: sql.Composable, params: tuple[Any, ...]
) -> list[RunRecord]:
    counts = sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in COUNT_COLUMNS)
    query = sql.SQL(
        "SELECT r.id, r.started_at, r.ended_at, r.status, r.exit_code, r.topic, r.group_id,"
        " r.options, r.error, {counts}, coalesce((SELECT jsonb_object_agg(p.kafka_partition,"
        " jsonb_build_array(p.start_offset, p.stop_offset, p.reached_offset, p.rewound))"
        " FROM {parts} p WHERE p.run_id = r.id), '{{}}'::jsonb) FROM {runs} r {tail}"
    ).format(
        counts=counts,
        parts=sql.Identifier(RUN_PARTITIONS_TABLE),
        runs=sql.Identifier(RUNS_TABLE),
        tail=tail,
    )
    try:
        found = conn.execute(query, params).fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise SchemaMissing(f"{exc.diag.message_primary}; run etl db migrate") from exc
    out = []
    for row in found:
        n = len(COUNT_COLUMNS)
        out.append(
            RunRecord(
                id=row[0],
                started_at=row[1],
                ended_at=row[2],
                status=row[3],
                exit_code=row[4],
                topic=row[5],
                group_id=row[6],
                options=row[7],
                error=row[8],
                counts=dict(zip(COUNT_COLUMNS, row[9 : 9 + n], strict=True)),
                partitions={int(p): (v[0], v[1], v[2]) for p, v in row[9 + n].items()},
                rewound={int(p): v[3] for p, v in row[9 + n].items() if v[3]},
            )
        )
    return out
