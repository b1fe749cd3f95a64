//! A slice of messages decoded at once: the binary COPY rows of the valid ones, the
//! rejections of the others (by index), and the counts the run reports.

use crate::copy::{write_row, ROW_OVERHEAD};
use crate::message::{decode, Rejection};

/// One message as the batch call sees it.
pub struct Input<'a> {
    pub value: Option<&'a [u8]>,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Default)]
pub struct Decoded {
    /// Binary COPY tuples of the valid messages, in input order.
    pub copy: Vec<u8>,
    pub rows: usize,
    pub report_bytes: usize,
    pub missing_account: usize,
    pub unexpected_version: usize,
    /// The first message of each distinct unexpected `Version` token: (index, token).
    pub versions: Vec<(usize, String)>,
    pub rejections: Vec<(usize, Rejection)>,
    /// The `RequestId` of each valid message that has one, in input order.
    pub request_ids: Vec<String>,
}

pub fn decode_batch(inputs: &[Input], latest_allowed_us: i64) -> Decoded {
    // A report is never longer than its message, so this bounds the buffer: it is never
    // grown (copied), and the pages it does not use are never touched.
    let bound: usize = inputs
        .iter()
        .map(|m| m.value.map_or(0, <[u8]>::len) + ROW_OVERHEAD)
        .sum();
    let mut out = Decoded {
        copy: Vec::with_capacity(bound),
        ..Decoded::default()
    };
    let mut report = Vec::new();
    for (i, m) in inputs.iter().enumerate() {
        match decode(m.value, latest_allowed_us, &mut report) {
            Ok(row) => {
                write_row(&mut out.copy, &row, &report, m.partition, m.offset);
                out.rows += 1;
                out.report_bytes += report.len();
                out.missing_account += usize::from(row.account_missing);
                if let Some(v) = row.unexpected_version {
                    out.unexpected_version += 1;
                    if !out.versions.iter().any(|(_, seen)| *seen == v) {
                        out.versions.push((i, v));
                    }
                }
                if let Some(id) = row.request_id {
                    out.request_ids.push(id);
                }
            }
            Err(rejection) => out.rejections.push((i, rejection)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_rejections_keep_their_order_and_the_buffer_never_grows() {
        let good = br#"{"OrgID":1,"ClusterName":"5d5892d3-1f74-4ccf-91af-548dfc9767aa","LastChecked":"2000-01-01T00:00:01Z","Version":3,"RequestId":"r","Report":{"fingerprints":[],"reports":[],"system":{}}}"#;
        let inputs = [
            Input {
                value: Some(good),
                partition: 2,
                offset: 9,
            },
            Input {
                value: None,
                partition: 2,
                offset: 10,
            },
            Input {
                value: Some(good),
                partition: 2,
                offset: 11,
            },
        ];
        let out = decode_batch(&inputs, i64::MAX);
        assert_eq!(out.rows, 2);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].0, 1);
        assert_eq!(out.versions, vec![(0, "3".to_string())]);
        assert_eq!(out.unexpected_version, 2);
        assert_eq!(out.request_ids, vec!["r", "r"]);
        let row_len = ROW_OVERHEAD + br#"{"reports":[]}"#.len();
        assert_eq!(out.copy.len(), 2 * row_len);
        assert!(out.copy.capacity() >= out.copy.len());
        // updated_at: one second after PostgreSQL's epoch; the offset of the second row
        let ts = &out.copy[row_len - 28..row_len - 20];
        assert_eq!(i64::from_be_bytes(ts.try_into().unwrap()), 1_000_000);
        let offset = &out.copy[2 * row_len - 16..2 * row_len - 8];
        assert_eq!(i64::from_be_bytes(offset.try_into().unwrap()), 11);
    }
}
