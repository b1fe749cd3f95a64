"""The run loop with in-memory fakes of our own ports: commit order, stop conditions, outcomes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from itertools import count
from typing import Any

import orjson
import pytest

from etl.core.config import PushgatewayConfig
from etl.core.counts import RunCounts
from etl.core.errors import Interrupted, KafkaUnavailable, PostgresUnavailable
from etl.core.ports import (
    Batch,
    Message,
    PartitionProgress,
    RowBatch,
    RunOutcome,
    StoredRejection,
    WriteResult,
)
from etl.metrics import RunMetrics
from etl.pipeline import Run, RunSettings
from tests.helpers.copy_rows import CopyRow, parse

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def execute(settings: RunSettings, **collaborators: Any) -> Any:
    return Run(settings, **collaborators).execute()


def value(org: int) -> bytes:
    return orjson.dumps(
        {
            "OrgID": org,
            "AccountNumber": 1,
            "ClusterName": "5d5892d3-1f74-4ccf-91af-548dfc9767aa",
            "Report": {"fingerprints": [], "reports": [], "system": {}},
            "LastChecked": f"2026-05-04T09:30:{org % 60:02d}Z",
        }
    )


class FakeSource:
    """Hands out pre-arranged messages of one partition in batches; records commits in `events`."""

    def __init__(self, events: list[str], messages: list[Message], stop: int) -> None:
        self.events = events
        self.pending = list(messages)
        self.part = PartitionProgress(0, 0, stop, 0)
        self.started = self.closed = False
        self.committed: dict[int, int] = {}

    def start(self, before_revoke: Callable[[], None] = lambda: None) -> None:
        self.started = True

    def finished(self) -> bool:
        return self.started and self.part.done

    def exhausted(self) -> bool:
        return self.finished()

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        out = self.pending[:max_messages]
        del self.pending[:max_messages]
        start = self.part.next
        self.part.next = out[-1].offset + 1 if out else self.part.stop
        self.events.append(f"read {len(out)}")
        size = sum(len(m.value or b"") for m in out)
        return Batch(out, {0: self.part.next}, size, {0: start})

    def commit(self, next_offsets: Mapping[int, int]) -> Mapping[int, int]:
        self.events.append(f"commit {dict(next_offsets)}")
        self.committed.update(next_offsets)
        return next_offsets

    def settle(self) -> Mapping[int, int]:
        return {}

    def progress(self) -> Sequence[PartitionProgress]:
        return [self.part]

    def lag(self, reached: Mapping[int, int]) -> dict[int, int]:
        return {0: self.part.stop - reached.get(0, self.part.start)}

    def close(self) -> None:
        self.closed = True


class FakeSink:
    def __init__(self, events: list[str], fail_on_call: int | None = None) -> None:
        self.events = events
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.rows: list[CopyRow] = []
        self.rejections: list[StoredRejection] = []
        self.ranges: list[dict[int, tuple[int, int]]] = []
        self.closed = False

    def check_schema(self) -> None:
        self.events.append("schema ok")

    def begin_run(self, topic: str, group_id: str, options: Mapping[str, Any]) -> int | None:
        return 7

    def end_run(self, outcome: RunOutcome) -> None:
        self.ended = outcome

    def write(
        self,
        topic: str,
        rows: RowBatch,
        rejections: Sequence[StoredRejection],
        ranges: Mapping[int, tuple[int, int]],
    ) -> WriteResult:
        self.calls += 1
        self.ranges.append(dict(ranges))
        if self.calls == self.fail_on_call:
            raise PostgresUnavailable("PostgreSQL unavailable: connection refused")
        self.events.append(f"write {rows.count}+{len(rejections)}")
        for chunk in rows.chunks:
            self.rows.extend(parse(bytes(memoryview(chunk))))
        self.rejections.extend(rejections)
        return WriteResult(rows.count, 0)

    def cancel(self) -> None:
        self.events.append("cancel")

    def close(self) -> None:
        self.closed = True


class Pushes:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, **kwargs: Any) -> None:
        self.calls.append({"url": url, **kwargs})


def run_with(
    source: FakeSource,
    sink: FakeSink,
    stop: Callable[[], bool] = lambda: False,
    max_messages: int = 2,
) -> tuple[Any, RunCounts, Pushes]:
    pushes = Pushes()
    publisher = RunMetrics(PushgatewayConfig(url="http://pgw:9091", job="etl"), pusher=pushes)
    counts = RunCounts()
    settings = RunSettings("topic", max_messages, 1 << 20, timedelta(minutes=5))
    summary = execute(
        settings,
        source=source,
        sink=sink,
        publisher=publisher,
        counts=counts,
        stop_requested=stop,
        now=lambda: NOW,
    )
    return summary, counts, pushes


def msgs(*values: bytes) -> list[Message]:
    return [Message(0, i, 1_700_000_000_000, v) for i, v in enumerate(values)]


def test_each_batch_is_written_before_its_offsets_are_committed() -> None:
    events: list[str] = []
    source = FakeSource(events, msgs(value(1), value(2), value(3)), stop=3)
    summary, _, _ = run_with(source, FakeSink(events))
    assert summary.exit_code == 0
    pos = events.index
    # written before committed, committed before the next batch is handed to the writer
    assert pos("write 2+0") < pos("commit {0: 2}") < pos("write 1+0") < pos("commit {0: 3}")
    assert [e for e in events if e.startswith("commit")] == ["commit {0: 2}", "commit {0: 3}"]
    assert pos("read 1") < pos("commit {0: 2}")  # reading overlaps the previous write


def test_bad_messages_are_stored_as_rejections_beside_the_good_rows() -> None:
    events: list[str] = []
    sink = FakeSink(events)
    source = FakeSource(events, msgs(value(1), b"nope", value(3)), stop=3)
    summary, metrics, _ = run_with(source, sink, max_messages=10)
    assert summary.exit_code == 0
    assert [(r.org_id, r.kafka_offset) for r in sink.rows] == [(1, 0), (3, 2)]
    assert [(r.rejection.reason, r.message.offset) for r in sink.rejections] == [
        ("invalid_json", 1)
    ]
    assert metrics.rejected()["invalid_json"] == 1
    assert metrics.get("etl_rows_inserted") == 2


def test_a_database_failure_commits_no_offset_of_that_batch_and_exits_4() -> None:
    events: list[str] = []
    source = FakeSource(events, msgs(value(1), value(2), value(3)), stop=3)
    summary, metrics, pushes = run_with(source, FakeSink(events, fail_on_call=2))
    assert summary.exit_code == PostgresUnavailable.exit_code
    assert source.committed == {0: 2}
    assert events[-1] == "commit {0: 2}"
    # reached is what was stored and committed, though offset 2 had been read
    assert [(p.start, p.next) for p in summary.partitions] == [(0, 2)]
    assert source.closed
    assert len(pushes.calls) == 1  # failed runs push too
    assert metrics.get("etl_run_exit_code") == 4
    pushed = {m.name for m in pushes.calls[0]["registry"].collect()}
    assert "etl_last_success_timestamp_seconds" not in pushed


def test_a_successful_run_pushes_its_success_time() -> None:
    events: list[str] = []
    _, _, pushes = run_with(FakeSource(events, msgs(value(1)), stop=1), FakeSink(events))
    assert pushes.calls[0]["job"] == "etl"
    names = {m.name for m in pushes.calls[0]["registry"].collect()}
    assert "etl_last_success_timestamp_seconds" in names


def test_an_empty_partition_finishes_without_writing() -> None:
    events: list[str] = []
    summary, _, _ = run_with(FakeSource(events, [], stop=0), FakeSink(events))
    assert summary.exit_code == 0
    assert events == ["schema ok"]


def test_a_stop_request_finishes_the_current_batch_then_exits_6() -> None:
    events: list[str] = []
    source = FakeSource(events, msgs(value(1), value(2), value(3), value(4)), stop=4)

    def stop() -> bool:
        return "write 2+0" in events

    summary, _, _ = run_with(source, FakeSink(events), stop=stop)
    assert summary.exit_code == 6
    assert summary.status == "interrupted"
    assert source.committed == {0: 2}
    assert events[-1] == "commit {0: 2}"
    # reached is what was stored and committed, though offset 2 had been read
    assert [(p.start, p.next) for p in summary.partitions] == [(0, 2)]


def test_a_kafka_failure_is_reported_with_its_exit_code() -> None:
    events: list[str] = []

    class Broken(FakeSource):
        def start(self, before_revoke: Callable[[], None] = lambda: None) -> None:
            raise KafkaUnavailable("cannot reach Kafka at x:1: refused")

    summary, _, _ = run_with(Broken(events, [], stop=0), FakeSink(events))
    assert summary.exit_code == 3
    assert summary.error == "cannot reach Kafka at x:1: refused"


def test_a_bug_still_pushes_metrics_and_propagates() -> None:
    events: list[str] = []

    class Buggy(FakeSink):
        def write(self, *args: Any) -> WriteResult:
            raise ZeroDivisionError

    pushes = Pushes()
    counts = RunCounts()
    with pytest.raises(ZeroDivisionError):
        execute(
            RunSettings("t", 5, 1 << 20, timedelta(0)),
            source=FakeSource(events, msgs(value(1)), stop=1),
            sink=Buggy(events),
            publisher=RunMetrics(PushgatewayConfig(url="http://pgw:9091"), pusher=pushes),
            counts=counts,
            stop_requested=lambda: False,
            now=lambda: NOW,
        )
    assert counts.get("etl_run_exit_code") == 1
    assert len(pushes.calls) == 1


@pytest.mark.parametrize("error", [OSError("connection refused"), HTTPException("bad status")])
def test_a_pushgateway_failure_does_not_change_the_exit_code(error: Exception) -> None:
    events: list[str] = []

    def down(url: str, **kwargs: Any) -> None:
        raise error

    publisher = RunMetrics(PushgatewayConfig(url="http://pgw:9091"), pusher=down)
    summary = execute(
        RunSettings("t", 5, 1 << 20, timedelta(0)),
        source=FakeSource(events, msgs(value(1)), stop=1),
        sink=FakeSink(events),
        publisher=publisher,
        stop_requested=lambda: False,
        now=lambda: NOW,
    )
    assert summary.exit_code == 0


def test_a_stop_during_a_stuck_write_cancels_it_in_the_database_and_commits_nothing() -> None:
    events: list[str] = []
    cancelled = threading.Event()

    class Stuck(FakeSink):
        def write(self, *args: Any) -> WriteResult:
            self.events.append("writing")
            assert cancelled.wait(30), "never cancelled"
            raise Interrupted("stopped by signal; the batch in hand was rolled back")

        def cancel(self) -> None:
            self.events.append("cancel")
            cancelled.set()

    ticks = count(0.0, 0.5)  # each look at the clock: half a second later
    summary = execute(
        RunSettings("topic", 10, 1 << 20, timedelta(minutes=5)),
        source=(source := FakeSource(events, msgs(value(1)), stop=1)),
        sink=Stuck(events),
        publisher=RunMetrics(PushgatewayConfig(), pusher=Pushes()),
        stop_requested=lambda: "writing" in events,
        now=lambda: NOW,
        clock=lambda: next(ticks),
    )
    assert summary.exit_code == 6
    assert events.count("cancel") == 1
    assert source.committed == {}  # the batch was not stored: its offsets stay uncommitted


class SlicedSource(FakeSource):
    """Hands out one message per call, and never more bytes than asked for after the first."""

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        return super().read_batch(min(1, max_messages), max_bytes, stop_requested)


def run_writers(source: FakeSource, sink: FakeSink, writers: int, max_bytes: int = 1 << 20) -> Any:
    publisher = RunMetrics(PushgatewayConfig(url="", job="etl"))
    settings = RunSettings("t", 2, max_bytes, timedelta(minutes=5), writers=writers)
    return execute(
        settings,
        source=source,
        sink=sink,
        publisher=publisher,
        stop_requested=lambda: False,
        now=lambda: NOW,
    )


def test_a_batch_is_read_in_several_slices_up_to_its_limits() -> None:
    events: list[str] = []
    sink = FakeSink(events)
    summary = run_writers(SlicedSource(events, msgs(*map(value, range(1, 6))), 5), sink, 1)
    assert summary.exit_code == 0
    assert [e for e in events if e.startswith("write")] == ["write 2+0", "write 2+0", "write 1+0"]
    assert "read 0" not in events  # an exhausted source is not asked again


def test_the_held_batches_share_max_bytes() -> None:
    events: list[str] = []
    size = len(value(1))
    # 3 writers + the batch being read share 4 values' worth: one message per batch
    summary = run_writers(
        SlicedSource(events, msgs(*map(value, range(1, 5))), 4), FakeSink(events), 3, 4 * size
    )
    assert summary.exit_code == 0
    assert [e for e in events if e.startswith("write")] == ["write 1+0"] * 4


class Overlapping(FakeSink):
    """The first write waits until the second one is stored: two batches in flight at once."""

    def __init__(self, events: list[str], fail_first: bool = False) -> None:
        super().__init__(events)
        self.fail_first = fail_first
        self.second_stored = threading.Event()
        self.lock = threading.Lock()

    def write(
        self,
        topic: str,
        rows: RowBatch,
        rejections: Sequence[StoredRejection],
        ranges: Mapping[int, tuple[int, int]],
    ) -> WriteResult:
        with self.lock:
            self.calls += 1
            call = self.calls
            self.ranges.append(dict(ranges))
        if call == 1:
            assert self.second_stored.wait(timeout=10), "the second batch was not written at once"
            if self.fail_first:
                raise PostgresUnavailable("PostgreSQL unavailable: connection reset")
        with self.lock:
            self.events.append(f"write {call}")
        if call == 2:
            self.second_stored.set()
        return WriteResult(rows.count, 0)


def test_batches_stored_at_once_are_committed_in_batch_order() -> None:
    events: list[str] = []
    source = FakeSource(events, msgs(*map(value, range(1, 7))), 6)
    summary = run_writers(source, Overlapping(events), writers=2)
    assert summary.exit_code == 0
    writes_and_commits = [e for e in events if e.startswith(("write", "commit"))]
    # batch 2 was stored first, but its offsets wait until batch 1 is stored
    assert writes_and_commits[:4] == ["write 2", "write 1", "commit {0: 2}", "commit {0: 4}"]
    assert source.committed == {0: 6}


def test_a_failed_older_batch_commits_nothing_of_a_newer_one_already_stored() -> None:
    events: list[str] = []
    source = FakeSource(events, msgs(*map(value, range(1, 7))), 6)
    summary = run_writers(source, Overlapping(events, fail_first=True), writers=2)
    assert summary.exit_code == PostgresUnavailable.exit_code
    assert "write 2" in events
    assert source.committed == {}
    assert [(p.start, p.next) for p in summary.partitions] == [(0, 0)]


def test_each_write_records_the_offset_range_its_batch_covers_in_the_same_transaction() -> None:
    events: list[str] = []
    sink = FakeSink(events)
    # offsets 0..1 hold messages, 2..4 only transaction markers: the last write has no row
    source = FakeSource(events, msgs(value(1), value(2)), stop=5)
    summary, _, _ = run_with(source, sink)
    assert summary.exit_code == 0
    assert sink.ranges == [{0: (0, 2)}, {0: (2, 5)}]
    assert "write 0+0" in events  # the markers' range is stored too, or the chain would break
