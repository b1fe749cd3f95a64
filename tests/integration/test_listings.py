"""`etl runs` and `etl plan` as an operator reads them: filters, columns sized by the data."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from tests.helpers.runs import etl_command, good, run_etl, summary

Env = Callable[..., dict[str, str]]
T0 = 1_780_000_000_000  # ms: 2026-05-28T20:26:40Z


@pytest.fixture
def topic6(make_topic: Callable[[int], str], produce: Callable[..., None]) -> str:
    """2 partitions, 3 valid messages each, message i stamped T0 + i seconds."""
    topic = make_topic(2)
    for i in range(3):
        produce(topic, [(0, good(i)), (1, good(100 + i))], timestamp_ms=T0 + i * 1000)
    return topic


def listed(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    result = etl_command(env, "runs", "--output", "json", *args)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_runs_filter_by_status_topic_group_and_start(etl_env: Env, topic6: str) -> None:
    env = etl_env(topic6)
    first = summary(run_etl(env, "--until-offset", "1"))["run_id"]
    second = summary(run_etl(env, "--group", "etl-test-other-group"))["run_id"]
    assert [r["id"] for r in listed(env)] == [second, first]
    assert [r["id"] for r in listed(env, "--group", "etl-test-other-group")] == [second]
    assert [r["id"] for r in listed(env, "--status", "completed", "--topic", topic6)] == [
        second,
        first,
    ]
    assert listed(env, "--status", "failed") == []
    assert listed(env, "--topic", "another-topic") == []
    assert [r["id"] for r in listed(env, "--since", "1 hour")] == [second, first]
    assert listed(env, "--since", "2999-01-01T00:00:00Z") == []
    doc = listed(env, "--limit", "1")[0]
    assert (doc["topic"], doc["status"], doc["exit_code"], doc["error"]) == (
        topic6,
        "completed",
        0,
        None,
    )
    assert doc["ended_at"] is not None
    assert isinstance(doc["duration_seconds"], float)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "done"], "--status: expected one of running, completed, failed"),
        (["--since", "yesterday"], "--since: expected an ISO 8601 time with a zone or an age"),
    ],
)
def test_runs_filters_are_checked(etl_env: Env, args: list[str], message: str) -> None:
    result = etl_command(etl_env("any"), "runs", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"etl: error: {message}")


def test_the_runs_table_has_topic_end_duration_and_error_columns(etl_env: Env, topic6: str) -> None:
    env = etl_env(topic6)
    assert run_etl(env).returncode == 0
    result = etl_command(env, "runs")
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "id",
        "started_at",
        "ended_at",
        "duration",
        "status",
        "exit",
        "topic",
        "group",
        "consumed",
        "inserted",
        "duplicates",
        "rejected",
        "ranges",
        "rewound",
        "error",
    ]
    assert header.index("topic") == row.index(topic6)  # the column is as wide as the topic
    assert header.index("ranges") == row.index("0:[0,3)")
    assert row.split()[-1] == "-"  # no error


def test_plan_columns_follow_the_data_and_an_empty_time_window_is_no_error(
    etl_env: Env, topic6: str
) -> None:
    env = etl_env(topic6)
    table = etl_command(env, "plan")
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split() == [
        "partition",
        "start",
        "stop",
        "messages",
        "committed",
        "database",
        "drift",
        "lag",
        "note",
    ]
    assert [line.split()[0] for line in lines] == ["0", "1", "total"]
    for name in ("start", "stop", "messages", "lag"):  # numbers right-aligned under the name
        end = header.index(name) + len(name)
        for line in lines[:2]:
            assert line[end - 1].isdigit() and line[end : end + 1] in ("", " "), (name, line)
    window = ["--from-timestamp", "2030-01-01T00:00:00Z", "--until-timestamp", "2030-01-02T00:00Z"]
    empty = etl_command(env, "plan", *window, "--output", "json")
    assert empty.returncode == 0, empty.stderr
    notes = [orjson.loads(line).get("note") for line in empty.stdout.splitlines()][:2]
    assert notes == ["no message in the time window on this partition"] * 2
    run = run_etl(env, *window)
    assert run.returncode == 0, run.stderr
    assert summary(run)["consumed"] == 0
    assert "no message in the time window on this partition" in run.stderr
