"""Test harness: the real ``etl`` command whose first batch is never stored while the second is.

The first batch's write waits before its transaction begins; once the second batch's write has
committed, the harness writes that batch's range ("START STOP" of partition 0) to
``$HOLD_DIR/ready`` and the test kills the process: two writers' commits, out of order, with
the older one never made. Only the harness patches the sink.
"""

import os
import threading
import time
from pathlib import Path
from typing import Any

from etl.cli.app import main
from etl.pg import sink

_hold = Path(os.environ["HOLD_DIR"])
_write = sink.PostgresSink.write
_calls = [0]
_lock = threading.Lock()


def _held(self: sink.PostgresSink, topic: str, rows: Any, rejections: Any, ranges: Any) -> Any:
    with _lock:
        _calls[0] += 1
        call = _calls[0]
    if call == 1:
        time.sleep(120)  # killed long before
    result = _write(self, topic, rows, rejections, ranges)
    if call == 2:
        start, stop = ranges[0]
        (_hold / "ready.tmp").write_text(f"{start} {stop}")
        (_hold / "ready.tmp").rename(_hold / "ready")
    return result


sink.PostgresSink.write = _held  # type: ignore[method-assign,assignment]
main()
