"""What the live view costs: ``etl run`` in a real terminal (tmux) and off it, side by side.

    eval "$(dev/services.sh env)"
    python3 bench/terminal.py                        # 200k x 1 KB, 1% invalid, 3 repetitions
    python3 bench/terminal.py --messages 50000 --repeat 5
    python3 bench/terminal.py --src /tmp/etl-before  # another checkout's etl package
    ETL_LOG__LEVEL=ERROR python3 bench/terminal.py   # any ETL_* reaches both runs

One corpus (the benchmark's, `corpus.py`) is produced to a fresh topic; then per repetition the
job runs twice, each time on a fresh database with schema.sql applied and with a fresh consumer
group: once off a terminal (stderr to a file: JSON logs, no view) and once in a detached tmux
session of ``--width`` x ``--height`` (a pseudo-terminal: text logs and the live view). The
order alternates between repetitions so neither mode always runs on a warmer machine. Both
are timed by the same wrapper (``--child``: wall time from start to exit, CPU from the child's
``os.wait4`` rusage), and both must store exactly the corpus' valid rows and rejections.

Prints the medians of both modes and the ratio terminal / off (the median of the ratios taken
inside each repetition), and writes every figure as JSON (``--out``). The last screen of each
terminal run is kept next to it (``--out`` with ``.screen-<rep>.txt``) to see what was shown.
Requires tmux. Topics, groups and databases are removed at the end (``--keep``: the topic).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import corpus
import measure
import orjson
import psycopg

WAIT_SECONDS = 900  # one run in the terminal, at most


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--size", default="1k", help="report size: 1k, 10k or 100k")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--width", type=int, default=160, help="terminal columns")
    p.add_argument("--height", type=int, default=50, help="terminal lines")
    p.add_argument("--etl", default=None, help="the etl command (default: next to python)")
    p.add_argument(
        "--src",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="checkout whose etl package and schema.sql are measured (default: this one)",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tty.json")
    p.add_argument("--keep", action="store_true", help="keep the topic")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: time the command
    p.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    return p.parse_args()


def child(result: Path, argv: list[str]) -> None:
    """Run ``argv`` on this process' terminal; write its wall time, CPU and exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    doc = {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "exit_code": os.waitstatus_to_exitcode(status),
    }
    result.with_suffix(".tmp").write_bytes(orjson.dumps(doc))
    result.with_suffix(".tmp").rename(result)  # whole or absent for the waiting parent


class TtyBench:
    def __init__(self, args: argparse.Namespace) -> None:
        for key in ("ETL_KAFKA__BOOTSTRAP_SERVERS", "ETL_POSTGRES__DSN"):
            if not os.environ.get(key):
                sys.exit(f'bench: set {key} (eval "$(dev/services.sh env)")')
        self.args = args
        self.kafka = os.environ["ETL_KAFKA__BOOTSTRAP_SERVERS"]
        self.admin_dsn = os.environ["ETL_POSTGRES__DSN"]
        self.run_id = f"{int(time.time()):x}"
        self.root = args.src.resolve()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"etl-tty-{self.run_id}-"))
        self.socket = f"etl-bench-{self.run_id}"
        local = Path(sys.executable).parent / "etl"
        self.etl = (args.etl or str(local)).split()
        self.groups: list[str] = []
        self.failed = False  # a run stored other counts than the corpus: its logs are kept

    def env(self, topic: str, dsn: str, tag: str) -> dict[str, str]:
        group = f"bench-{self.run_id}-{tag}"
        self.groups.append(group)
        env = dict(os.environ)
        env.pop("ETL_LOG__FORMAT", None)  # each mode as a user gets it: JSON off, text on
        env.update(
            {
                "ETL_KAFKA__TOPIC": topic,
                "ETL_KAFKA__GROUP_ID": group,
                "ETL_POSTGRES__DSN": dsn,
                "ETL_PUSHGATEWAY__URL": "",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(self.root), env.get("PYTHONPATH")])
                ),
            }
        )
        return env

    def off(self, env: dict[str, str], tag: str) -> dict[str, Any]:
        result = self.workdir / f"{tag}.json"
        with (self.workdir / f"{tag}.log").open("wb") as log:
            subprocess.run(
                [sys.executable, __file__, "--child", str(result), "--", *self.etl, "run"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                check=True,
                timeout=WAIT_SECONDS,
            )
        return dict(orjson.loads(result.read_bytes()))

    def tty(self, env: dict[str, str], tag: str, screen: Path) -> dict[str, Any]:
        result = self.workdir / f"{tag}.json"
        script = self.workdir / f"{tag}.sh"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        argv = [sys.executable, __file__, "--child", str(result), "--", *self.etl, "run"]
        script.write_text(f"unset COLUMNS LINES\n{exports}{shlex.join(argv)}\nsleep 60\n")
        script.chmod(0o600)
        session = f"run-{tag}"
        size = ["-x", str(self.args.width), "-y", str(self.args.height)]
        self.tmux("new-session", "-d", "-s", session, *size, f"sh {shlex.quote(str(script))}")
        deadline = time.monotonic() + WAIT_SECONDS
        try:
            while not result.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the terminal run {tag} did not end in {WAIT_SECONDS} s")
                time.sleep(0.1)
            time.sleep(0.3)  # the last redraw
            screen.write_text(self.tmux("capture-pane", "-p", "-t", session))
        finally:
            subprocess.run(
                ["tmux", "-L", self.socket, "kill-session", "-t", session],
                capture_output=True,
                check=False,
            )
        return dict(orjson.loads(result.read_bytes()))

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def cleanup(self, topic: str | None) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)
        corpus.delete_groups(self.kafka, self.groups)
        if topic and not self.args.keep:
            corpus.delete_topics(self.kafka, [topic])
        if not self.failed:
            shutil.rmtree(self.workdir, ignore_errors=True)


