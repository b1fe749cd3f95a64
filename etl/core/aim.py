"""The options that aim a run, parsed once from the command line: pure.

`Aim` holds ``--from-offset``, ``--until-offset``, ``--from-timestamp``, ``--until-timestamp``,
``--from-beginning``, ``--partitions``, ``--no-commit``, ``--dry-run`` and a replayed run's
ranges; `aim_from_options` parses them and refuses a contradiction, or a range empty or
reversed *as typed* (``--from-offset 7 --until-offset 7``, a ``--from-timestamp`` not before
the ``--until-timestamp``), as a usage error (exit 2) before anything is read. Planning each
partition from an `Aim` and what the broker and the database report is `etl.core.plan`.

Ranges are half-open: a run reads offsets ``start <= offset < stop``. ``--until-offset N`` stops
before N; ``--until-timestamp T`` stops before the first message stamped at or after T;
``--from-timestamp T`` starts at the first message stamped at or after T.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from etl.core.errors import ConfigError


@dataclass(frozen=True)
class OffsetSpec:
    """``N`` for every partition, or ``P:N,...`` for some."""

    every: int | None = None
    per_partition: Mapping[int, int] = field(default_factory=dict)

    def get(self, partition: int) -> int | None:
        return self.per_partition.get(partition, self.every)


@dataclass(frozen=True)
class Aim:
    partitions: frozenset[int] | None = None
    from_offset: OffsetSpec | None = None
    until_offset: OffsetSpec | None = None
    from_timestamp: datetime | None = None
    until_timestamp: datetime | None = None
    from_beginning: bool = False
    commit: bool = True
    dry_run: bool = False
    replay: Mapping[int, tuple[int, int]] | None = None  # partition -> [start, stop)

    @property
    def explicit(self) -> bool:
        """Positions or a partition choice were given: assign explicitly, do not join the group.

        Not committing (``--no-commit``, ``--dry-run``) also means not joining, so a replay
        or a trial never triggers a rebalance of the production group.
        """
        return bool(
            self.partitions is not None
            or self.from_offset
            or self.from_timestamp
            or self.from_beginning
            or self.replay is not None
            or not self.writes_offsets
        )

    @property
    def writes_offsets(self) -> bool:
        """Whether the run commits offsets: not with ``--no-commit``, a dry run or a replay."""
        return self.commit and not self.dry_run and self.replay is None

    def named_partitions(self) -> set[int]:
        """Partitions the options name explicitly; each must exist in the topic."""
        named = set(self.partitions or ())
        for spec in (self.from_offset, self.until_offset):
            if spec is not None:
                named.update(spec.per_partition)
        named.update(self.replay or {})
        return named


def parse_offsets(option: str, text: str) -> OffsetSpec:
    """``N`` or ``P:N[,P:N...]``, every number >= 0."""
    text = text.strip()
    try:
        if ":" not in text:
            value = int(text)
            _non_negative(option, value)
            return OffsetSpec(every=value)
        per: dict[int, int] = {}
        for item in text.split(","):
            part, _, offset = item.partition(":")
            p, o = int(part), int(offset)
            _non_negative(option, p)
            _non_negative(option, o)
            if p in per:
                raise ConfigError(f"{option}: partition {p} given twice")
            per[p] = o
        return OffsetSpec(per_partition=per)
    except ValueError:
        raise ConfigError(f"{option}: expected N or P:N[,P:N...], got {text!r}") from None


def parse_partitions(text: str) -> frozenset[int]:
    """``P[,P...]``: partition numbers >= 0, each once, no empty item (``0,,1`` is a typo)."""
    items = text.split(",")
    try:
        numbers = [int(p) for p in items]
    except ValueError:
        raise ConfigError(f"--partitions: expected a list like 0,3,5, got {text!r}") from None
    if min(numbers) < 0:
        raise ConfigError(f"--partitions: expected a list like 0,3,5, got {text!r}")
    twice = sorted({p for p in numbers if numbers.count(p) > 1})
    if twice:
        raise ConfigError(f"--partitions: partition {twice[0]} given twice")
    return frozenset(numbers)


def parse_timestamp(option: str, text: str) -> datetime:
    """An ISO 8601 time with a zone; a time without one is rejected, not guessed."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option}: not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise ConfigError(f"{option}: {text!r} has no time zone; add Z or an offset such as +02:00")
    return value


