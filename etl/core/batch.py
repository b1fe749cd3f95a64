"""Decoding a slice of Kafka messages into binary COPY rows and rejections, counting and logging.

One call into the compiled core per slice (`etl.core.decode.decode_batch`); what stays here is
the bookkeeping around it. Every rejection is logged with its coordinates and reason; an
unexpected ``Version`` is logged once per distinct value and run. The counts go to the run's
`RunCounts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from etl.core import events
from etl.core.counts import RunCounts
from etl.core.decode import EXPECTED_VERSION, decode_batch
from etl.core.ports import Batch, RowBatch, StoredRejection

log = events.logger(__name__)


@dataclass
class BatchDecoder:
    counts: RunCounts
    log_rejections: bool = True  # ``etl verify`` reports them its own way
    _seen_versions: set[str] = field(default_factory=set)

    def decode_into(
        self,
        batch: Batch,
        latest_allowed: datetime,
        rows: RowBatch,
        rejections: list[StoredRejection],
    ) -> None:
        """Decode the slice into ``rows`` and ``rejections``; empties ``batch.messages``.

        The slice's values are released as soon as its rows exist, so the values of one
        slice at most are held beside the rows of the batch."""
        messages = batch.messages
        decoded = decode_batch(messages, latest_allowed)
        for index, rejection in decoded.rejections:
            msg = messages[index]
            rejections.append(StoredRejection(rejection, msg))
            self.counts.reject(rejection.reason)
            if not self.log_rejections:
                continue
            log.warning(
                "message_rejected",
                partition=msg.partition,
                offset=msg.offset,
                reason=rejection.reason,
                detail=rejection.detail,
            )
        for index, version in decoded.versions:
            self._note_version(version, messages[index].partition, messages[index].offset)
        if decoded.rows:
            rows.chunks += decoded.chunks  # one per partition
            rows.count += decoded.rows
            rows.request_ids += decoded.request_ids
        m = self.counts
        m.add("etl_messages_consumed", len(messages))
        m.add("etl_bytes_consumed", batch.size_bytes)
        m.add("etl_bytes_stored", decoded.report_bytes)
        m.add("etl_rows_missing_account_number", decoded.missing_account)
        m.add("etl_messages_unexpected_version", decoded.unexpected_version)
        messages.clear()

    def _note_version(self, version: str, partition: int, offset: int) -> None:
        if version not in self._seen_versions:
            self._seen_versions.add(version)
            log.warning(  # once per distinct value and run
                "unexpected_version",
                version=version,
                expected=EXPECTED_VERSION,
                partition=partition,
                offset=offset,
            )
