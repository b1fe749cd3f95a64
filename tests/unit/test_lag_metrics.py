"""What a run pushes of the lag and of the per-partition series: this run's samples for every
partition, on failure too; NaN and ``etl_partition_lag_known 0`` when the lag is unknown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from etl.core.config import PushgatewayConfig
from etl.core.counts import RunCounts
from etl.core.errors import PostgresUnavailable
from etl.core.ports import PartitionProgress, WriteResult
from etl.metrics import RunMetrics, registry_for
from etl.pipeline import Run, RunSettings
from tests.unit.test_run import NOW, FakeSink, FakeSource, Pushes, msgs, run_with, value


def series(registry: CollectorRegistry) -> dict[str, float]:
    """A registry's samples as 'name{partition="p"}' -> value."""
    out = {}
    for family in registry.collect():
        for s in family.samples:
            label = f'{{partition="{s.labels["partition"]}"}}' if "partition" in s.labels else ""
            out[s.name + label] = s.value
    return out


def pushed_samples(pushes: Pushes) -> dict[str, float]:
    (call,) = pushes.calls
    return series(call["registry"])


class TopicSource(FakeSource):
    """Partition 0 is read; the topic has partitions 0-2, each with a lag (None: unknown)."""

    def __init__(self, events: list[str], lag: Mapping[int, int | None]) -> None:
        super().__init__(events, msgs(value(1)), stop=1)
        self.topic_lag = dict(lag)
        self.asked: list[dict[int, int]] = []

    def progress(self) -> Sequence[PartitionProgress]:
        return [self.part] if self.started else []  # nothing held before start

    def lag(self, reached: Mapping[int, int]) -> dict[int, int | None]:  # type: ignore[override]
        self.asked.append(dict(reached))
        return dict(self.topic_lag)


class SchemaDown(FakeSink):
    def check_schema(self) -> None:
        raise PostgresUnavailable("PostgreSQL unavailable: connection refused")


def test_a_measured_lag_is_known_and_covers_every_partition_of_the_topic() -> None:
    events: list[str] = []
    summary, _, pushes = run_with(TopicSource(events, {0: 0, 1: 5, 2: 7}), FakeSink(events))
    assert summary.exit_code == 0
    got = pushed_samples(pushes)
    assert got["etl_partition_lag_known"] == 1
    assert [got[f'etl_partition_lag{{partition="{p}"}}'] for p in range(3)] == [0, 5, 7]
    # nothing skipped or rewound is 0 for every partition, so an older run's samples go away
    for name in ("etl_offsets_skipped_retention", "etl_offsets_rewound"):
        assert [got[f'{name}{{partition="{p}"}}'] for p in range(3)] == [0, 0, 0]
    assert all(math.isnan(got[f'etl_offset_drift{{partition="{p}"}}']) for p in range(3))


def test_a_run_failing_before_the_source_started_still_measures_and_pushes_the_lag() -> None:
    events: list[str] = []
    source = TopicSource(events, {0: 40, 1: 10, 2: 0})
    summary, _, pushes = run_with(source, SchemaDown(events))
    assert summary.exit_code == PostgresUnavailable.exit_code
    assert not source.started and source.asked == [{}]
    got = pushed_samples(pushes)
    assert got["etl_partition_lag_known"] == 1
    assert got['etl_partition_lag{partition="0"}'] == 40
    assert got['etl_partition_lag{partition="1"}'] == 10
    assert got['etl_offsets_skipped_retention{partition="2"}'] == 0


@pytest.mark.parametrize(
    ("lag", "partitions"),
    [({0: None, 1: None, 2: None}, [0, 1, 2]), ({}, [])],
    ids=["partitions known", "partitions unknown"],
)
def test_an_unknown_lag_is_pushed_as_nan_with_lag_known_0(
    lag: Mapping[int, int | None], partitions: list[int]
) -> None:
    events: list[str] = []
    summary, _, pushes = run_with(TopicSource(events, lag), SchemaDown(events))
    assert summary.exit_code == PostgresUnavailable.exit_code
    got = pushed_samples(pushes)
    assert got["etl_partition_lag_known"] == 0
    lags = {k: v for k, v in got.items() if k.startswith("etl_partition_lag{")}
    assert sorted(lags) == [f'etl_partition_lag{{partition="{p}"}}' for p in partitions]
    assert all(math.isnan(v) for v in lags.values())


def test_a_crashed_run_does_not_ask_the_source_and_pushes_its_lag_as_unknown() -> None:
    events: list[str] = []
    source = TopicSource(events, {0: 3, 1: 0, 2: 0})

    class Buggy(FakeSink):
        def write(self, *args: Any) -> WriteResult:
            raise ZeroDivisionError

    pushes = Pushes()
    with pytest.raises(ZeroDivisionError):
        Run(
            RunSettings("t", 5, 1 << 20, timedelta(0)),
            source=source,
            sink=Buggy(events),
            publisher=RunMetrics(PushgatewayConfig(url="http://pgw:9091"), pusher=pushes),
            stop_requested=lambda: False,
            now=lambda: NOW,
        ).execute()
    assert source.asked == []
    got = pushed_samples(pushes)
    assert got["etl_partition_lag_known"] == 0
    assert math.isnan(got['etl_partition_lag{partition="0"}'])
    assert got['etl_offsets_skipped_retention{partition="0"}'] == 0


def test_cover_keeps_what_was_counted_and_fills_the_rest() -> None:
    counts = RunCounts()
    counts.set_lag({0: 4, 1: 2})
    counts.set_skipped(0, 9)
    counts.note_position(1, -3, 3)
    counts.cover([0, 1, 2])
    got = series(registry_for(counts))
    assert got["etl_partition_lag_known"] == 1
    assert math.isnan(got['etl_partition_lag{partition="2"}'])
    assert [got[f'etl_offsets_skipped_retention{{partition="{p}"}}'] for p in range(3)] == [9, 0, 0]
    assert [got[f'etl_offsets_rewound{{partition="{p}"}}'] for p in range(3)] == [0, 3, 0]
    assert got['etl_offset_drift{partition="1"}'] == -3
    assert math.isnan(got['etl_offset_drift{partition="0"}'])


@pytest.mark.parametrize(
    ("lag", "known"),
    [({0: 0}, 1), ({0: 1, 1: None}, 0), ({}, 0)],
)
def test_the_lag_is_known_only_when_every_partition_was_measured(
    lag: Mapping[int, int | None], known: int
) -> None:
    counts = RunCounts()
    assert counts.get("etl_partition_lag_known") == 0  # never measured: unknown
    counts.set_lag(lag)
    assert counts.get("etl_partition_lag_known") == known


def test_nan_reaches_the_pushgateway_text_format() -> None:
    counts = RunCounts()
    counts.set_lag({0: None})
    text = generate_latest(registry_for(counts)).decode()
    assert 'etl_partition_lag{partition="0"} NaN\n' in text
    assert "etl_partition_lag_known 0.0\n" in text