def check_combination(aim: Aim) -> None:
    """Reject options that contradict each other, before anything is read."""
    starts = [aim.from_offset is not None, aim.from_timestamp is not None, aim.from_beginning]
    if sum(starts) > 1:
        raise ConfigError("--from-offset, --from-timestamp and --from-beginning exclude each other")
    if aim.until_offset is not None and aim.until_timestamp is not None:
        raise ConfigError("--until-offset and --until-timestamp exclude each other")
    if aim.replay is not None and (any(starts) or aim.until_offset or aim.until_timestamp):
        raise ConfigError("--replay-run takes its offset ranges from the run; drop --from/--until")
    if aim.replay is not None and aim.partitions is not None:
        raise ConfigError("--replay-run takes its partitions from the run; drop --partitions")
    if aim.from_timestamp and aim.until_timestamp and aim.from_timestamp >= aim.until_timestamp:
        raise ConfigError("--from-timestamp must be earlier than --until-timestamp")
    if aim.from_offset is not None and aim.until_offset is not None:
        _check_offset_ranges(aim.from_offset, aim.until_offset, aim.partitions)


def _check_offset_ranges(
    starts: OffsetSpec, stops: OffsetSpec, chosen: frozenset[int] | None
) -> None:
    """Reject ``--from-offset``/``--until-offset`` ranges that are empty or reversed as typed,
    naming every partition concerned: for ``N`` given to both, "every partition" (or the ones
    ``--partitions`` chose); else each partition a ``P:N`` item names."""
    if not starts.per_partition and not stops.per_partition:
        if starts.every is not None and stops.every is not None and starts.every >= stops.every:
            where = "every partition" if chosen is None else _partitions_text(chosen)
            raise ConfigError(
                f"the offset range [{starts.every}, {stops.every}) is empty or reversed on {where}"
            )
        return
    bad = [
        f"[{start}, {stop}) of partition {p}"
        for p in sorted({*starts.per_partition, *stops.per_partition})
        if (start := starts.get(p)) is not None and (stop := stops.get(p)) is not None
        if start >= stop
    ]
    if len(bad) == 1:
        raise ConfigError(f"the offset range {bad[0]} is empty or reversed")
    if bad:
        raise ConfigError(f"the offset ranges {', '.join(bad)} are empty or reversed")


def _partitions_text(partitions: frozenset[int]) -> str:
    numbers = ", ".join(map(str, sorted(partitions)))
    return f"partition {numbers}" if len(partitions) == 1 else f"partitions {numbers}"


def aim_from_options(
    *,
    until_offset: str | None,
    from_offset: str | None,
    from_timestamp: str | None,
    until_timestamp: str | None,
    from_beginning: bool,
    partitions: str | None,
    no_commit: bool = False,
    dry_run: bool = False,
    replay: dict[int, tuple[int, int]] | None = None,
) -> Aim:
    """The `Aim` of the command-line options as typed; ConfigError for any malformed one."""
    aim = Aim(
        partitions=parse_partitions(partitions) if partitions is not None else None,
        from_offset=parse_offsets("--from-offset", from_offset) if from_offset else None,
        until_offset=parse_offsets("--until-offset", until_offset) if until_offset else None,
        from_timestamp=parse_timestamp("--from-timestamp", from_timestamp)
        if from_timestamp
        else None,
        until_timestamp=parse_timestamp("--until-timestamp", until_timestamp)
        if until_timestamp
        else None,
        from_beginning=from_beginning,
        commit=not no_commit,
        dry_run=dry_run,
        replay=replay,
    )
    check_combination(aim)
    return aim


def recorded_options(given: Mapping[str, object]) -> dict[str, object]:
    """The aiming options a run was started with, as the runs table records them: only those
    actually given (a flag left off or an option not set is not recorded)."""
    return {k: v for k, v in given.items() if v is not None and v is not False}


def starts_from_position(partition: int, aim: Aim) -> bool:
    """True when no option names where ``partition`` starts: the run resumes from the
    database's position (else the group's); an explicit start wins over both."""
    return (
        aim.replay is None
        and not aim.from_beginning
        and aim.from_timestamp is None
        and (aim.from_offset is None or aim.from_offset.get(partition) is None)
    )


def _non_negative(option: str, value: int) -> None:
    if value < 0:
        raise ConfigError(f"{option}: {value} is negative")
