"""Test harness: the real ``etl`` command, SIGKILLed right after its first database commit.

Used by the integration tests to prove that dying between the database commit and the Kafka
offset commit loses nothing and duplicates nothing. Only the harness patches the source.
"""

import os
import signal

from etl.cli.app import main
from etl.kafka import source


def _die(self: object, next_offsets: object) -> dict[int, int]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


source.KafkaSource.commit = _die  # type: ignore[method-assign]
main()
