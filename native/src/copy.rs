//! Rows in PostgreSQL's binary COPY format, columns in the order of `etl.core.statements.COLUMNS`:
//! org_id int4, account_number int4, cluster char(36), report varchar, updated_at timestamp,
//! kafka_offset int8, kafka_partition int4. The file header and trailer are the caller's.

use crate::message::Row;

/// Bytes a row takes beside its report: field count, seven lengths and the fixed-size values.
pub const ROW_OVERHEAD: usize = 2 + 7 * 4 + 4 + 4 + 36 + 8 + 8 + 4;
/// PostgreSQL timestamps count microseconds from 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

pub fn write_row(out: &mut Vec<u8>, row: &Row, report: &[u8], partition: i32, offset: i64) {
    out.extend_from_slice(&7i16.to_be_bytes());
    field(out, &row.org_id.to_be_bytes());
    field(out, &row.account_number.to_be_bytes());
    field(out, &row.cluster);
    field(out, report);
    field(out, &(row.updated_at - PG_EPOCH_US).to_be_bytes());
    field(out, &offset.to_be_bytes());
    field(out, &partition.to_be_bytes());
}

#[inline]
fn field(out: &mut Vec<u8>, value: &[u8]) {
    // A report is at most one Kafka message long, far below 2 GiB.
    out.extend_from_slice(&(value.len() as i32).to_be_bytes());
    out.extend_from_slice(value);
}
