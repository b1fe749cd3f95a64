"""Offset commits of a consumer-group member, each bounded, and what a refusal means.

A commit is sent after its batch is durably stored, so whatever happens to it never loses a row:
- between batches it is asynchronous (`send_async`): the run reads on while it travels (a
  synchronous one held every read of the consumer until the broker answered). librdkafka
  sends a consumer's commits in order; the answers come to `CommitAnswers` during a later poll
  on the main thread, and a failure among them ends the run at its next commit;
- what is still unanswered when the run stores its last batch is committed again
  synchronously (`commit_offsets`), on `etl.kafka.waits`' deadline of ``kafka.timeout_seconds``
  (librdkafka's own commit has none and blocks for good while the coordinator is unreachable):
  no answer is `KafkaUnavailable` (exit 3; the source adds the last error librdkafka reported
  meanwhile, `etl.kafka.reports`), a stop request ends the wait within the stop grace (exit 6);
  a commit that lands later only confirms stored rows;
- inside a rebalance callback (the batch in flight, committed before the partitions are given
  up) librdkafka answers no other thread and a wait could block for good, so it is sent
  asynchronously and not waited for: librdkafka sends it before it leaves the assignment, and
  the group's committed offsets, read later, say whether it landed;
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


def send_async(
    consumer: Consumer, topic: str, offsets: Mapping[int, int], *, group_member: bool, group_id: str
) -> None:
    """Send a commit of ``offsets`` without waiting; its answer comes to `CommitAnswers`."""
    tps = [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())]
    try:
        consumer.commit(offsets=tps, asynchronous=True)
    except KafkaException as exc:
        failure = _refusal(exc, group_member=group_member, group_id=group_id)
        if failure is not None:
            raise failure from exc


class CommitAnswers:
    """librdkafka's ``on_commit`` callback: the answers to asynchronous commits, delivered
    during a poll on the main thread. It keeps the offsets confirmed since `take` was last
    called and the first failure that was not a rebalance's refusal, for the source to act on
    at its next commit (a callback's exception would surface inside an unrelated poll), and
    how many sent commits are not answered yet: the source keeps that to one, because
    librdkafka lets a member rejoin a rebalancing group only once none is outstanding, and a
    commit after every small batch would keep it out of the rebalance until the run's end."""

    def __init__(self, *, group_member: bool, group_id: str) -> None:
        self._group_member = group_member
        self._group_id = group_id
        self._confirmed: dict[int, int] = {}
        self.failure: KafkaUnavailable | None = None
        self.in_flight = 0

    def __call__(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        errors = [err] if err is not None else [tp.error for tp in partitions if tp.error]
        for error in errors:
            failure = _refusal(
                KafkaException(error), group_member=self._group_member, group_id=self._group_id
            )
            if failure is not None and self.failure is None:
                self.failure = failure
        if err is None:
            for tp in partitions:
                p, o = tp.partition, tp.offset
                if tp.error is None and p is not None and o is not None and o >= 0:
                    self._confirmed[p] = max(o, self._confirmed.get(p, o))

    def take(self) -> dict[int, int]:
        """The offsets confirmed since the last call."""
        confirmed, self._confirmed = self._confirmed, {}
        return confirmed


def _refusal(exc: KafkaException, *, group_member: bool, group_id: str) -> KafkaUnavailable | None:
    """What a refused commit means: None when a rebalance refused a group member's commit
    (logged: the rows are stored, the new owner re-reads them), else the run's failure."""
    code = exc.args[0].code() if exc.args and isinstance(exc.args[0], KafkaError) else None
    if code in _REBALANCE_CODES:
        # Only a group member's commit can be refused by a rebalance; an explicitly
        # assigned run committing into a group with live members must not pass silently.
        if group_member:
            log.warning(
                "commit_refused_by_rebalance",
                error=describe(exc),
                effect="the new owner re-reads these stored rows",
            )
            return None
        return KafkaUnavailable(
            f"offset commit failed: group {group_id!r} has live members, so"
            f" the broker refuses commits from a run outside it ({describe(exc)});"
            " the rows are stored: stop those consumers and run again, or use another"
            " --group (or --no-commit)"
        )
    return KafkaUnavailable(f"offset commit failed: {describe(exc)}")


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
        failure = _refusal(exc, group_member=group_member, group_id=group_id)
        if failure is None:
            return False
        raise failure from exc
    return True
