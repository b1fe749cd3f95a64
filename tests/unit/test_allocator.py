"""`etl run` keeps freed memory for the next batch: the allocator settings it asks the C library
for, and what it reports when they are refused. (The page faults they save are a measurement,
recorded in CHANGELOG.md, not a test: they depend on the machine.)"""

from __future__ import annotations

import platform

from etl.cli.run import tune_allocator

M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD = -8, -3, -1  # glibc's malloc.h


def test_the_settings_asked_for_are_two_arenas_a_fixed_mmap_and_a_high_trim_threshold() -> None:
    asked: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        asked.append((param, value))
        return 1

    assert tune_allocator(mallopt)
    assert asked == [(M_ARENA_MAX, 2), (M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 128 << 20)]


def test_a_setting_the_c_library_refuses_is_reported() -> None:
    assert not tune_allocator(lambda param, value: 0 if param == M_MMAP_THRESHOLD else 1)


def test_glibc_takes_every_setting_and_another_c_library_changes_nothing() -> None:
    assert tune_allocator() == (platform.libc_ver()[0] == "glibc")
