"""Decoding a slice of Kafka messages into rows and rejections, counting and logging as it goes.

Every rejection is logged with its coordinates and reason; an unexpected ``Version`` is logged
once per distinct value and run. The counts go to the run's `RunCounts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from etl.core import events
from etl.core.counts import RunCounts
from etl.core.decode import Rejection, decode
from etl.core.ports import Batch, StoredRejection, StoredRow

log = events.logger(__name__)


@dataclass
class BatchDecoder:
    counts: RunCounts
    _seen_versions: set[str] = field(default_factory=set)

    def decode_into(
        self,
        batch: Batch,
        latest_allowed: datetime,
        rows: list[StoredRow],
        rejections: list[StoredRejection],
    ) -> None:
        """Decode the slice into ``rows`` and ``rejections``; empties ``batch.messages``."""
        report_bytes = missing_account = unexpected_version = 0
        count = len(batch.messages)
        # Consumed from the front, so each valid value is freed as soon as its row exists and
        # the batch's values and rows are never held in full at the same time.
        batch.messages.reverse()
        while batch.messages:
            msg = batch.messages.pop()
            result = decode(msg.value, latest_allowed)
            if isinstance(result, Rejection):
                rejections.append(StoredRejection(result, msg))
                self.counts.reject(result.reason)
                log.warning(
                    "message_rejected",
                    partition=msg.partition,
                    offset=msg.offset,
                    reason=result.reason,
                    detail=result.detail,
                )
                continue
            rows.append(StoredRow(result, msg.partition, msg.offset))
            report_bytes += len(result.report)
            missing_account += result.account_missing
            if result.unexpected_version is not None:
                unexpected_version += 1
                self._note_version(result.unexpected_version, msg.partition, msg.offset)
        m = self.counts
        m.add("etl_messages_consumed", count)
        m.add("etl_bytes_consumed", batch.size_bytes)
        m.add("etl_bytes_stored", report_bytes)
        m.add("etl_rows_missing_account_number", missing_account)
        m.add("etl_messages_unexpected_version", unexpected_version)

    def _note_version(self, version: object, partition: int, offset: int) -> None:
        text = repr(version)
        if text not in self._seen_versions:
            self._seen_versions.add(text)
            log.warning(  # once per distinct value and run
                "unexpected_version", version=text, expected=2, partition=partition, offset=offset
            )
