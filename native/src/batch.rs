//! A slice of messages decoded at once: the binary COPY rows of the valid ones in one piece
//! per partition, the rejections of the others (by index), and the counts the run reports.
//!
//! Rows come per partition so that a partition given up in a rebalance drops whole pieces,
//! never a parse of the tuples.

use crate::copy::{begin_row, finish_row, ROW_HEAD, ROW_OVERHEAD};
use crate::message::{decode, Rejection};

/// One message as the batch call sees it.
pub struct Input<'a> {
    pub value: Option<&'a [u8]>,
    pub partition: i32,
    pub offset: i64,
}

/// The valid messages of one partition of the slice: binary COPY tuples in input order.
pub struct Piece {
    pub partition: i32,
    pub rows: usize,
    pub copy: Vec<u8>,
}

#[derive(Default)]
pub struct Decoded {
    /// One piece per partition that has valid messages, in order of the partition's first
    /// message in the slice.
    pub pieces: Vec<Piece>,
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

/// The piece of each input, and each piece with its buffer sized by its partition's bound:
/// a report is never longer than its message, so a buffer is never grown (copied), and the
/// pages it does not use are never touched.
fn pieces_of(inputs: &[Input]) -> (Vec<usize>, Vec<Piece>) {
    let mut slots = Vec::with_capacity(inputs.len());
    let mut bounds: Vec<(i32, usize)> = Vec::new();
    let mut last = 0;
    for m in inputs {
        // Messages come in runs of one partition: the last piece is nearly always the one.
        if bounds.get(last).is_none_or(|&(p, _)| p != m.partition) {
            last = match bounds.iter().position(|&(p, _)| p == m.partition) {
                Some(i) => i,
                None => {
                    bounds.push((m.partition, 0));
                    bounds.len() - 1
                }
            };
        }
        bounds[last].1 += m.value.map_or(0, <[u8]>::len) + ROW_OVERHEAD;
        slots.push(last);
    }
    let pieces = bounds
        .into_iter()
        .map(|(partition, bound)| Piece {
            partition,
            rows: 0,
            copy: Vec::with_capacity(bound),
        })
        .collect();
    (slots, pieces)
}

pub fn decode_batch(inputs: &[Input], latest_allowed_us: i64) -> Decoded {
    let (slots, mut pieces) = pieces_of(inputs);
    let mut out = Decoded::default();
    for (i, (m, &slot)) in inputs.iter().zip(&slots).enumerate() {
        let piece = &mut pieces[slot];
        let start = begin_row(&mut piece.copy);
        match decode(m.value, latest_allowed_us, &mut piece.copy) {
            Ok(row) => {
                out.report_bytes += piece.copy.len() - start - ROW_HEAD;
                finish_row(&mut piece.copy, start, &row, m.partition, m.offset);
                piece.rows += 1;
                out.rows += 1;
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
            Err(rejection) => {
                piece.copy.truncate(start);
                out.rejections.push((i, rejection));
            }
        }
    }
    pieces.retain(|p| p.rows > 0);
    out.pieces = pieces;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = br#"{"OrgID":1,"ClusterName":"5d5892d3-1f74-4ccf-91af-548dfc9767aa","LastChecked":"2000-01-01T00:00:01Z","Version":3,"RequestId":"r","Report":{"fingerprints":[],"reports":[],"system":{}}}"#;

    fn input(value: Option<&[u8]>, partition: i32, offset: i64) -> Input<'_> {
        Input {
            value,
            partition,
            offset,
        }
    }

    #[test]
    fn rows_and_rejections_keep_their_order_and_the_buffer_never_grows() {
        let inputs = [
            input(Some(GOOD), 2, 9),
            input(None, 2, 10),
            input(Some(GOOD), 2, 11),
        ];
        let out = decode_batch(&inputs, i64::MAX);
        assert_eq!(out.rows, 2);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].0, 1);
        assert_eq!(out.versions, vec![(0, "3".to_string())]);
        assert_eq!(out.unexpected_version, 2);
        assert_eq!(out.request_ids, vec!["r", "r"]);
        let [piece] = &out.pieces[..] else {
            panic!("one partition, one piece");
        };
        assert_eq!((piece.partition, piece.rows), (2, 2));
        let row_len = ROW_OVERHEAD + br#"{"reports":[]}"#.len();
        let copy = &piece.copy;
        assert_eq!(copy.len(), 2 * row_len);
        assert_eq!(
            copy.capacity(),
            2 * (GOOD.len() + ROW_OVERHEAD) + ROW_OVERHEAD
        );
        // updated_at: one second after PostgreSQL's epoch; the offset of the second row
        let ts = &copy[row_len - 28..row_len - 20];
        assert_eq!(i64::from_be_bytes(ts.try_into().unwrap()), 1_000_000);
        let offset = &copy[2 * row_len - 16..2 * row_len - 8];
        assert_eq!(i64::from_be_bytes(offset.try_into().unwrap()), 11);
    }

    #[test]
    fn a_message_rejected_after_its_report_was_written_leaves_nothing_in_the_piece() {
        // The report is written in place before the envelope is judged: the cluster comes
        // after it here, and is not a UUID.
        let late = br#"{"OrgID":1,"LastChecked":"2000-01-01T00:00:01Z","Report":{"fingerprints":[],"reports":[1,2,3],"system":{}},"ClusterName":"x"}"#;
        let inputs = [
            input(Some(GOOD), 2, 9),
            input(Some(late), 2, 10),
            input(Some(GOOD), 2, 11),
        ];
        let out = decode_batch(&inputs, i64::MAX);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].1.reason, "bad_cluster");
        let alone = decode_batch(
            &[input(Some(GOOD), 2, 9), input(Some(GOOD), 2, 11)],
            i64::MAX,
        );
        assert_eq!(out.pieces[0].copy, alone.pieces[0].copy);
        assert_eq!(out.report_bytes, alone.report_bytes);
    }

    #[test]
    fn each_partition_gets_one_piece_sized_by_its_own_messages() {
        let inputs = [
            input(Some(GOOD), 5, 0),
            input(Some(GOOD), 1, 0),
            input(Some(GOOD), 5, 1),
            input(Some(b"{}"), 7, 0), // rejected: partition 7 has no row, so no piece
            input(Some(GOOD), 1, 1),
            input(Some(GOOD), 5, 2),
        ];
        let out = decode_batch(&inputs, i64::MAX);
        let row_len = ROW_OVERHEAD + br#"{"reports":[]}"#.len();
        let bound = GOOD.len() + ROW_OVERHEAD;
        let got: Vec<_> = out
            .pieces
            .iter()
            .map(|p| (p.partition, p.rows, p.copy.len(), p.copy.capacity()))
            .collect();
        assert_eq!(
            got,
            vec![
                (5, 3, 3 * row_len, 3 * bound),
                (1, 2, 2 * row_len, 2 * bound)
            ]
        );
        assert_eq!(out.rows, 5);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].0, 3);
        // the offsets of partition 5's rows, in input order
        let offsets: Vec<i64> = (0..3)
            .map(|r| {
                let at = (r + 1) * row_len - 16;
                i64::from_be_bytes(out.pieces[0].copy[at..at + 8].try_into().unwrap())
            })
            .collect();
        assert_eq!(offsets, vec![0, 1, 2]);
    }
}