def stored(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT count(*) FROM new_reports").fetchone()
        rejected = conn.execute("SELECT count(*) FROM rejected_messages").fetchone()
    return (rows[0] if rows else 0), (rejected[0] if rejected else 0)


def repetition(b: TtyBench, made: corpus.Corpus, rep: int) -> dict[str, Any]:
    """Both modes once, each on a fresh database; the order alternates with ``rep``."""
    found: dict[str, Any] = {}
    for mode in ("off", "tty") if rep % 2 == 0 else ("tty", "off"):
        tag = f"{mode}{rep}"
        db = f"etl_bench_{b.run_id}_{tag}"
        dsn = measure.create_database(b.admin_dsn, db, b.root / "schema.sql")
        try:
            measure.checkpoint(b.admin_dsn)
            env = b.env(made.topic, dsn, tag)
            screen = b.args.out.with_suffix(f".screen-{rep}.txt")
            res = b.off(env, tag) if mode == "off" else b.tty(env, tag, screen)
            rows, rejected = stored(dsn)
        finally:
            measure.drop_database(b.admin_dsn, db)
        res["ok"] = (
            res["exit_code"] == 0 and rows == made.valid and rejected == made.messages - made.valid
        )
        if not res["ok"]:
            b.failed = True
            print(
                f"  WARNING: {tag}: exit {res['exit_code']}, {rows} rows, "
                f"{rejected} rejections; logs in {b.workdir}"
            )
        found[mode] = res
    found["ratio"] = found["tty"]["wall_s"] / found["off"]["wall_s"]
    found["cpu_ratio"] = found["tty"]["cpu_s"] / found["off"]["cpu_s"]
    return found


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, args.command)
        return
    b = TtyBench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    topic = f"bench-{b.run_id}-tty"
    reps: list[dict[str, Any]] = []
    try:
        started = time.perf_counter()
        made = corpus.produce(
            b.kafka,
            topic,
            size=args.size,
            messages=args.messages,
            seed=args.seed,
            partitions=args.partitions,
        )
        print(
            f"produced {made.messages:,} messages ({made.value_bytes / 1e6:,.0f} MB, "
            f"{made.messages - made.valid:,} invalid) to {topic} in "
            f"{time.perf_counter() - started:.0f} s"
        )
        for rep in range(args.repeat):
            found = repetition(b, made, rep)
            reps.append(found)
            print(
                f"  rep {rep}: off {found['off']['wall_s']:.2f} s "
                f"(CPU {found['off']['cpu_s']:.2f} s), terminal {found['tty']['wall_s']:.2f} s "
                f"(CPU {found['tty']['cpu_s']:.2f} s), ratio {found['ratio']:.3f}"
            )
    finally:
        b.cleanup(topic)
    summary = {
        mode: {k: statistics.median(r[mode][k] for r in reps) for k in ("wall_s", "cpu_s")}
        for mode in ("off", "tty")
    }
    ratio = statistics.median(r["ratio"] for r in reps)
    cpu_ratio = statistics.median(r["cpu_ratio"] for r in reps)
    level = os.environ.get("ETL_LOG__LEVEL", "(default)")
    print(
        f"\n{args.messages:,} x {args.size}, {args.repeat} repetitions, log level {level}, "
        f"terminal {args.width}x{args.height}: medians\n"
        f"  off a terminal  wall {summary['off']['wall_s']:6.2f} s  "
        f"CPU {summary['off']['cpu_s']:6.2f} s\n"
        f"  in a terminal   wall {summary['tty']['wall_s']:6.2f} s  "
        f"CPU {summary['tty']['cpu_s']:6.2f} s\n"
        f"  terminal / off  wall {ratio:.3f}  CPU {cpu_ratio:.3f} "
        "(medians of the per-repetition ratios; target: wall <= 1.10)"
    )
    doc = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "log_level": level,
        "repetitions": reps,
        "median": summary,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
    }
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
