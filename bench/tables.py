"""Reporting: medians over repetitions, side-by-side ratios, the printed tables."""

from __future__ import annotations

import statistics
from typing import Any

MB = 1e6
_HEAD = f"{'':24}{'wall s':>9}{'items/s':>10}{'MB/s':>8}{'CPU s':>8}{'PG CPU s':>10}{'RSS MB':>8}"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every figure of every measured operation, plus per-repetition ratios.

    A ratio is taken inside one repetition (job and ceiling measured back to back) and only
    then reduced to its median, which cancels most of the machine's background noise."""
    out: dict[str, Any] = {}
    for op in ("job", "verify", "copy", "binary", "kafka"):
        if op not in reps[0]:
            continue
        keys = reps[0][op].keys()
        out[op] = {
            k: median([r[op][k] for r in reps])
            for k in keys
            if all(isinstance(r[op][k], int | float | None) for r in reps)
        }
    out["verify_over_job"] = median(
        [r["verify"]["wall_s"] / r["job"]["wall_s"] for r in reps if "verify" in r]
    )
    out["job_over_copy"] = median([r["job"]["wall_s"] / r["copy"]["wall_s"] for r in reps])
    out["job_over_kafka"] = median([r["job"]["wall_s"] / r["kafka"]["wall_s"] for r in reps])
    out["job_pg_cpu_over_copy"] = median(
        [
            r["job"]["pg_cpu_s"] / r["copy"]["pg_cpu_s"]
            for r in reps
            if r["job"]["pg_cpu_s"] and r["copy"]["pg_cpu_s"]
        ]
    )
    # The job's own CPU against the server's for the same rows: the server's during the run,
    # and the server's for a psql COPY of exactly those rows (target <= 0.5 at 10 and 100 KB).
    out["job_cpu_over_pg_cpu"] = median(
        [r["job"]["cpu_s"] / r["job"]["pg_cpu_s"] for r in reps if r["job"]["pg_cpu_s"]]
    )
    out["job_cpu_over_copy_pg_cpu"] = median(
        [r["job"]["cpu_s"] / r["copy"]["pg_cpu_s"] for r in reps if r["copy"]["pg_cpu_s"]]
    )
    # A floor under the first ratio: a plain consumer's CPU for reading the same values (its
    # own start-up included) against the same server CPU. No loader of these messages written
    # with this Kafka client in Python gets below it.
    out["read_cpu_over_pg_cpu"] = median(
        [r["kafka"]["cpu_s"] / r["job"]["pg_cpu_s"] for r in reps if r["job"]["pg_cpu_s"]]
    )
    out["binary_pg_cpu_over_text"] = median(
        [
            r["binary"]["pg_cpu_s"] / r["copy"]["pg_cpu_s"]
            for r in reps
            if r["binary"]["pg_cpu_s"] and r["copy"]["pg_cpu_s"]
        ]
    )
    out["binary_over_text_wall"] = median(
        [r["binary"]["wall_s"] / r["copy"]["wall_s"] for r in reps]
    )
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _line(name: str, m: dict[str, Any]) -> str:
    return (
        f"{name:24}{_fmt(m['wall_s']):>9}{_fmt(m['items_per_s'], 0):>10}"
        f"{_fmt(m['mb_per_s'], 1):>8}{_fmt(m['cpu_s']):>8}{_fmt(m['pg_cpu_s']):>10}"
        f"{_fmt(m['peak_rss_mb'], 0):>8}"
    )


