"""`etl run` in a real terminal (tmux): the view pinned under the scrolling logs, then one table.

The run is held mid-way by a lock on ``new_reports`` taken by the test, so the screen is read
while the run is blocked on its first write with two batches read, and again after it ended.
Its rejections are grouped: a few lines per reason above the view, counts per reason in it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers.runs import BAD, good
from tests.helpers.services import ROOT

Env = Callable[..., dict[str, str]]
WAIT_SECONDS = 60


@pytest.fixture
def tmux() -> Iterator[Callable[..., str]]:
    """A private tmux server (own socket); ``tmux(*args)`` runs a tmux command, returns stdout."""
    if shutil.which("tmux") is None:
        pytest.fail(
            "tmux is needed for the terminal tests: apt-get install tmux (dev/test.sh does)"
        )
    socket = f"etl-test-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    yield run
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def wait_for_screen(tmux: Callable[..., str], ready: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", "etl")
        if ready(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"the screen never got there:\n{screen}")


def test_a_run_on_a_terminal_shows_live_progress_then_one_summary(
    schema_db: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    tmux: Callable[..., str],
    tmp_path: Path,
) -> None:
    topic = make_topic(2)
    bad = [(0, BAD[1])] * 10 + [(0, BAD[2])]  # 10 invalid_json, 1 wrong_type
    produce(topic, bad + [(i % 2, good(i)) for i in range(689)])
    env = etl_env(topic, ETL_LOG__FORMAT="auto", ETL_BATCH__MAX_MESSAGES="100")
    for name in ("COLUMNS", "LINES", "TERM"):  # the terminal decides, as for a person
        env.pop(name, None)
    script = tmp_path / "run.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    script.write_text(
        f"unset COLUMNS LINES\n{exports}cd {shlex.quote(str(ROOT))}\n"
        f"{shlex.quote(sys.executable)} -m etl run\necho exit=$?\nsleep 120\n"
    )
    with psycopg.connect(schema_db) as lock:
        lock.execute("LOCK TABLE new_reports IN EXCLUSIVE MODE")  # writes wait, reads do not
        tmux("new-session", "-d", "-s", "etl", "-x", "100", "-y", "40", f"sh {script}")
        # the run is held once its first batch is decoded (rejections counted) and being written
        held = wait_for_screen(
            tmux, lambda s: "/700 msg" in s and " lag" in s and "rejected 11" in s
        )
        time.sleep(1.2)
        later = tmux("capture-pane", "-p", "-t", "etl")
        lock.rollback()
    lines = held.rstrip().splitlines()
    bar = next(i for i, line in enumerate(lines) if "/700 msg" in line)
    assert lines[bar].startswith(topic)
    assert re.search(r"\d+\.\d%  \d+/700 msg$", lines[bar])
    counts = r"MB/s  elapsed \d:\d\d:\d\d  ETA (\d:\d\d:\d\d|-:--:--)  rejected 11$"
    assert re.search(counts, lines[bar + 1])
    # grouped per reason, the most frequent first, each with its latest rejection
    assert re.fullmatch(
        r"  invalid_json +10  latest partition 0 offset 9: not valid JSON.*", lines[bar + 2]
    )
    assert re.fullmatch(
        r"  wrong_type +1  latest partition 0 offset 10: OrgID: expected integer.*", lines[bar + 3]
    )
    assert lines[bar + 4].split() == ["partition", "offset", "stop", "lag"]
    assert [line.split()[0] for line in lines[bar + 5 : bar + 7]] == ["0", "1"]
    above = "\n".join(lines[:bar])
    assert "partitions_assigned" in above  # the logs scroll above the view
    assert above.count("message_rejected") == 3 + 1  # at most three lines per reason
    # redrawn while no batch completes: the elapsed time moved on
    elapsed = re.compile(r"elapsed (\d+:\d\d:\d\d)")
    assert elapsed.findall(held) != elapsed.findall(later)
    # the bar follows what was read at a steady pace: by now it shows messages read and an ETA
    assert re.search(r"[1-9][\d,]*/700 msg", later)
    assert re.search(r"ETA \d:\d\d:\d\d  rejected 11", later)

    final = wait_for_screen(tmux, lambda s: "exit=" in s)
    assert "exit=0" in final
    assert "run completed (exit 0)" in final
    assert "msg/s" in final  # in the summary's title line ...
    assert "ETA" not in final  # ... while the live view is gone
    assert "run_finished" not in final  # the table says it once
    assert "7 more rejections were counted, not logged one by one" in final
    header = next(line for line in final.splitlines() if line.split()[:2] == ["partition", "start"])
    assert header.split() == ["partition", "start", "stop", "reached", "read", "left"]
    assert re.search(r"^\s*inserted\s+689$", final, re.MULTILINE)
    assert re.search(r"^\s*invalid_json\s+10$", final, re.MULTILINE)
    assert re.search(r"^\s*wrong_type\s+1$", final, re.MULTILINE)
