"""Reading one batch: slices from the source, each decoded on a thread of its own while the
next one is read.

A batch is at most ``max_messages`` messages and ``batch_bytes`` of values. It is read in
slices of half a batch; the compiled core releases the GIL while it decodes one, so reading
the next from librdkafka goes on meanwhile, and the raw values of two slices at most are held
beside the rows. Only the first batches are smaller (1/32, 1/8, then 1/2 of a batch), so that
the database starts working early instead of waiting for a whole first batch.

A batch ends early when a slice comes back empty, when the source has nothing left to hand
out now (`Source.exhausted`: its batch is then stored at once rather than after the source's
wait), or on a stop request. The decoder counts what was consumed and rejected; it is the
only writer of those counts, as the loop's thread is of what was stored.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from etl.core.batch import BatchDecoder
from etl.core.ports import RowBatch, Source, StoredRejection

_FIRST_SLICE_DIVISOR = 32
_SLICES = 2  # a batch is read in slices of batch_bytes / _SLICES


@dataclass
class DecodedBatch:
    """One batch's rows and rejections, the next offsets of the partitions owned at its end,
    and the partitions revoked by a rebalance while it was read (their rows are still in)."""

    rows: RowBatch = field(default_factory=RowBatch)
    rejections: list[StoredRejection] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)  # where each partition stood before
    revoked: set[int] = field(default_factory=set)

    def ranges(self) -> dict[int, tuple[int, int]]:
        """The non-empty offset range the batch covers, per partition owned at its end."""
        return {
            p: (self.starts.get(p, stop), stop)
            for p, stop in self.offsets.items()
            if self.starts.get(p, stop) < stop
        }


class BatchReader:
    """Batches of decoded rows from ``source``; `close` ends the decoding thread."""

    def __init__(
        self,
        source: Source,
        decoder: BatchDecoder,
        stop_requested: Callable[[], bool],
        max_messages: int,
        batch_bytes: int,
    ) -> None:
        self._source = source
        self._decoder = decoder
        self._stop_requested = stop_requested
        self._max_messages = max_messages
        self._batch_bytes = batch_bytes
        self._slice_bytes = max(1, batch_bytes // _FIRST_SLICE_DIVISOR)  # grows to a half
        self._decoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-decode")

    def read(self, latest_allowed: datetime) -> DecodedBatch:
        """The next batch; ``latest_allowed`` is the newest ``LastChecked`` accepted."""
        out = DecodedBatch()
        held: set[int] = set()  # every partition owned at some slice of this batch
        count = size = 0
        limit = self._batch_bytes
        slice_bytes = min(max(1, limit // _SLICES), self._slice_bytes)
        self._slice_bytes *= 4
        decoding: Future[None] | None = None  # the previous slice, decoded while this one is read
        while count < self._max_messages and size < limit:
            part = self._source.read_batch(
                self._max_messages - count, min(limit - size, slice_bytes), self._stop_requested
            )
            count += len(part.messages)
            size += part.size_bytes
            out.offsets = part.next_offsets
            for p, start in part.start_offsets.items():
                out.starts.setdefault(p, start)
            held.update(out.offsets)
            last = not part.messages or self._source.exhausted() or self._stop_requested()
            if decoding is not None:
                decoding.result()
            decoding = self._decoding.submit(
                contextvars.copy_context().run,
                self._decoder.decode_into,
                part,
                latest_allowed,
                out.rows,
                out.rejections,
            )
            if last:  # decided before the decoder empties the slice
                break
        if decoding is not None:
            decoding.result()
        out.revoked = held - out.offsets.keys()
        return out

    def close(self) -> None:
        self._decoding.shutdown(wait=True)


def share_of(max_bytes: int, writers: int) -> int:
    """One batch's share of ``max_bytes``: the values held at once by the batch being read and
    the ``writers`` batches being stored stay within ``max_bytes``."""
    return max(1, max_bytes // (max(1, writers) + 1))