def size_table(size: str, corpus: dict[str, Any], summary: dict[str, Any], repeat: int) -> str:
    ratio_copy = summary["job_over_copy"]
    lines = [
        f"== {size}: {corpus['messages']:,} messages ({corpus['valid']:,} valid,"
        f" {corpus['invalid']:,} invalid), {corpus['value_bytes'] / MB:,.1f} MB of values,"
        f" {corpus['partitions']} partitions; medians of {repeat} ==",
        _HEAD,
        _line("etl run", summary["job"]),
        *([_line("etl verify", summary["verify"])] if "verify" in summary else []),
        _line("COPY ceiling (psql)", summary["copy"]),
        _line("binary COPY (psql)", summary["binary"]),
        _line("Kafka read ceiling", summary["kafka"]),
        f"job / COPY ceiling wall: {ratio_copy:.2f}x -> job at {100 / ratio_copy:.0f}% of the"
        f" ceiling",
        f"verify / job wall: {_fmt(summary['verify_over_job'])}x (target <= 1x at 1 KB)",
        f"binary / text COPY: PostgreSQL CPU {_fmt(summary['binary_pg_cpu_over_text'])}x,"
        f" wall {_fmt(summary['binary_over_text_wall'])}x",
        f"job / Kafka read wall:   {summary['job_over_kafka']:.2f}x;"
        f" job / COPY PostgreSQL CPU: {_fmt(summary['job_pg_cpu_over_copy'])}x",
        _cpu_line(summary),
        "(items/s: messages for the job and Kafka, rows for COPY; MB/s: Kafka values, for COPY"
        " the COPY file)",
    ]
    return "\n".join(lines)


def _cpu_line(summary: dict[str, Any]) -> str:
    """The job's own cost: its CPU (user + system) per MB of values and per message, and
    against the server's CPU for the same rows (during the run; for a psql COPY of them)."""
    job = summary["job"]
    return (
        f"job CPU: user {_fmt(job.get('user_s'))} s + system {_fmt(job.get('sys_s'))} s,"
        f" {_fmt(job.get('cpu_ms_per_mb'), 1)} ms/MB, {_fmt(job.get('cpu_us_per_item'), 1)}"
        f" us/msg\njob CPU / server CPU: {_fmt(summary.get('job_cpu_over_pg_cpu'))}x"
        f" (during the run), {_fmt(summary.get('job_cpu_over_copy_pg_cpu'))}x (of a psql COPY"
        " of the same rows; target <= 0.5x at 10 and 100 KB)\nreading alone (the Kafka read"
        f" ceiling's CPU) / server CPU during the run: {_fmt(summary.get('read_cpu_over_pg_cpu'))}x"
    )


def empty_table(runs: list[dict[str, Any]]) -> str:
    wall = median([r["wall_s"] for r in runs])
    rss = median([r["peak_rss_mb"] for r in runs])
    return (
        f"== empty topic: etl run, medians of {len(runs)} ==\n"
        f"wall {_fmt(wall)} s (target < 5 s), CPU {_fmt(median([r['cpu_s'] for r in runs]))} s,"
        f" peak RSS {_fmt(rss, 0)} MB,"
        f" exit codes {[r['exit_code'] for r in runs]}"
    )


def scale_table(scale: dict[str, Any], rss_limit_mb: float) -> str:
    runs = scale["runs"]
    lines = [
        f"== scale: 1 KB messages; prefilled table holds {scale['prefill_rows']:,} rows"
        f" (prefill took {scale['prefill_s']:.0f} s) ==",
        f"{'':34}{'messages':>10}{'wall s':>9}{'us/msg':>9}{'CPU s':>8}{'PG CPU s':>10}"
        f"{'RSS MB':>8}",
    ]
    for name, m in runs.items():
        lines.append(
            f"{name:34}{m['items']:>10,}{_fmt(m['wall_s']):>9}{_fmt(m['us_per_msg'], 1):>9}"
            f"{_fmt(m['cpu_s']):>8}{_fmt(m['pg_cpu_s']):>10}{_fmt(m['peak_rss_mb'], 0):>8}"
        )
    lines += [
        f"time per message, prefilled / empty: {scale['prefilled_over_empty']:.2f}x"
        " (target <= 1.5x)",
        f"peak RSS, large / small run: {scale['rss_large_over_small']:.2f}x (target: flat);"
        f" max {scale['rss_max_mb']:.0f} MB vs limit {rss_limit_mb:.0f} MB"
        " (2 x batch.max_bytes + 150 MB)",
    ]
    return "\n".join(lines)
