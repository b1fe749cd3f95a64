"""Deadlines for librdkafka's blocking calls, and a stop request honoured while waiting.

Some librdkafka calls have no timeout of their own (a synchronous offset commit, ``close``)
and block for good while the group coordinator is unreachable; the others take a timeout but
block the main thread, where Python runs signal handlers only between two calls. `Waiter.call`
therefore runs each such call on a daemon thread and waits for it on the calling thread in short
steps, so that:

- a call that has not returned after its deadline raises `KafkaUnavailable` (exit 3) and is
  left behind: a daemon thread never keeps the process alive, and its outcome no longer matters
  (a commit that lands late only confirms rows the database already holds);
- after a stop request (SIGTERM/SIGINT) every wait, this one and all later ones, ends at most
  `STOP_GRACE_SECONDS` after the request was first seen, raising `Interrupted` (exit 6). Until
  then calls still complete, so the normal stop (finish the batch, commit it) keeps working;
- once the run is failing on Kafka (`Waiter.failed`: a commit without an answer, nothing moving
  for ``kafka.timeout_seconds``), every later wait (the end offsets for the lag, ``close``) ends
  at most `FAILURE_GRACE_SECONDS` after the failure, raising `KafkaUnavailable`: they share one
  bounded budget instead of each waiting its own full timeout on a broker that is gone.

librdkafka's calls are thread-safe; the consumer is only ever polled on the main thread.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from etl.core.errors import Interrupted, KafkaUnavailable

T = TypeVar("T")

STOP_GRACE_SECONDS = 5.0  # a stop request ends every Kafka wait within this many seconds
FAILURE_GRACE_SECONDS = 5.0  # after a Kafka failure, every later Kafka wait ends within this
_STEP_SECONDS = 0.1  # how often a wait looks at the stop request


class Waiter:
    """Runs blocking calls under a deadline and the stop request."""

    def __init__(
        self,
        stop_requested: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stop_requested = stop_requested
        self._clock = clock
        self._stop_deadline: float | None = None
        self._failure_deadline: float | None = None

    def clock(self) -> float:
        return self._clock()

    def stop_deadline(self) -> float | None:
        """When every wait must have ended (None until a stop request was seen)."""
        if self._stop_deadline is None and self._stop_requested():
            self._stop_deadline = self._clock() + STOP_GRACE_SECONDS
        return self._stop_deadline

    def failed(self) -> None:
        """The run is ending on a Kafka failure: from now on every wait ends within
        `FAILURE_GRACE_SECONDS` of the first call: the waits that follow share that one grace."""
        if self._failure_deadline is None:
            self._failure_deadline = self._clock() + FAILURE_GRACE_SECONDS

    def remaining(self, seconds: float) -> float:
        """``seconds``, shortened to what is left of the stop grace after a stop request."""
        stop_at = self.stop_deadline()
        if stop_at is None:
            return seconds
        return max(0.0, min(seconds, stop_at - self._clock()))

    def call(self, what: str, fn: Callable[[], T], seconds: float) -> T:
        """``fn()``'s result or exception; `KafkaUnavailable` after ``seconds``; `Interrupted`
        once a stop request's grace is over. ``what`` names the call in the message.

        After `failed`, ``seconds`` is cut to what is left of the failure's grace; with nothing
        left the call is not even started.
        """
        deadline = self._clock() + seconds
        if self._failure_deadline is not None and self._failure_deadline < deadline:
            deadline = self._failure_deadline
            seconds = max(0.0, deadline - self._clock())
            if seconds <= 0:
                raise KafkaUnavailable(f"Kafka failed; no time left to wait for it ({what})")
        future: Future[T] = Future()

        def target() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the waiting thread, re-raised there
                future.set_exception(exc)

        threading.Thread(
            target=contextvars.copy_context().run,
            args=(target,),
            name=f"etl-kafka-{what}",
            daemon=True,
        ).start()
        while True:
            try:
                return future.result(timeout=_STEP_SECONDS)
            except FutureTimeout:
                pass
            now = self._clock()
            stop_at = self.stop_deadline()
            if stop_at is not None and now >= stop_at:
                raise Interrupted(f"stopped by signal while waiting for Kafka ({what})")
            if now >= deadline:
                raise KafkaUnavailable(f"Kafka did not answer within {seconds:.0f}s ({what})")
