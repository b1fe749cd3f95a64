"""PostgresSink against the real PostgreSQL: idempotent batches, both COPY paths, dry run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import orjson
import psycopg
import pytest

from etl.core.config import PostgresConfig
from etl.core.decode import Rejection, decode_batch
from etl.core.errors import ConfigError, Interrupted, PostgresRefused, PostgresUnavailable
from etl.core.ports import Message, RowBatch, StoredRejection
from etl.core.statements import rejection_params
from etl.pg.connect import connection_defaults
from etl.pg.sink import MAX_WAIT_SECONDS, PostgresSink

CLUSTER = "5d5892d3-1f74-4ccf-91af-548dfc9767aa"
LATEST = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)


def value(org: int, report: bytes = b'{"reports":[]}') -> bytes:
    envelope = orjson.dumps(
        {
            "OrgID": org,
            "AccountNumber": 7,
            "ClusterName": CLUSTER,
            "LastChecked": "2026-05-04T09:30:12.123456Z",
            "Report": "R",
        }
    )
    return envelope.replace(b'"R"', report[:-1] + b',"fingerprints":[],"system":{}}')


def rows(
    *orgs: int, report: bytes = b'{"reports":[]}', offsets: list[int] | None = None
) -> RowBatch:
    """The rows of these org ids (one key each), decoded as the run decodes them."""
    at = offsets or list(orgs)
    messages = [Message(0, o, None, value(org, report)) for org, o in zip(orgs, at, strict=True)]
    decoded = decode_batch(messages, LATEST)
    assert decoded.rows == len(orgs), decoded.rejections
    return RowBatch(decoded.chunks, decoded.rows)


def row(org: int, report: bytes = b'{"reports":[]}', offset: int | None = None) -> RowBatch:
    return rows(org, report=report, offsets=[org if offset is None else offset])


def joined(*batches: RowBatch) -> RowBatch:
    out = RowBatch()
    for b in batches:
        out.chunks += b.chunks
        out.count += b.count
    return out


def stored(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT org_id, report, kafka_offset FROM new_reports ORDER BY org_id"
        ).fetchall()


def test_binary_copy_stores_the_report_exactly_with_every_column(schema_db: str) -> None:
    text = '{"reports":[{"p":"C:\\\\tmp\\n","h":"<b>é</b>","t":"\\t","n":1e400}]}'
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    assert sink.write("t", joined(row(1, text.encode()), rows(2, 3)), []) == (3, 0)
    sink.close()
    assert stored(schema_db)[0] == (1, text, 1)
    with psycopg.connect(schema_db) as conn:
        got = conn.execute(
            "SELECT org_id, account_number, cluster, updated_at, kafka_offset, kafka_partition"
            " FROM new_reports ORDER BY org_id"
        ).fetchall()
    stamp = datetime(2026, 5, 4, 9, 30, 12, 123456)
    assert got == [(org, 7, CLUSTER, stamp, org, 0) for org in (1, 2, 3)]


def test_the_staging_path_takes_binary_copy_with_the_same_columns(schema_db: str) -> None:
    text = '{"reports":["\\\\x",-0.0]}'
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    sink.write("t", row(1), [])
    assert sink.write("t", joined(row(1), row(2, text.encode())), []) == (1, 1)  # staging
    sink.close()
    assert stored(schema_db) == [(1, '{"reports":[]}', 1), (2, text, 2)]


def test_replayed_and_overlapping_batches_insert_nothing_twice(schema_db: str) -> None:
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    assert sink.write("t", rows(1, 2), []) == (2, 0)
    assert sink.write("t", rows(1, 2), []) == (0, 2)  # replay: staging path
    assert sink.write("t", rows(2, 3, 3, offsets=[2, 3, 9]), []) == (1, 2)
    for _ in range(10):  # after the staging streak the direct path is tried again
        sink.write("t", RowBatch(), [])
    assert sink.write("t", rows(4), []) == (1, 0)
    sink.close()
    assert [r[0] for r in stored(schema_db)] == [1, 2, 3, 4]
    assert stored(schema_db)[2][2] == 3  # the first of two rows with one key wins


def test_rejections_are_stored_once_with_their_raw_value(schema_db: str) -> None:
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    raw = b"x" * (70 * 1024)
    rej = StoredRejection(
        Rejection("invalid_json", "detail"), Message(3, 11, 1_700_000_000_000, raw)
    )
    sink.write("topic", RowBatch(), [rej])
    sink.write("topic", RowBatch(), [rej])
    sink.close()
    with psycopg.connect(schema_db) as conn:
        got = conn.execute(
            "SELECT topic, kafka_partition, kafka_offset, reason, length(raw_value), raw_size,"
            " kafka_timestamp IS NOT NULL FROM rejected_messages"
        ).fetchall()
    assert got == [("topic", 3, 11, "invalid_json", 64 * 1024, 70 * 1024, True)]


def test_dry_run_counts_but_keeps_nothing(schema_db: str) -> None:
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    sink.write("t", row(1), [])
    sink.close()
    dry = PostgresSink(PostgresConfig(dsn=schema_db), dry_run=True)
    assert dry.write("t", rows(1, 2), []) == (1, 1)
    assert dry.write("t", rows(2), []) == (1, 0)
    assert dry.begin_run("t", "g", {}) is None
    dry.close()
    assert [r[0] for r in stored(schema_db)] == [1]


class FakeTime:
    """A clock that only moves when the sink sleeps, so budgets are tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_transient_errors_are_retried_until_the_time_budget_is_spent() -> None:
    fake = FakeTime()
    cfg = PostgresConfig(dsn="postgresql://postgres@127.0.0.1:1/x", retry_max_seconds=60)
    sink = PostgresSink(cfg, sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(PostgresUnavailable, match="PostgreSQL unavailable"):
        sink.write("t", row(1), [])
    assert 50 <= sum(fake.sleeps) <= 60  # far more than five quick attempts
    assert max(fake.sleeps) <= MAX_WAIT_SECONDS


def test_a_stop_request_ends_the_retrying_at_once_as_an_interruption() -> None:
    fake = FakeTime()
    cfg = PostgresConfig(dsn="postgresql://postgres@127.0.0.1:1/x", retry_max_seconds=600)
    sink = PostgresSink(
        cfg, sleep=fake.sleep, clock=fake.clock, stop_requested=lambda: fake.now > 1003
    )
    with pytest.raises(Interrupted, match="stopped by signal while retrying PostgreSQL"):
        sink.write("t", row(1), [])
    assert sum(fake.sleeps) < 5


def test_retry_attempts_caps_the_attempts_when_set(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    cfg = PostgresConfig(dsn="postgresql://postgres@127.0.0.1:1/x", retry_attempts=3)
    sink = PostgresSink(cfg, sleep=fake.sleep, clock=fake.clock)
    with caplog.at_level("WARNING"), pytest.raises(PostgresUnavailable, match="unavailable"):
        sink.write("t", row(1), [])
    assert caplog.text.count("postgres_retry") == 2


@pytest.mark.parametrize(
    ("option", "name"), [("sslmode=bogus", "sslmode"), ("port=notaport", "port")]
)
def test_options_libpq_rejects_are_a_configuration_error_at_once(option: str, name: str) -> None:
    fake = FakeTime()
    cfg = PostgresConfig(dsn=f"host=127.0.0.1 user=postgres {option}")
    sink = PostgresSink(cfg, sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(ConfigError, match=f'connection option "{name}"') as caught:
        sink.write("t", row(1), [])
    assert fake.sleeps == []
    assert "bogus" not in str(caught.value) and "notaport" not in str(caught.value)


def test_a_kafka_timestamp_beyond_year_9999_is_stored_as_null() -> None:
    rej = StoredRejection(Rejection("invalid_json", "d"), Message(0, 1, 10**15, b"x"))
    assert rejection_params("t", rej)[3] is None


def test_a_refused_login_is_not_retried(schema_db: str) -> None:
    sleeps: list[float] = []
    dsn = schema_db.replace("user=postgres", "user=nosuchrole")
    sink = PostgresSink(PostgresConfig(dsn=dsn), sleep=sleeps.append)
    with pytest.raises(PostgresRefused, match='role "nosuchrole" does not exist') as caught:
        sink.write("t", row(1), [])
    assert sleeps == []
    assert caught.value.exit_code == 8


def test_a_missing_privilege_is_refused_with_exit_8(schema_db: str) -> None:
    role = "etl_test_reader"
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        sleeps: list[float] = []
        dsn = schema_db.replace("user=postgres", f"user={role}")
        sink = PostgresSink(PostgresConfig(dsn=dsn), sleep=sleeps.append)
        with pytest.raises(PostgresRefused, match=r"SQLSTATE 42501.*permission denied"):
            sink.write("t", row(1), [])
        sink.close()
        assert sleeps == []
    finally:
        with psycopg.connect(schema_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_retry_warnings_and_errors_never_carry_copy_row_content(
    schema_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeTime()
    cfg = PostgresConfig(dsn=schema_db, statement_timeout_seconds=0.001, retry_max_seconds=3)
    sink = PostgresSink(cfg, sleep=fake.sleep, clock=fake.clock)
    report = b'{"reports":[{"customer":"PLANTED-CUSTOMER-DATA","pad":"' + b"x" * 2000 + b'"}]}'
    batch = rows(*range(20_000), report=report)
    with caplog.at_level("WARNING"), pytest.raises(PostgresUnavailable) as caught:
        sink.write("t", batch, [])
    sink.close()
    assert fake.sleeps, "the cancelled statement was retried"
    logged = caplog.text + str(caught.value)
    assert "canceling statement due to statement timeout" in logged
    assert "PLANTED" not in logged and "COPY new_reports, line" not in logged
    assert "5d5892d3" not in logged


def test_a_violated_constraint_shows_no_row_content(schema_db: str) -> None:
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE new_reports ADD CONSTRAINT small_org CHECK (org_id < 100)")
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    with pytest.raises(
        PostgresUnavailable, match=r"check violation \(constraint small_org\)"
    ) as caught:
        sink.write("t", row(500, b'{"reports":["PLANTED"]}'), [])
    sink.close()
    assert "PLANTED" not in str(caught.value) and "500" not in str(caught.value)


def test_a_refused_statement_is_reported_not_raised_raw(schema_db: str) -> None:
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE new_reports ADD CONSTRAINT small_org CHECK (org_id < 100)")
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    with pytest.raises(PostgresUnavailable, match=r"refused the operation \(SQLSTATE 23514\)"):
        sink.write("t", row(500), [])
    sink.close()


def test_session_settings_keep_what_the_dsn_says(schema_db: str) -> None:
    given = connection_defaults(PostgresConfig(dsn=schema_db + " keepalives_idle=5"))
    assert "keepalives_idle" not in given
    assert given["tcp_user_timeout"] == 60_000
    sink = PostgresSink(PostgresConfig(dsn=schema_db, statement_timeout_seconds=12))
    sink.check_schema()
    assert sink._connection().execute("SHOW statement_timeout").fetchone() == ("12s",)
    assert sink._connection().execute("SHOW synchronous_commit").fetchone() == ("on",)
    sink.close()


def test_writers_on_two_threads_use_two_connections_and_cross_duplicates_are_kept_once(
    schema_db: str,
) -> None:
    """Two batches holding each other's keys, stored at once: whichever waits for the other
    (or is chosen as a deadlock victim and retried) skips the keys the other stored."""
    sink = PostgresSink(PostgresConfig(dsn=schema_db))
    first = joined(*(row(org, offset=org) for org in range(1, 200)))
    second = joined(*(row(org, offset=1000 + org) for org in range(199, 0, -1)))
    barrier = threading.Barrier(2)
    backends: set[int] = set()
    results: list[tuple[int, int]] = []

    def store(batch: RowBatch) -> None:
        barrier.wait(timeout=10)
        result = sink.write("t", batch, [])
        results.append((result.inserted, result.duplicates))
        backends.add(sink._connection().info.backend_pid)

    threads = [threading.Thread(target=store, args=(b,)) for b in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    sink.close()
    assert len(backends) == 2
    assert sum(r[0] for r in results) == 199
    assert sum(r[1] for r in results) == 199
    assert [org for org, _, _ in stored(schema_db)] == list(range(1, 200))
