"""Measurements: the job (``etl run``, then ``etl verify``) as a subprocess, the PostgreSQL COPY
ceiling and the Kafka read ceiling.

CPU of a subprocess comes from ``os.wait4`` (the child's own rusage: user and system seconds);
its peak RSS is its VmHWM, sampled from /proc every 20 ms. CPU of the PostgreSQL server is the
delta, across a measurement, of utime+stime+cutime+cstime of the postmaster (``cutime`` and
``cstime`` hold the backends it already reaped) plus utime+stime of its live children (backends,
checkpointer, walwriter, ...). The server is shared, so that figure also contains other
clients' work done at the same time: read it next to the repetitions' spread.

The server figure is read only once the measured client's backends have exited and been reaped
(`PgCpu.settle`): a backend outlives its client by a moment, and until the postmaster reaps it
its time is in neither place, so a reading taken when the client exits can miss nearly all of
the server's work.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """One timed operation. ``items`` are messages (job, Kafka) or rows (COPY)."""

    wall_s: float
    items: int
    value_bytes: int
    cpu_s: float
    pg_cpu_s: float | None
    peak_rss_mb: float | None
    exit_code: int = 0
    detail: dict[str, Any] | None = None
    user_s: float | None = None
    sys_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The figures, plus rates; the CPU cost per MB of values and per message (item) are
        the process's own user+system seconds, what a faster job has to save."""
        out = asdict(self)
        out["items_per_s"] = self.items / self.wall_s if self.wall_s else None
        out["mb_per_s"] = self.value_bytes / 1e6 / self.wall_s if self.wall_s else None
        out["cpu_ms_per_mb"] = (
            self.cpu_s * 1e3 / (self.value_bytes / 1e6) if self.value_bytes else None
        )
        out["cpu_us_per_item"] = self.cpu_s * 1e6 / self.items if self.items else None
        return out


