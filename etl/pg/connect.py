"""The one way etl opens a PostgreSQL session: the sink, the runs ledger and every admin command.

Our libpq settings are defaults: anything the DSN itself sets wins (an operator who tunes
``keepalives_idle`` in the DSN gets it). TCP keepalives and ``tcp_user_timeout`` turn a
half-open connection (a vanished server or network) into an error within about a minute
instead of the kernel's quarter of an hour, so bounded retries and SIGTERM keep working;
``statement_timeout`` bounds a statement stuck behind a lock. Both apply to every session.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from etl.core.config import PostgresConfig


def connection_defaults(cfg: PostgresConfig, application_name: str = "etl") -> dict[str, Any]:
    """libpq settings for our sessions, minus those the DSN sets itself."""
    defaults: dict[str, Any] = {
        "connect_timeout": cfg.connect_timeout_seconds,
        "application_name": application_name,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,
    }
    given = conninfo_to_dict(cfg.dsn)
    return {k: v for k, v in defaults.items() if k not in given}


def open_session(
    cfg: PostgresConfig, *, application_name: str = "etl", autocommit: bool = False
) -> psycopg.Connection[Any]:
    """A connection with our defaults and ``statement_timeout`` set; psycopg errors propagate
    for the caller's translation (`etl.pg.failures`)."""
    conn = psycopg.connect(
        cfg.dsn, autocommit=autocommit, **connection_defaults(cfg, application_name)
    )
    conn.execute(
        sql.SQL("SET statement_timeout = {}").format(
            sql.Literal(int(cfg.statement_timeout_seconds * 1000))
        )
    )
    if not autocommit:
        conn.commit()
    return conn
