"""Offset commits of a consumer-group member, each under a deadline, and what a refusal means.

A commit runs after its batch is durably stored, so whatever happens to it never loses a row:
- outside a rebalance callback it is synchronous, on `etl.kafka.waits`' deadline of
  ``kafka.timeout_seconds`` (librdkafka's own commit has none and blocks for good while the
  coordinator is unreachable): no answer is `KafkaUnavailable` (exit 3; the source adds the
  last error librdkafka reported meanwhile, `etl.kafka.reports`), a stop request ends
  the wait within the stop grace (exit 6); a commit that lands later only confirms stored rows;
- inside a rebalance callback (the batch in flight, committed before the partitions are given
  up) librdkafka answers no other thread and a wait could block for good, so it is sent
  asynchronously: librdkafka sends it before it leaves the assignment, and the group's committed
  offsets, read later, say whether it landed;
- a group member's commit refused by a rebalance is logged: the rows are stored and the new
  owner re-reads them as duplicates. Any other refusal is `KafkaUnavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from etl.core import events
from etl.core.errors import KafkaUnavailable
from etl.kafka.offsets import describe
from etl.kafka.waits import Waiter

log = events.logger(__name__)

# Commit refusals caused by a rebalance: the rows are stored, the new owner re-reads them.
_REBALANCE_CODES = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)


def commit_offsets(
    consumer: Consumer,
    topic: str,
    offsets: Mapping[int, int],
    *,
    waits: Waiter,
    seconds: float,
    group_member: bool,
    group_id: str,
    in_callback: bool,
) -> bool:
    """Commit ``offsets`` (partition -> next offset); True when the broker confirmed them."""
    tps = [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())]
    if in_callback:
        try:
            consumer.commit(offsets=tps, asynchronous=True)
        except KafkaException as exc:
            log.warning(
                "commit_before_rebalance_failed",
                error=describe(exc),
                effect="the new owner re-reads these rows",
            )
        return False
    try:
        waits.call(
            "offset commit", lambda: consumer.commit(offsets=tps, asynchronous=False), seconds
        )
    except KafkaException as exc:
        # Only a group member's commit can be refused by a rebalance; an explicitly
        # assigned run committing into a group with live members must not pass silently.
        if group_member and exc.args and exc.args[0].code() in _REBALANCE_CODES:
            log.warning(
                "commit_refused_by_rebalance",
                error=describe(exc),
                effect="the new owner re-reads these stored rows",
            )
            return False
        if exc.args and exc.args[0].code() in _REBALANCE_CODES:
            raise KafkaUnavailable(
                f"offset commit failed: group {group_id!r} has live members, so"
                f" the broker refuses commits from a run outside it ({describe(exc)});"
                " the rows are stored: stop those consumers and run again, or use another"
                " --group (or --no-commit)"
            ) from exc
        raise KafkaUnavailable(f"offset commit failed: {describe(exc)}") from exc
    return True
