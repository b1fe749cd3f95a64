"""A/B of the job's start-up: ``etl --help`` and ``etl run`` on an empty topic, two checkouts.

    eval "$(dev/services.sh env)"
    git archive --prefix=a/ HEAD~1 | tar -x -C /tmp     # the baseline, as a checkout
    python3 bench/startup.py /tmp/a .                  # A = /tmp/a, B = this checkout
    python3 bench/startup.py /tmp/a . --repeat 25 --only help

Each checkout's ``etl`` package runs with ``python -m etl`` (PYTHONPATH=checkout), the runs of A
and B taking turns, so the machine's load falls on both alike; the table gives medians of wall
and CPU (user + system) seconds and B / A. Each checkout's modules are compiled
once beforehand (into its etl/**/__pycache__), as an installed wheel ships them: without that,
a checkout run with PYTHONDONTWRITEBYTECODE compiles every module of ``etl`` on each start
(50-60 ms here), which a user never pays. (Not PYTHONPYCACHEPREFIX: Python then looks for all
bytecode there only, and compiles the standard library and the dependencies again.)

``run`` uses a fresh empty topic (6 partitions) and a fresh database with schema.sql applied,
shared by A and B, removed at the end with the topic and consumer group.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import corpus
import measure


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one run of ``argv``, and its exit code. It runs in the
    checkout (``python -m`` puts the working directory first on sys.path)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=env["PYTHONPATH"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def checkout_env(src: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(src), **extra)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "etl"], env=env, cwd=src, check=True)
    return env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("a", type=Path, help="checkout A (the baseline)")
    p.add_argument("b", type=Path, help="checkout B")
    p.add_argument("--repeat", type=int, default=15, help="runs of each command per checkout")
    p.add_argument("--only", choices=["help", "run"], help="time one command only")
    args = p.parse_args()
    kafka, admin_dsn = os.environ["ETL_KAFKA__BOOTSTRAP_SERVERS"], os.environ["ETL_POSTGRES__DSN"]
    tag = f"startup-{int(time.time()):x}"
    corpus.create_topic(kafka, f"bench-{tag}", 6)
    db = f"etl_bench_{tag}".replace("-", "_")
    dsn = measure.create_database(admin_dsn, db, args.b.resolve() / "schema.sql")
    job = {
        "ETL_KAFKA__TOPIC": f"bench-{tag}",
        "ETL_KAFKA__GROUP_ID": f"bench-{tag}",
        "ETL_POSTGRES__DSN": dsn,
        "ETL_PUSHGATEWAY__JOB": f"etl-bench-{tag}",
        "ETL_LOG__FORMAT": "json",
    }
    try:
        envs = {
            name: checkout_env(src.resolve(), job) for name, src in (("A", args.a), ("B", args.b))
        }
        commands = {"help": ["--help"], "run": ["run"]}
        if args.only:
            commands = {args.only: commands[args.only]}
        print(f"{'':12}{'A wall':>9}{'B wall':>9}{'B/A':>7}{'A CPU':>9}{'B CPU':>9}{'B/A':>7}")
        for label, tail in commands.items():
            found: dict[str, list[tuple[float, float, int]]] = {"A": [], "B": []}
            for i in range(args.repeat):
                for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    found[name].append(timed([sys.executable, "-m", "etl", *tail], envs[name]))
            codes = {n: sorted({c for *_, c in runs}) for n, runs in found.items()}
            wall = {n: statistics.median(r[0] for r in runs) for n, runs in found.items()}
            cpu = {n: statistics.median(r[1] for r in runs) for n, runs in found.items()}
            print(
                f"etl {label:8}{wall['A']:>9.3f}{wall['B']:>9.3f}{wall['B'] / wall['A']:>7.2f}"
                f"{cpu['A']:>9.3f}{cpu['B']:>9.3f}{cpu['B'] / cpu['A']:>7.2f}"
                f"   exit codes {codes}; medians of {args.repeat}"
            )
    finally:
        measure.drop_database(admin_dsn, db)
        corpus.delete_groups(kafka, [f"bench-{tag}"])
        corpus.delete_topics(kafka, [f"bench-{tag}"])


if __name__ == "__main__":
    main()
