"""What the answers to asynchronous offset commits make of a run: offsets confirmed, a
rebalance's refusal logged, any other failure kept for the source to end the run with."""

from __future__ import annotations

from confluent_kafka import KafkaError, TopicPartition

from etl.core.errors import KafkaUnavailable
from etl.kafka.commits import CommitAnswers

TOPIC = "t"


def _tp(partition: int, offset: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition, offset)


def test_confirmed_offsets_are_taken_once_the_furthest_per_partition() -> None:
    answers = CommitAnswers(group_member=True, group_id="g")
    answers(None, [_tp(0, 5), _tp(1, 7)])
    answers(None, [_tp(0, 9)])
    answers(None, [_tp(0, 8)])  # an older answer arriving late never moves a partition back
    assert answers.take() == {0: 9, 1: 7}
    assert answers.take() == {}
    assert answers.failure is None


def test_a_group_members_commit_refused_by_a_rebalance_is_not_a_failure() -> None:
    answers = CommitAnswers(group_member=True, group_id="g")
    answers(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), [_tp(0, 5)])
    answers(KafkaError(KafkaError.ILLEGAL_GENERATION), [_tp(1, 3)])
    assert answers.failure is None
    assert answers.take() == {}  # refused: nothing confirmed


def test_an_explicit_runs_commit_refused_by_live_members_is_a_failure() -> None:
    answers = CommitAnswers(group_member=False, group_id="shared")
    answers(KafkaError(KafkaError.UNKNOWN_MEMBER_ID), [_tp(0, 5)])
    assert isinstance(answers.failure, KafkaUnavailable)
    assert "group 'shared' has live members" in str(answers.failure)
    assert answers.take() == {}


def test_any_other_failure_is_kept_the_first_one() -> None:
    answers = CommitAnswers(group_member=True, group_id="g")
    answers(KafkaError(KafkaError._TIMED_OUT, "commit timed out"), [_tp(0, 5)])
    answers(KafkaError(KafkaError._TRANSPORT, "connection refused"), [_tp(0, 6)])
    assert isinstance(answers.failure, KafkaUnavailable)
    assert str(answers.failure) == "offset commit failed: commit timed out"
    assert answers.take() == {}


def test_every_answer_counts_one_commit_less_in_flight() -> None:
    answers = CommitAnswers(group_member=True, group_id="g")
    answers.in_flight = 2
    answers(None, [_tp(0, 5)])
    answers(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), [_tp(0, 6)])
    assert answers.in_flight == 0
    answers(None, [_tp(0, 7)])  # an answer to a commit not counted never goes below zero
    assert answers.in_flight == 0
