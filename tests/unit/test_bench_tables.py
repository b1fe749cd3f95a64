"""bench/tables.py: the job's own CPU is reported per MB, per message and against the server's."""

from __future__ import annotations

import sys
from typing import Any

from tests.helpers.services import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import measure
import tables


def _rep(job_cpu: float, job_pg: float, copy_pg: float) -> dict[str, Any]:
    def op(cpu: float, pg: float | None) -> dict[str, Any]:
        m = measure.Measured(1.0, 1000, 10_000_000, cpu, pg, 100.0, user_s=cpu * 0.75)
        m.sys_s = cpu * 0.25
        return m.as_dict()

    return {
        "job": op(job_cpu, job_pg),
        "verify": op(1.0, 1.0),
        "copy": op(0.1, copy_pg),
        "binary": op(0.1, copy_pg),
        "kafka": op(0.1, None),
    }


def test_job_cpu_is_a_median_of_per_repetition_ratios_to_the_server_cpu() -> None:
    summary = tables.summarize([_rep(1.0, 2.0, 4.0), _rep(3.0, 2.0, 2.0), _rep(2.0, 2.0, 1.0)])
    assert summary["job_cpu_over_pg_cpu"] == 1.0  # median of 0.5, 1.5, 1.0
    assert summary["job_cpu_over_copy_pg_cpu"] == 1.5  # median of 0.25, 1.5, 2.0
    assert summary["job"]["cpu_ms_per_mb"] == 200.0  # 2 s over 10 MB
    assert summary["job"]["cpu_us_per_item"] == 2000.0  # 2 s over 1,000 messages
    text = tables.size_table("10k", _corpus(), summary, 3)
    assert "job CPU: user 1.50 s + system 0.50 s, 200.0 ms/MB, 2,000.0 us/msg" in text
    assert "job CPU / server CPU: 1.00x (during the run), 1.50x (of a psql COPY" in text
    assert summary["read_cpu_over_pg_cpu"] == 0.05  # 0.1 s of a plain read over 2 s
    assert "reading alone (the Kafka read ceiling's CPU) / server CPU during the run: 0.05x" in text


def _corpus() -> dict[str, Any]:
    return {
        "messages": 1000,
        "valid": 990,
        "invalid": 10,
        "value_bytes": 10_000_000,
        "partitions": 6,
    }
