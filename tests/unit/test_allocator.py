"""`etl run` keeps freed memory for the next batch: the allocator settings are taken and work."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from etl.cli.run import tune_allocator

# Two threads allocating, touching and freeing buffers of 5-11 MiB, as the decoding and
# writer threads do with each batch; prints the page faults it took.
CHURN = textwrap.dedent(
    """
    import resource, sys, threading
    from etl.cli.run import tune_allocator
    if sys.argv[1] == "tuned":
        assert tune_allocator()
    sizes = [(5 + i % 7) << 20 for i in range(30)]
    def churn():
        for n in sizes:
            b = bytearray(n)
            b[::4096] = b"x" * len(range(0, n, 4096))
            del b
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    threads = [threading.Thread(target=churn) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_c_library_takes_every_setting() -> None:
    assert tune_allocator()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_buffers_freed_by_one_batch_are_reused_by_the_next_without_faulting_them_in() -> None:
    default, tuned = faults("default"), faults("tuned")
    assert tuned * 3 < default, (tuned, default)
