"""A log event is one call: a fixed name, its fields, and the run's id once the run is recorded."""

from __future__ import annotations

import io
import logging
import threading
from contextvars import copy_context

import orjson

from etl.cli.logs import JsonFormatter
from etl.core import events


def captured() -> tuple[io.StringIO, logging.Logger]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("etl.test_events")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return out, logger


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_an_event_is_its_name_and_fields_and_below_the_level_nothing() -> None:
    out, _ = captured()
    log = events.logger("etl.test_events")
    log.warning("message_rejected", partition=3, offset=17, reason="invalid_json")
    log.debug("not_shown", x=1)
    [doc] = lines(out)
    assert (doc["event"], doc["partition"], doc["offset"], doc["reason"]) == (
        "message_rejected",
        3,
        17,
        "invalid_json",
    )
    assert "run_id" not in doc


def test_once_recorded_every_line_carries_the_run_id_also_from_a_context_copy() -> None:
    out, _ = captured()
    log = events.logger("etl.test_events")

    def in_run() -> None:
        events.RUN_ID.set(42)
        log.info("partitions_assigned")
        worker = threading.Thread(target=copy_context().run, args=(log.info, "batch_written"))
        worker.start()
        worker.join()

    copy_context().run(in_run)
    log.info("after_the_run")
    assert [(d["event"], d.get("run_id")) for d in lines(out)] == [
        ("partitions_assigned", 42),
        ("batch_written", 42),
        ("after_the_run", None),
    ]
