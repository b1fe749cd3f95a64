"""RunCounts: rejections by reason, a reason outside the known list included."""

from __future__ import annotations

from etl.core.counts import RunCounts
from etl.core.decode import REASONS


def test_every_known_reason_starts_at_zero_and_an_unknown_one_is_counted_not_raised() -> None:
    counts = RunCounts()
    counts.reject("invalid_json")
    counts.reject("a_reason_of_a_newer_core", 2)
    counts.reject("a_reason_of_a_newer_core")
    rejected = counts.rejected()
    assert rejected["invalid_json"] == 1
    assert rejected["a_reason_of_a_newer_core"] == 3
    assert {
        r: n for r, n in rejected.items() if r in REASONS and r != "invalid_json"
    } == dict.fromkeys(set(REASONS) - {"invalid_json"}, 0)