class PgCpu:
    """Total CPU seconds consumed so far by the PostgreSQL server whose postmaster is ``pid``."""

    def __init__(self, pid_file: Path, proc: Path = Path("/proc")) -> None:
        self._proc = proc  # another root in tests: a fake process table
        try:
            self.pid: int | None = int(pid_file.read_text().split()[0])
            _stat(self.pid, proc)
        except (OSError, ValueError, IndexError):
            print(f"  note: no postmaster at {pid_file}; PostgreSQL CPU is not measured")
            self.pid = None

    def seconds(self) -> float | None:
        """A consistent reading: a child reaped while the children are read would otherwise be
        counted twice or not at all, so the reading is retried until the postmaster's reaped
        children's time (cutime, cstime) is the same before and after the scan."""
        if self.pid is None:
            return None
        for _ in range(100):
            _, own = _stat(self.pid, self._proc)
            ticks = sum(own) + self._children_ticks()
            if _stat(self.pid, self._proc)[1][2:] == own[2:]:
                break
        return ticks / _TICK

    def _children_ticks(self) -> int:
        ticks = 0
        with os.scandir(self._proc) as entries:
            names = [e.name for e in entries if e.name.isdigit()]
        for name in names:
            try:
                ppid, child = _stat(int(name), self._proc)
            except OSError:
                continue  # exited meanwhile: its time is now in the postmaster's cutime
            if ppid == self.pid:
                ticks += child[0] + child[1]
        return ticks

    def settle(self, dbname: str, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` s) until no backend serves ``dbname`` and no child of the
        postmaster is left unreaped, so every finished backend's time is in its cutime."""
        if self.pid is None:
            return
        deadline = time.monotonic() + timeout
        while self._serving(dbname) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _serving(self, dbname: str) -> bool:
        needle = f" {dbname} ".encode()
        with os.scandir(self._proc) as entries:
            names = [e.name for e in entries if e.name.isdigit()]
        for name in names:
            try:
                stat = (self._proc / name / "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) != self.pid:
                    continue
                if stat[stat.rindex(")") + 2] == "Z":
                    return True  # exited, not yet reaped: its time is nowhere yet
                title = (self._proc / name / "cmdline").read_bytes().replace(b"\0", b" ")
                if not title.strip() or needle in title:
                    return True  # serving the database, or exiting (its memory already gone)
            except (OSError, ValueError):
                continue
        return False


def _stat(pid: int, proc: Path = Path("/proc")) -> tuple[int, tuple[int, int, int, int]]:
    """(ppid, (utime, stime, cutime, cstime)) in clock ticks, from /proc/<pid>/stat."""
    text = (proc / str(pid) / "stat").read_text()
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), (int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14]))


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


@dataclass
class Run:
    """One measured subprocess: wall and CPU seconds (user, system), peak RSS, the server's
    CPU seconds over the same span, and the exit code."""

    wall: float
    user: float
    sys: float
    rss_mb: float
    pg_cpu: float | None
    code: int

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_measured(
    argv: list[str], env: dict[str, str] | None, pg: PgCpu, log: Path, dbname: str
) -> Run:
    """Run ``argv`` (a client of database ``dbname``) to completion, stdout+stderr to ``log``;
    the server's CPU is read after the client's backends are gone."""
    pg0 = pg.seconds()
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        stop = threading.Event()
        peak = [0]
        watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, stop, peak), daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        stop.set()
        watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    pg.settle(dbname)
    pg_cpu = _delta(pg.seconds(), pg0)
    return Run(wall, usage.ru_utime, usage.ru_stime, peak[0] / 1024, pg_cpu, proc.returncode)


def _watch_hwm(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """Keep ``peak[0]`` at the child's VmHWM (kB), read every 20 ms until it exits.

    Not ``ru_maxrss``: Linux folds the parent's high-water mark into the child's at ``exec``,
    so a benchmark process that once held a large corpus would inflate every later reading."""
    path = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        try:
            status = path.read_text()
        except OSError:
            return
        if "\nState:\tZ" in status:
            return  # exited; not yet reaped
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak[0] = max(peak[0], int(line.split()[1]))
        stop.wait(0.02)


def run_job(
    etl_cmd: list[str], env: dict[str, str], pg: PgCpu, log: Path, value_bytes: int
) -> Measured:
    """``etl run`` as a user runs it; counts come from its final "run_finished" event."""
    dbname = conninfo_to_dict(env["ETL_POSTGRES__DSN"])["dbname"]
    run = run_measured([*etl_cmd, "run"], env, pg, log, str(dbname))
    summary: dict[str, Any] = {}
    for line in log.read_bytes().splitlines():
        if line.startswith(b"{") and b'"run_finished"' in line:
            summary = orjson.loads(line)
    consumed = int(summary.get("consumed", 0))
    detail = {k: summary.get(k) for k in ("inserted", "duplicates", "rejected", "batches")}
    return _measured(run, consumed, value_bytes, detail)


def run_verify(
    etl_cmd: list[str], env: dict[str, str], pg: PgCpu, log: Path, value_bytes: int
) -> Measured:
    """``etl verify`` of what the job just loaded; counts from its "verify_finished" event."""
    dbname = conninfo_to_dict(env["ETL_POSTGRES__DSN"])["dbname"]
    argv = [*etl_cmd, "verify", "--output", "json"]
    run = run_measured(argv, env, pg, log, str(dbname))
    summary: dict[str, Any] = {}
    for line in log.read_bytes().splitlines():
        if line.startswith(b"{") and b'"verify_finished"' in line:
            summary = orjson.loads(line)
    kinds = ("stored", "rejected", "duplicate", "expired", "missing", "different")
    detail = {k: int(summary.get(k, 0)) for k in (*kinds, "batches")}
    messages = sum(detail[k] for k in kinds)
    return _measured(run, messages, value_bytes, detail)


def _measured(run: Run, items: int, value_bytes: int, detail: dict[str, Any]) -> Measured:
    return Measured(
        run.wall, items, value_bytes, run.cpu, run.pg_cpu, run.rss_mb, run.code, detail,
        user_s=run.user, sys_s=run.sys,
    )  # fmt: skip


def kafka_read(bootstrap: str, topic: str, isolation: str) -> Measured:
    """Only read every message of ``topic`` with a plain confluent-kafka consumer loop."""
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-read-{os.getpid()}-{time.time_ns()}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
            # The job's own librdkafka defaults (etl/kafka/offsets.py), so only the loop differs.
            "queued.max.messages.kbytes": 16384,
            "fetch.wait.max.ms": 100,
            "fetch.queue.backoff.ms": 10,
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    remaining = set()
    for p in parts:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            remaining.add(p)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    count = size = 0
    while remaining:
        for msg in consumer.consume(1000, 0.5):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise RuntimeError(err.str())
            count += 1
            size += len(msg.value() or b"")
    consumer.close()
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    user, system = usage.ru_utime - usage0.ru_utime, usage.ru_stime - usage0.ru_stime
    return Measured(wall, count, size, user + system, None, None, user_s=user, sys_s=system)


def copy_ceilings(dsn: str, pg: PgCpu, workdir: Path) -> tuple[Measured, Measured]:
    """``psql \\copy`` of exactly the rows the job stored into an identical, empty table: in
    text format (the ceiling: what an operator would otherwise use) and in binary format (what
    the job sends), so the server's cost of each format is measured side by side."""
    text = _copy_ceiling(dsn, pg, workdir, "")
    binary = _copy_ceiling(dsn, pg, workdir, " (FORMAT binary)")
    return text, binary


def _copy_ceiling(dsn: str, pg: PgCpu, workdir: Path, options: str) -> Measured:
    with tempfile.NamedTemporaryFile(dir=workdir, suffix=".copy", delete=False) as tmp:
        data = Path(tmp.name)
    try:
        _psql(dsn, f"\\copy new_reports TO '{data}'{options}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_copy_ceiling (LIKE new_reports INCLUDING ALL)")
        checkpoint(dsn)  # and the exported file written back, not competing with the load
        argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c",
                f"\\copy bench_copy_ceiling FROM '{data}'{options}"]  # fmt: skip
        dbname = str(conninfo_to_dict(dsn)["dbname"])
        run = run_measured(argv, None, pg, workdir / "copy.log", dbname)
        if run.code != 0:
            raise RuntimeError((workdir / "copy.log").read_text())
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM bench_copy_ceiling").fetchone()
            rows = int(row[0]) if row else 0
            conn.execute("DROP TABLE bench_copy_ceiling")
        return Measured(
            run.wall, rows, data.stat().st_size, run.cpu, run.pg_cpu, run.rss_mb,
            user_s=run.user, sys_s=run.sys,
        )  # fmt: skip
    finally:
        data.unlink(missing_ok=True)


def _psql(dsn: str, command: str) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", command],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def dsn_for(admin_dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(admin_dsn)
    params["dbname"] = dbname
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def create_database(admin_dsn: str, name: str, schema: Path) -> str:
    """A fresh database with ``schema`` (the checkout's schema.sql) applied; its DSN."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = dsn_for(admin_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema.read_text())
    return dsn


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def checkpoint(dsn: str) -> None:
    """Start each timed phase without the previous phase's dirty buffers pending: PostgreSQL's
    (CHECKPOINT), and the kernel's (sync). Without the sync, the first phase after a corpus was
    produced ran while the broker's half a gigabyte was being written back, and every fsync
    of it (a synchronous commit per batch) waited behind that: the first repetition came out
    30-50% slower than the next ones, for the job and the Kafka read alike."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def prefill(dsn: str, rows: int, report: str) -> float:
    """Fill new_reports with ``rows`` rows whose keys cannot collide with the corpus (2024
    timestamps, md5-random clusters), then VACUUM ANALYZE as a table in service would be.
    Returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO new_reports (org_id, account_number, cluster, report, updated_at,"
            " kafka_offset, kafka_partition)"
            " SELECT 1 + g %% 2000, g %% 9999999, md5(g::text)::uuid::text, %s,"
            " timestamp '2024-01-01' + g * interval '1 second', g, 0"
            " FROM generate_series(1, %s) AS g",
            (report, rows),
        )
        conn.execute("VACUUM ANALYZE new_reports")
    return time.perf_counter() - started
