"""bench/measure.py's reading of the server's CPU, on a process table of our own making.

The server's CPU is the postmaster's own time, its reaped children's (cutime, cstime) and its
live children's; a backend that exited but is not yet reaped (a zombie) holds time that is
nowhere yet, so the benchmark waits for it (`PgCpu.settle`) before reading.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.services import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import measure

sys.path.remove(str(ROOT / "bench"))

POSTMASTER = 100


def process(proc: Path, pid: int, ppid: int, ticks: tuple[int, int, int, int], **kw: str) -> None:
    """A /proc/<pid> with a stat line (name with a space and a parenthesis, as titles have)."""
    state = kw.get("state", "S")
    fields = [state, str(ppid), *["0"] * 9, *map(str, ticks), *["0"] * 20]
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "stat").write_text(f"{pid} (postgres: x) {' '.join(fields)}\n")
    (proc / str(pid) / "cmdline").write_bytes(kw.get("cmdline", "postgres").encode() + b"\0")


def table(tmp_path: Path) -> tuple[Path, Path]:
    proc = tmp_path / "proc"
    process(proc, POSTMASTER, 1, (10, 5, 300, 200))  # 300 + 200 from reaped backends
    process(proc, 101, POSTMASTER, (40, 10, 0, 0), cmdline="postgres: checkpointer ")
    process(proc, 999, 1, (7777, 7777, 0, 0))  # not the server's
    pid_file = tmp_path / "postmaster.pid"
    pid_file.write_text(f"{POSTMASTER}\n/data\n")
    return proc, pid_file


def test_server_cpu_is_the_postmaster_its_reaped_and_its_live_children(tmp_path: Path) -> None:
    proc, pid_file = table(tmp_path)
    pg = measure.PgCpu(pid_file, proc)
    assert pg.seconds() == (10 + 5 + 300 + 200 + 40 + 10) / measure._TICK


def test_a_backend_serving_the_database_or_exited_unreaped_is_waited_for(tmp_path: Path) -> None:
    proc, pid_file = table(tmp_path)
    pg = measure.PgCpu(pid_file, proc)
    assert not pg._serving("bench")
    process(proc, 102, POSTMASTER, (1, 1, 0, 0), cmdline="postgres: etl bench 127.0.0.1 COPY")
    assert pg._serving("bench")
    (proc / "102" / "stat").unlink()
    process(proc, 103, POSTMASTER, (1, 1, 0, 0), state="Z", cmdline="")
    assert pg._serving("bench")  # a zombie: its time is not in the postmaster's cutime yet


def test_no_postmaster_means_the_server_cpu_is_not_measured(tmp_path: Path) -> None:
    pg = measure.PgCpu(tmp_path / "absent.pid", tmp_path / "proc")
    assert (pg.pid, pg.seconds()) == (None, None)
