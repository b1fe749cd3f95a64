//! Rows in PostgreSQL's binary COPY format, columns in the order of `etl.core.statements.COLUMNS`:
//! org_id int4, account_number int4, cluster char(36), report varchar, updated_at timestamp,
//! kafka_offset int8, kafka_partition int4. The file header and trailer are the caller's.

use crate::message::Row;

/// Bytes a row takes beside its report: field count, seven lengths and the fixed-size values.
pub const ROW_OVERHEAD: usize = 2 + 7 * 4 + 4 + 4 + 36 + 8 + 8 + 4;
/// PostgreSQL timestamps count microseconds from 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Bytes of a row before its report: field count, then org_id, account_number and cluster
/// with their lengths, then the report's length.
pub const ROW_HEAD: usize = 2 + 4 + 4 + 4 + 4 + 4 + 36 + 4;

/// Start a row at the end of `out`: room for its head, so that the report can be written
/// straight after it (`message::decode` appends it) and never copied again. Returns where
/// the row starts, for `finish_row`; on a rejection the caller truncates `out` back to it.
#[inline]
pub fn begin_row(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.resize(start + ROW_HEAD, 0);
    start
}

/// Complete the row begun at `start`, whose report is everything after its head.
pub fn finish_row(out: &mut Vec<u8>, start: usize, row: &Row, partition: i32, offset: i64) {
    // A report is at most one Kafka message long, far below 2 GiB.
    let report_len = (out.len() - start - ROW_HEAD) as i32;
    let head = &mut out[start..start + ROW_HEAD];
    head[0..2].copy_from_slice(&7i16.to_be_bytes());
    head[2..6].copy_from_slice(&4i32.to_be_bytes());
    head[6..10].copy_from_slice(&row.org_id.to_be_bytes());
    head[10..14].copy_from_slice(&4i32.to_be_bytes());
    head[14..18].copy_from_slice(&row.account_number.to_be_bytes());
    head[18..22].copy_from_slice(&36i32.to_be_bytes());
    head[22..58].copy_from_slice(&row.cluster);
    head[58..62].copy_from_slice(&report_len.to_be_bytes());
    field(out, &(row.updated_at - PG_EPOCH_US).to_be_bytes());
    field(out, &offset.to_be_bytes());
    field(out, &partition.to_be_bytes());
}

#[inline]
fn field(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as i32).to_be_bytes());
    out.extend_from_slice(value);
}
