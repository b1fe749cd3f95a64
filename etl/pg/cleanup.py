"""Delete old rows in bounded chunks, list what a cleanup would delete, or empty ``reported``.

A cleanup fixes its cutoff once (``now() - max_age`` on the server clock) and then deletes at
most ``chunk_size`` rows per transaction, chosen by primary key, until a chunk comes back short:
no long table lock, no transaction holding millions of rows, and rows that turn young while it
runs (the age condition is re-checked on the row being deleted) are kept. Deleting
``new_reports`` rows deletes their ``read_errors`` rows with them (ON DELETE CASCADE). A cleanup
that deletes rows records its table and cutoff in ``etl_cleanups`` (one row, written in the
transaction of each chunk), so ``etl verify`` tells rows it deleted from rows that are missing.

``new_reports``, ``reported`` and ``read_errors`` store UTC in ``timestamp without time zone``;
their cutoff is compared in UTC whatever the session's TimeZone (the reference compared with the
session's local time). ``rejected_messages.rejected_at`` is a ``timestamptz``.

The max age is validated before any SQL runs (`etl.core.interval.parse_max_age`, which the CLI
calls); PostgreSQL then computes the cutoff from the canonical text, so months and years follow
its calendar arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from etl.core.errors import SchemaConflict, SchemaMissing
from etl.pg.admin import Connection
from etl.pg.failures import safe_text
from etl.pg.progress import CLEANUPS_TABLE

_RECORD: Final = sql.SQL(
    "INSERT INTO {} (table_name, cutoff, deleted) VALUES (%s, %s, %s) RETURNING id"
).format(sql.Identifier(CLEANUPS_TABLE))
_ADD_DELETED: Final = sql.SQL(
    "UPDATE {} SET deleted = deleted + %s WHERE id = %s RETURNING id"
).format(sql.Identifier(CLEANUPS_TABLE))

DEFAULT_MAX_AGE: Final = "7 days"
DEFAULT_CHUNK_SIZE: Final = 5000


@dataclass(frozen=True)
class Target:
    """A table a cleanup can act on: which column says how old a row is, and what to list."""

    name: str  # as typed on the command line
    table: str
    age_column: str
    key: tuple[str, ...]
    listing: tuple[str, ...]  # columns printed by --dry-run, then age_days
    utc_naive: bool  # age column is timestamp without time zone holding UTC


TARGETS: Final = {
    t.name: t
    for t in (
        Target(
            "new-reports",
            "new_reports",
            "updated_at",
            ("org_id", "cluster", "updated_at"),
            ("org_id", "account_number", "cluster", "updated_at"),
            utc_naive=True,
        ),
        Target(
            "reported",
            "reported",
            "updated_at",
            ("org_id", "cluster", "notified_at"),
            ("org_id", "account_number", "cluster", "updated_at"),
            utc_naive=True,
        ),
        Target(
            "read-errors",
            "read_errors",
            "updated_at",
            ("error_id",),
            ("error_id", "org_id", "cluster", "updated_at"),
            utc_naive=True,
        ),
        Target(
            "rejections",
            "rejected_messages",
            "rejected_at",
            ("topic", "kafka_partition", "kafka_offset"),
            ("topic", "kafka_partition", "kafka_offset", "reason", "rejected_at"),
            utc_naive=False,
        ),
    )
}


@dataclass(frozen=True)
class Outcome:
    """What a cleanup did (or would do, for a dry run)."""

    table: str
    cutoff: datetime
    rows: int
    chunks: int


def moments(conn: Connection, target: Target, max_age: str) -> tuple[datetime, datetime]:
    """``now()`` and ``now() - max_age`` on the server, naive UTC for ``timestamp`` columns."""
    row = conn.execute(sql.SQL("SELECT now(), now() - %s::interval"), (max_age,)).fetchone()
    if row is None:  # pragma: no cover - a SELECT of expressions returns one row
        raise SchemaMissing("the server returned no time")
    if not target.utc_naive:
        return row[0], row[1]
    return _naive_utc(row[0]), _naive_utc(row[1])


def delete_old(conn: Connection, target: Target, max_age: str, chunk_size: int) -> Outcome:
    """Delete the rows older than ``max_age``, ``chunk_size`` per committed transaction."""
    with _translated(target):
        _, limit = moments(conn, target, max_age)
        table, col = sql.Identifier(target.table), sql.Identifier(target.age_column)
        key = sql.SQL(", ").join(map(sql.Identifier, target.key))
        statement = sql.SQL(
            "DELETE FROM {t} WHERE {c} < %(cutoff)s AND ({k}) IN"
            " (SELECT {k} FROM {t} WHERE {c} < %(cutoff)s LIMIT %(limit)s)"
        ).format(t=table, c=col, k=key)
        total = chunks = 0
        recorded: int | None = None  # the etl_cleanups row of this cleanup, once it deleted
        while True:
            with conn.transaction():
                cur = conn.execute(statement, {"cutoff": limit, "limit": chunk_size})
                deleted = cur.rowcount
                if deleted:
                    recorded = _record(conn, target, limit, deleted, recorded)
            chunks += 1
            total += deleted
            if deleted < chunk_size:
                return Outcome(target.table, limit, total, chunks)


def _record(
    conn: Connection, target: Target, cutoff: datetime, deleted: int, recorded: int | None
) -> int:
    """Record in ``etl_cleanups``, in the transaction of the chunk just deleted, the cutoff
    applied and the rows deleted so far: ``etl verify`` counts older rows as expired, not
    missing. The first chunk inserts the row, the next ones add to it; its id."""
    when = cutoff.replace(tzinfo=UTC) if target.utc_naive else cutoff
    if recorded is None:
        row = conn.execute(_RECORD, (target.table, when, deleted)).fetchone()
    else:
        row = conn.execute(_ADD_DELETED, (deleted, recorded)).fetchone()
    if row is None:  # pragma: no cover - INSERT/UPDATE ... RETURNING of a row just written
        raise SchemaMissing(f"{CLEANUPS_TABLE}: the cleanup's record was not written")
    return int(row[0])


def count_old(conn: Connection, target: Target, max_age: str) -> int:
    """How many rows a cleanup with this max age would delete now."""
    with _translated(target):
        _, cutoff = moments(conn, target, max_age)
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {t} WHERE {c} < %s").format(
                t=sql.Identifier(target.table), c=sql.Identifier(target.age_column)
            ),
            (cutoff,),
        ).fetchone()
    return int(row[0]) if row else 0


def list_old(
    conn: Connection, target: Target, max_age: str, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Stream the rows a cleanup would delete (at most ``limit``), oldest first, with their age
    in whole days."""
    with _translated(target):
        now, cutoff = moments(conn, target, max_age)
        cols = sql.SQL(", ").join(map(sql.Identifier, target.listing))
        query = sql.SQL("SELECT {cols} FROM {t} WHERE {c} < %s ORDER BY {c}, {k} {lim}").format(
            cols=cols,
            t=sql.Identifier(target.table),
            c=sql.Identifier(target.age_column),
            k=sql.SQL(", ").join(map(sql.Identifier, target.key)),
            lim=sql.SQL("LIMIT {}").format(sql.Literal(limit)) if limit else sql.SQL(""),
        )
        with conn.transaction(), conn.cursor(name="etl_cleanup_listing") as cur:
            cur.execute(query, (cutoff,))
            for values in cur:
                row = dict(zip(target.listing, values, strict=True))
                row["age_days"] = (now - row[target.age_column]).days
                yield row


def truncate_reported(conn: Connection) -> int:
    """Empty ``reported`` in one short transaction; the number of rows it held."""
    target = TARGETS["reported"]
    with _translated(target), conn.transaction():
        row = conn.execute(sql.SQL("SELECT count(*) FROM reported")).fetchone()
        conn.execute(sql.SQL("TRUNCATE reported"))
    return int(row[0]) if row else 0


@contextmanager
def _translated(target: Target) -> Iterator[None]:
    """A missing table or column becomes `SchemaMissing`, a refused delete `SchemaConflict`."""
    try:
        yield
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise SchemaMissing(f"{target.table}: {safe_text(exc)}; run 'etl db migrate'") from exc
    except psycopg.errors.IntegrityError as exc:  # a foreign key without ON DELETE CASCADE
        raise SchemaConflict(
            f"{target.table}: delete refused, chunk rolled back: {safe_text(exc)};"
            " run 'etl db migrate'"
        ) from exc


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
