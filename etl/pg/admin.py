"""PostgreSQL administration: connect, read the schema version, migrate, init, drop.

This is the boundary for the maintenance commands: psycopg errors become `etl.core.errors` here
(``PostgresUnavailable`` when the server cannot be reached or the connection breaks,
``SchemaConflict`` when the database refuses a step) and nothing above imports psycopg errors.

Migration contract: every step of `etl.core.migrations` runs in ONE transaction that first takes a
transaction-level advisory lock, re-reads the version, runs the step's statements and records
the new version in ``migration_info`` (exactly one row). A failing step rolls back completely;
the steps before it stay committed. Two ``etl db migrate`` started at once serialise on the
lock and the second finds nothing left to do. Admin commands do not retry: they are run by
an operator or a scheduler that runs them again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg import sql

from etl.core.config import PostgresConfig
from etl.core.errors import PostgresUnavailable, SchemaConflict
from etl.core.migrations import DROP_ORDER, LATEST, Step, next_step
from etl.pg import failures
from etl.pg.connect import open_session

Connection = psycopg.Connection[Any]

# pg_advisory_xact_lock key shared by every schema-changing command ("etl_mig" in ASCII).
_LOCK_KEY: Final = 0x65746C5F6D6967
_VERSION_TABLE: Final = sql.Identifier("migration_info")


@contextmanager
def connect(cfg: PostgresConfig) -> Iterator[Connection]:
    """An autocommit connection; unreachable server or broken connection -> PostgresUnavailable."""
    try:
        conn = open_session(cfg, application_name="etl-admin", autocommit=True)
    except psycopg.OperationalError as exc:
        raise failures.translate(exc, cfg.masked_dsn) from exc
    try:
        with conn:
            yield conn
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise PostgresUnavailable(
            f"PostgreSQL connection failed: {failures.safe_text(exc)}"
        ) from exc


def current_version(conn: Connection) -> int | None:
    """The recorded schema version; None when ``migration_info`` does not exist (empty DB)."""
    row = conn.execute(sql.SQL("SELECT to_regclass('migration_info') IS NOT NULL")).fetchone()
    if row is None or not row[0]:
        return None
    rows = conn.execute(sql.SQL("SELECT version FROM {}").format(_VERSION_TABLE)).fetchall()
    if len(rows) != 1:
        raise SchemaConflict(
            f"migration_info holds {len(rows)} rows, expected exactly one; fix it by hand"
        )
    return int(rows[0][0])


def migrate(conn: Connection, target: int) -> list[Step]:
    """Move the schema to ``target`` one committed step at a time; the steps that ran."""
    done: list[Step] = []
    while True:
        step: Step | None = None
        try:
            with conn.transaction():
                _lock(conn)
                step = next_step(current_version(conn), target)
                if step is None:
                    return done
                for statement in step.statements:
                    conn.execute(sql.SQL(statement))
                _record(conn, step.to_version)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except psycopg.Error as exc:
            where = "?" if step is None else f"{step.direction} to version {step.to_version}"
            raise SchemaConflict(
                f"migration step {where} failed and was rolled back: {failures.safe_text(exc)}"
            ) from exc
        done.append(step)


def init(conn: Connection) -> list[Step]:
    """Create the latest schema on an empty database; nothing to do on an up-to-date one.

    A database at an older version is left alone: upgrading is ``etl db migrate``'s job.
    """
    current = current_version(conn)
    if current is None:
        return migrate(conn, LATEST)
    if current == LATEST:
        return []
    if current > LATEST:
        next_step(current, LATEST)  # raises the "newer than this etl" conflict
    raise SchemaConflict(
        f"database schema is at version {current}, latest is {LATEST}: run 'etl db migrate'"
    )


def drop(conn: Connection) -> list[str]:
    """Drop every table etl owns, dependents first, in one transaction; the ones dropped.

    Without CASCADE: a foreign key from a table etl does not own makes this fail unchanged.
    """
    dropped: list[str] = []
    try:
        with conn.transaction():
            _lock(conn)
            for table in DROP_ORDER:
                if _exists(conn, table):
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
                    dropped.append(table)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise
    except psycopg.Error as exc:
        raise SchemaConflict(f"drop failed and was rolled back: {failures.safe_text(exc)}") from exc
    return dropped


def server_version(conn: Connection) -> str:
    """The server's version string, e.g. ``15.8``."""
    row = conn.execute(sql.SQL("SHOW server_version")).fetchone()
    return str(row[0]).split()[0] if row else "unknown"


def _lock(conn: Connection) -> None:
    conn.execute(sql.SQL("SELECT pg_advisory_xact_lock(%s)"), (_LOCK_KEY,))


def _exists(conn: Connection, table: str) -> bool:
    row = conn.execute(sql.SQL("SELECT to_regclass(%s) IS NOT NULL"), (table,)).fetchone()
    return bool(row and row[0])


def _record(conn: Connection, version: int) -> None:
    conn.execute(sql.SQL("DELETE FROM {}").format(_VERSION_TABLE))
    conn.execute(sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(_VERSION_TABLE), (version,))
