"""Benchmark of ``etl run`` against the local services, next to its two ceilings.

    eval "$(dev/services.sh env)"
    python3 bench/run.py                       # sizes 1k,10k,100k, 3 repetitions
    python3 bench/run.py --sizes 1k --messages 20000 --repeat 3
    python3 bench/run.py --sizes '' --scale --scale-messages 200000   # scale mode only

Per report size: produce a deterministic corpus to a fresh topic, then per repetition, each on
a fresh database with schema.sql applied: read the topic with a plain consumer (Kafka ceiling),
run ``etl run`` with a fresh group (the job), and ``psql \\copy`` the rows the job stored into an
identical empty table (COPY ceiling), and the same rows once more in binary format (the
server's cost of the format the job sends). Right after the job, ``etl verify`` checks the same
topic against the database it loaded. Prints a table per size and writes everything as JSON.

Endpoints and job settings come from the same ETL_* variables the job reads; any other ETL_*
variable (e.g. ETL_BATCH__MAX_BYTES) is passed on to the job unchanged. Topics (bench-*),
databases (etl_bench_*), consumer groups and the Pushgateway group are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import corpus
import measure
import orjson
import tables

DEFAULT_MESSAGES = {"1k": 200_000, "10k": 50_000, "100k": 5_000}
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def services_dir(environ: Mapping[str, str]) -> Path:
    """Where ``dev/services.sh`` keeps its state, by the same rule: ``$ETL_SERVICES_DIR`` unless
    unset or empty, else /tmp/etl-services."""
    return Path(environ.get("ETL_SERVICES_DIR") or "/tmp/etl-services")


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> argparse.Namespace:
    """The options; the PostgreSQL pid file defaults to the one of the services in use."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1k,10k,100k", help="report sizes, of 1k,10k,100k")
    p.add_argument("--messages", type=int, help=f"messages per size (default {DEFAULT_MESSAGES})")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per size (default 3)")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--compression", default="none", help="producer compression.type")
    p.add_argument(
        "--shape",
        choices=corpus.SHAPES,
        default="compact",
        help="valid values without whitespace (compact), or as their producer writes them,"
        " Python's json.dumps with a space after each ',' and ':' (sent)",
    )
    p.add_argument("--empty-runs", type=int, default=3, help="runs on an empty topic (0: skip)")
    p.add_argument("--scale", action="store_true", help="also run the scale mode")
    p.add_argument("--scale-messages", type=int, default=1_000_000)
    p.add_argument("--scale-base", type=int, default=100_000, help="the small run for RSS")
    p.add_argument("--scale-prefill", type=int, default=1_000_000, help="rows already held")
    p.add_argument("--etl", default=None, help="the etl command (default: next to python)")
    p.add_argument(
        "--src", type=Path, default=Path(__file__).resolve().parent.parent,
        help="checkout whose etl package and schema.sql are measured (default: this one)",
    )  # fmt: skip
    p.add_argument(
        "--pg-pid-file", type=Path, default=services_dir(environ) / "pg" / "postmaster.pid",
        help="the server whose CPU is measured (default: $ETL_SERVICES_DIR/pg/postmaster.pid)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    p.add_argument("--keep", action="store_true", help="keep topics (databases are dropped)")
    return p.parse_args(argv)


class Bench:
    """Shared state of one benchmark run: endpoints, names to clean up, the job's command."""

    def __init__(self, args: argparse.Namespace) -> None:
        missing = [
            k
            for k in ("ETL_KAFKA__BOOTSTRAP_SERVERS", "ETL_POSTGRES__DSN")
            if not os.environ.get(k)
        ]
        if missing:
            sys.exit(f'bench: set {", ".join(missing)} (eval "$(dev/services.sh env)")')
        self.args = args
        self.kafka = os.environ["ETL_KAFKA__BOOTSTRAP_SERVERS"]
        self.admin_dsn = os.environ["ETL_POSTGRES__DSN"]
        self.pushgateway = os.environ.get("ETL_PUSHGATEWAY__URL", "")
        self.run_id = f"{int(time.time()):x}"
        self.push_job = f"etl-bench-{self.run_id}"
        self.isolation = os.environ.get("ETL_KAFKA__ISOLATION_LEVEL", "read_committed")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"etl-bench-{self.run_id}-"))
        self.pg = measure.PgCpu(args.pg_pid_file)
        self.topics: list[str] = []
        self.groups: list[str] = []
        local = Path(sys.executable).parent / "etl"
        found = args.etl or (str(local) if local.exists() else shutil.which("etl"))
        if not found:
            sys.exit("bench: no etl command; pip install -e . or pass --etl")
        self.etl_cmd = found.split()
        self.src = args.src.resolve()
        self.schema = self.src / "schema.sql"
        # Compiled once into etl/**/__pycache__ (ignored by git), as an installed wheel ships
        # its modules: run with PYTHONDONTWRITEBYTECODE, a checkout would compile every module
        # of etl on each start (50-60 ms). Not PYTHONPYCACHEPREFIX: Python then looks for every
        # module's bytecode there only, and the standard library's and the dependencies'
        # modules would be compiled again by the first run.
        subprocess.run([sys.executable, "-m", "compileall", "-q", "etl"], cwd=self.src, check=True)
        self.revision = subprocess.run(
            ["git", "-C", str(self.src), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=False,
        ).stdout.strip() or "unknown"  # fmt: skip

    def topic(self, label: str, messages: int, size: str = "1k") -> corpus.Corpus:
        name = f"bench-{self.run_id}-{label}"
        self.topics.append(name)
        started = time.perf_counter()
        made = corpus.produce(
            self.kafka,
            name,
            size=size,
            messages=messages,
            seed=self.args.seed,
            partitions=self.args.partitions,
            compression=self.args.compression,
            shape=self.args.shape,
        )
        print(
            f"  produced {messages:,} messages to {name} in {time.perf_counter() - started:.0f} s"
        )
        return made

    def env(self, topic: str, dsn: str, group: str) -> dict[str, str]:
        """The job's environment: this topic, database and consumer group."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            {
                "ETL_KAFKA__TOPIC": topic,
                "ETL_KAFKA__GROUP_ID": group,
                "ETL_POSTGRES__DSN": dsn,
                "ETL_PUSHGATEWAY__URL": self.pushgateway,
                "ETL_PUSHGATEWAY__JOB": self.push_job,
                "ETL_LOG__FORMAT": "json",
                # the package of --src, not whichever copy happens to be installed
                "PYTHONPATH": os.pathsep.join(filter(None, [str(self.src), env.get("PYTHONPATH")])),
            }
        )
        return env

    def job(self, topic: str, dsn: str, value_bytes: int, tag: str) -> dict[str, Any]:
        group = f"bench-{self.run_id}-{tag}"
        self.groups.append(group)
        env = self.env(topic, dsn, group)
        measure.checkpoint(self.admin_dsn)
        log = self.workdir / f"job-{tag}.log"
        result = measure.run_job(self.etl_cmd, env, self.pg, log, value_bytes).as_dict()
        if result["exit_code"] != 0:
            print(f"  job {tag} exited {result['exit_code']}; log: {log}")
        return result

    def verify(self, topic: str, dsn: str, value_bytes: int, tag: str) -> dict[str, Any]:
        """``etl verify`` of what `job` with the same ``tag`` just loaded."""
        env = self.env(topic, dsn, f"bench-{self.run_id}-{tag}")
        measure.checkpoint(self.admin_dsn)
        log = self.workdir / f"verify-{tag}.log"
        result = measure.run_verify(self.etl_cmd, env, self.pg, log, value_bytes).as_dict()
        if result["exit_code"] != 0:
            print(f"  verify {tag} exited {result['exit_code']}; log: {log}")
        return result

    def database(self, tag: str) -> tuple[str, str]:
        name = f"etl_bench_{self.run_id}_{tag}".replace("-", "_")
        return name, measure.create_database(self.admin_dsn, name, self.schema)

    def cleanup(self) -> None:
        corpus.delete_groups(self.kafka, self.groups)
        if not self.args.keep:
            corpus.delete_topics(self.kafka, self.topics)
        if self.pushgateway:
            url = f"{self.pushgateway.rstrip('/')}/metrics/job/{self.push_job}"
            try:
                urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10)
            except OSError as exc:
                print(f"  note: Pushgateway group {self.push_job} not deleted: {exc}")
        shutil.rmtree(self.workdir, ignore_errors=True)


def bench_size(b: Bench, size: str, messages: int) -> dict[str, Any]:
    print(f"-- size {size}: {messages:,} messages")
    made = b.topic(size, messages, size)
    reps = []
    for rep in range(b.args.repeat):
        name, dsn = b.database(f"{size}_{rep}")
        try:
            measure.checkpoint(b.admin_dsn)
            kafka = measure.kafka_read(b.kafka, made.topic, b.isolation).as_dict()
            job = b.job(made.topic, dsn, made.value_bytes, f"{size}-{rep}")
            verify = b.verify(made.topic, dsn, made.value_bytes, f"{size}-{rep}")
            text, binary = measure.copy_ceilings(dsn, b.pg, b.workdir)
            copy, copy_binary = text.as_dict(), binary.as_dict()
        finally:
            measure.drop_database(b.admin_dsn, name)
        detail = job["detail"]
        rejected = sum((detail.get("rejected") or {}).values())
        job["ok"] = (
            job["exit_code"] == 0
            and job["items"] == made.messages
            and detail.get("inserted") == made.valid == copy["items"]
            and rejected == made.messages - made.valid
        )
        if not job["ok"]:
            print(f"  WARNING: unexpected counts: {detail} vs {made.as_dict()}")
        verify["ok"] = verify["exit_code"] == 0 and verify["items"] == made.messages
        if not verify["ok"]:
            print(f"  WARNING: verify found {verify['detail']} of {made.messages:,} messages")
        reps.append(
            {"job": job, "verify": verify, "copy": copy, "binary": copy_binary, "kafka": kafka}
        )
        print(
            f"  rep {rep}: job {job['wall_s']:.2f} s, verify {verify['wall_s']:.2f} s,"
            f" COPY {copy['wall_s']:.2f} s, Kafka read {kafka['wall_s']:.2f} s"
        )
    summary = tables.summarize(reps)
    print(tables.size_table(size, made.as_dict(), summary, len(reps)))
    return {"corpus": made.as_dict(), "repetitions": reps, "median": summary}


def bench_empty(b: Bench) -> list[dict[str, Any]]:
    name = f"bench-{b.run_id}-empty"
    corpus.create_topic(b.kafka, name, b.args.partitions)
    b.topics.append(name)
    runs = []
    for rep in range(b.args.empty_runs):
        db, dsn = b.database(f"empty_{rep}")
        try:
            runs.append(b.job(name, dsn, 0, f"empty-{rep}"))
        finally:
            measure.drop_database(b.admin_dsn, db)
    print(tables.empty_table(runs))
    return runs


def bench_scale(b: Bench) -> dict[str, Any]:
    n, base = b.args.scale_messages, min(b.args.scale_base, b.args.scale_messages)
    print(f"-- scale: {base:,} and {n:,} messages, table prefilled with {b.args.scale_prefill:,}")
    small, large = b.topic("scale-small", base), b.topic("scale-large", n)
    report = orjson.loads(corpus.build_report(random.Random(b.args.seed), 1_000))
    for key in ("system", "fingerprints", "skips", "info", "pass", "analysis_metadata"):
        report.pop(key, None)
    runs: dict[str, Any] = {}
    prefill_s = 0.0
    stored = orjson.dumps(report).decode()
    plan = [
        (f"{base:,} msgs, empty table", small, False),
        (f"{n:,} msgs, empty table", large, False),
        (f"{n:,} msgs, {b.args.scale_prefill:,} rows held", large, True),
    ]
    for i, (label, made, prefilled) in enumerate(plan):
        db, dsn = b.database(f"scale_{i}")
        try:
            if prefilled:
                prefill_s = measure.prefill(dsn, b.args.scale_prefill, stored)
            result = b.job(made.topic, dsn, made.value_bytes, f"scale-{i}")
        finally:
            measure.drop_database(b.admin_dsn, db)
        result["us_per_msg"] = result["wall_s"] / max(result["items"], 1) * 1e6
        runs[label] = result
        print(f"  {label}: {result['wall_s']:.1f} s, RSS {result['peak_rss_mb']:.0f} MB")
    small_run, empty_run, full_run = runs.values()
    return {
        "prefill_rows": b.args.scale_prefill,
        "prefill_s": prefill_s,
        "runs": runs,
        "prefilled_over_empty": full_run["us_per_msg"] / empty_run["us_per_msg"],
        "rss_large_over_small": empty_run["peak_rss_mb"] / small_run["peak_rss_mb"],
        "rss_max_mb": max(r["peak_rss_mb"] for r in runs.values()),
    }


def main() -> None:
    args = parse_args()
    b = Bench(args)
    max_bytes = int(os.environ.get("ETL_BATCH__MAX_BYTES", DEFAULT_MAX_BYTES))
    results: dict[str, Any] = {
        "meta": {
            "run_id": b.run_id,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "src": str(b.src),
            "revision": b.revision,
            "etl_env": {k: v for k, v in os.environ.items() if k.startswith("ETL_BATCH")},
        },
        "sizes": {},
    }
    printed: list[str] = [f"etl from {b.src} at {b.revision}"]
    try:
        if args.empty_runs:
            results["empty_topic"] = bench_empty(b)
            printed.append(tables.empty_table(results["empty_topic"]))
        for size in filter(None, args.sizes.split(",")):
            messages = args.messages or DEFAULT_MESSAGES[size]
            results["sizes"][size] = found = bench_size(b, size, messages)
            printed.append(
                tables.size_table(size, found["corpus"], found["median"], len(found["repetitions"]))
            )
        if args.scale:
            results["scale"] = bench_scale(b)
            printed.append(tables.scale_table(results["scale"], 2 * max_bytes / 1e6 + 150))
    finally:
        b.cleanup()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print("\n" + "\n\n".join(printed) + f"\n\nresults: {args.out}")


if __name__ == "__main__":
    main()
