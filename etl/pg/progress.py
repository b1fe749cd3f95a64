"""The database's own progress: table ``etl_progress`` (the model is `etl.core.positions`).

The sink adds each batch's ranges inside the batch's transaction (`RANGE_INSERT`), so what the
table vouches for and the rows it holds are restored, failed over or lost together. `PgPositions`
reads the positions at every assignment and records origins; it runs its statements through
the sink's retrying runner, so a restart of the server is ridden out the same way.

Reading compacts: under a transaction-scoped advisory lock per topic and group (two copies of the
job reading at once take turns), the ranges of each partition's chain are replaced by one origin
range, so the table keeps a few rows per partition however many batches were stored. Ranges
beyond a gap stay until the gap is filled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import psycopg
from psycopg import sql

from etl.core import events
from etl.core.errors import SchemaMissing
from etl.core.positions import StoredPositions, StoredRange, chain

log = events.logger(__name__)

PROGRESS_TABLE: Final = "etl_progress"
CLEANUPS_TABLE: Final = "etl_cleanups"
PROGRESS_LOCK_CLASS: Final = 0x45544D  # advisory lock class of compactions ("ETM")

RANGE_INSERT: Final = sql.SQL(
    "INSERT INTO {t} (topic, group_id, kafka_partition, start_offset, stop_offset, origin)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (topic, group_id, kafka_partition, start_offset) DO UPDATE"
    " SET stop_offset = GREATEST({t}.stop_offset, EXCLUDED.stop_offset),"
    " origin = {t}.origin OR EXCLUDED.origin, stored_at = now()"
).format(t=sql.Identifier(PROGRESS_TABLE))

_SELECT: Final = sql.SQL(
    "SELECT kafka_partition, start_offset, stop_offset, origin FROM {t}"
    " WHERE topic = %s AND group_id = %s"
).format(t=sql.Identifier(PROGRESS_TABLE))
_DELETE: Final = sql.SQL(
    "DELETE FROM {t} WHERE topic = %s AND group_id = %s AND kafka_partition = %s"
    " AND start_offset = ANY(%s)"
).format(t=sql.Identifier(PROGRESS_TABLE))
_LOCK: Final = sql.SQL("SELECT pg_advisory_xact_lock(%s, hashtext(%s))")

T = TypeVar("T")
Runner = Callable[[Callable[[psycopg.Connection[Any]], T]], T]


def range_params(
    topic: str, group_id: str, ranges: Mapping[int, tuple[int, int]], *, origin: bool = False
) -> list[tuple[Any, ...]]:
    """`RANGE_INSERT` parameters for these per-partition ranges."""
    return [
        (topic, group_id, p, start, stop, origin) for p, (start, stop) in sorted(ranges.items())
    ]


def read_positions(
    conn: psycopg.Connection[Any], topic: str, group_id: str, compact: Sequence[int] = ()
) -> StoredPositions:
    """The positions the database vouches for (inside the caller's transaction); the chains
    of the ``compact`` partitions are folded into one origin range each."""
    conn.execute(_LOCK, (PROGRESS_LOCK_CLASS, f"{topic}/{group_id}"))
    ends: dict[int, int] = {}
    for p, ranges in stored_ranges(conn, topic, group_id).items():
        merged, covered = chain(ranges)
        if merged is None:
            continue
        ends[p] = merged.stop
        if p in compact and (len(covered) > 1 or covered[0] != merged):
            conn.execute(_DELETE, (topic, group_id, p, [r.start for r in covered]))
            conn.execute(
                RANGE_INSERT,
                range_params(topic, group_id, {p: (merged.start, merged.stop)}, origin=True)[0],
            )
    return StoredPositions(ends, adopted=not ends)


def stored_ranges(
    conn: psycopg.Connection[Any], topic: str, group_id: str
) -> dict[int, list[StoredRange]]:
    """Every range stored for the topic and group, per partition, as the table holds them."""
    try:
        found = conn.execute(_SELECT, (topic, group_id)).fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise SchemaMissing(f"{exc.diag.message_primary}; run etl db migrate") from exc
    per_partition: dict[int, list[StoredRange]] = defaultdict(list)
    for p, start, stop, origin in found:
        per_partition[p].append(StoredRange(p, start, stop, origin))
    return dict(per_partition)


class PgPositions:
    """`etl.core.ports.Positions` on PostgreSQL, for one topic and consumer group."""

    def __init__(self, run: Runner[Any], topic: str, group_id: str, *, dry_run: bool) -> None:
        self._run = run
        self._topic = topic
        self._group_id = group_id
        self._dry_run = dry_run

    def read(self, partitions: Sequence[int]) -> StoredPositions:
        def query(conn: psycopg.Connection[Any]) -> StoredPositions:
            with conn.transaction() as tx:
                found = read_positions(conn, self._topic, self._group_id, partitions)
                if self._dry_run:
                    raise psycopg.Rollback(tx)  # a dry run changes nothing, compaction included
            return found

        result: StoredPositions = self._run(query)
        return result

    def adopt(self, origins: Mapping[int, int]) -> None:
        if self._dry_run or not origins:
            return
        params = range_params(
            self._topic, self._group_id, {p: (o, o) for p, o in origins.items()}, origin=True
        )

        def insert(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(RANGE_INSERT, params)

        self._run(insert)
