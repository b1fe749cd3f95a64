"""Test harness: the real ``etl`` command, held just before its second offset commit.

Before that commit (its batch is already stored) it creates ``$HOLD_BEFORE_COMMIT_DIR/ready`` and
waits, at most 120 s, for ``$HOLD_BEFORE_COMMIT_DIR/go``; then the commit goes ahead. The test does
something to the broker in between. Only the harness patches the source.
"""

import os
import time
from collections.abc import Mapping
from pathlib import Path

from etl.cli.app import main
from etl.kafka import source

_hold = Path(os.environ["HOLD_BEFORE_COMMIT_DIR"])
_commit = source.KafkaSource.commit
_calls = [0]


def _held(self: source.KafkaSource, next_offsets: Mapping[int, int]) -> dict[int, int]:
    if next_offsets:
        _calls[0] += 1
        if _calls[0] == 2:
            (_hold / "ready").touch()
            deadline = time.monotonic() + 120
            while not (_hold / "go").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    return _commit(self, next_offsets)


source.KafkaSource.commit = _held  # type: ignore[method-assign]
main()
