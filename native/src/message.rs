//! One Kafka message value against the message contract (docs/message-contract.md): a row
//! whose report is written to a buffer, or a rejection with its reason and detail.
//!
//! The value is walked once. Top-level keys match in any ASCII letter case; a key given twice
//! (in any case) is ambiguous and rejects the message. The `Report` object is copied compactly
//! while it is validated, without the dropped keys, every other member exactly as sent.

use crate::fields::{self, Stamp};
use crate::json::{unescape, Discard, Kind, Scanner};

pub const DROPPED_REPORT_KEYS: [&str; 6] = [
    "system",
    "fingerprints",
    "skips",
    "info",
    "pass",
    "analysis_metadata",
];
pub const REQUIRED_REPORT_KEYS: [&str; 3] = ["fingerprints", "reports", "system"];
/// Every reason a message is rejected for: the `reason` label of `etl_messages_rejected` and
/// the `reason` column of `rejected_messages`. Each `reject(...)` below names one of them (a
/// unit test reads this file to hold that).
pub const REASONS: [&str; 11] = [
    "empty_value",
    "invalid_json",
    "duplicate_key",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "bad_cluster",
    "bad_report",
    "bad_timestamp",
    "future_timestamp",
    "unstorable_text",
];
/// The `Version` the contract expects; a valid message with another one is stored and counted.
pub const EXPECTED_VERSION: i64 = 2;
const KEYS: [&str; 8] = [
    "OrgID",
    "AccountNumber",
    "ClusterName",
    "Report",
    "LastChecked",
    "Version",
    "RequestId",
    "Metadata",
];
const ORG: usize = 0;
const ACCOUNT: usize = 1;
const CLUSTER: usize = 2;
const REPORT: usize = 3;
const LAST_CHECKED: usize = 4;
const VERSION: usize = 5;
const REQUEST_ID: usize = 6;
const SHOWN: usize = 80; // characters of a value quoted in a detail

/// A valid message; its report is in the buffer given to `decode`.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub org_id: i32,
    pub account_number: i32,
    pub account_missing: bool,
    pub cluster: [u8; 36],
    /// Microseconds since 1970-01-01 UTC.
    pub updated_at: i64,
    /// The `Version` token as sent, when present, not null and not `EXPECTED_VERSION`.
    pub unexpected_version: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    /// One of `REASONS`.
    pub reason: &'static str,
    pub detail: String,
    pub request_id: Option<String>,
}

fn reject(reason: &'static str, detail: String) -> Rejection {
    Rejection {
        reason,
        detail,
        request_id: None,
    }
}

#[derive(Clone, Copy)]
struct Field<'a> {
    key: &'a str,
    kind: Kind,
    token: &'a str,
    escaped: bool,
}

/// What the walk learnt about the `Report` object.
#[derive(Default)]
struct ReportSeen {
    present: [bool; 3],
    nul: bool,
}

/// `value` as text, or the byte where it stops being valid UTF-8.
///
/// simdutf8 checks a whole value with SIMD (AVX2 or SSE 4.2, chosen at run time) several times
/// faster than `std::str::from_utf8`; only a value it rejects, which is rare, is checked again
/// by the standard library for the position the rejection names.
pub fn utf8(value: &[u8]) -> Result<&str, usize> {
    simdutf8::basic::from_utf8(value)
        .or_else(|_| std::str::from_utf8(value).map_err(|e| e.valid_up_to()))
}

/// Validate one message value; on success the compact report is appended to `report` (whose
/// bytes before the call are kept), so a caller can build it in place in its own buffer; on a
/// rejection `report` is left as it was.
pub fn decode(
    value: Option<&[u8]>,
    latest_allowed_us: i64,
    report: &mut Vec<u8>,
) -> Result<Row, Rejection> {
    let base = report.len();
    let result = decode_at(value, latest_allowed_us, report, base);
    if result.is_err() {
        report.truncate(base);
    }
    result
}

fn decode_at(
    value: Option<&[u8]>,
    latest_allowed_us: i64,
    report: &mut Vec<u8>,
    base: usize,
) -> Result<Row, Rejection> {
    let value = match value {
        Some(v) if !v.is_empty() => v,
        _ => return Err(reject("empty_value", "message value is empty".into())),
    };
    let text = utf8(value).map_err(|at| {
        reject(
            "invalid_json",
            format!("not valid UTF-8: invalid byte sequence at byte {at}"),
        )
    })?;
    let mut fields: [Option<Field>; 8] = [None; 8];
    let mut seen = ReportSeen::default();
    let duplicate = walk(text, &mut fields, &mut seen, report, base).map_err(|e| {
        if e.what == LONE_SURROGATE {
            reject("unstorable_text", format!("{} at byte {}", e.what, e.at))
        } else {
            reject(
                "invalid_json",
                format!("not valid JSON: {} at byte {}", e.what, e.at),
            )
        }
    })?;
    let request_id = fields[REQUEST_ID]
        .filter(|f| f.kind == Kind::Str && f.token.len() > 2)
        .map(|f| unescape(f.token, f.escaped).into_owned());
    let with_id = |mut r: Rejection| {
        r.request_id.clone_from(&request_id);
        r
    };
    if let Some((first, second)) = duplicate {
        return Err(with_id(reject(
            "duplicate_key",
            format!(
                "{}: the key appears more than once ({} and {}), so its value is ambiguous",
                canonical(first),
                show(first),
                show(second),
            ),
        )));
    }
    validate(&fields, &seen, latest_allowed_us, request_id.clone()).map_err(with_id)
}

/// Walk the document; Ok(Some(first, second key token)) when a known key is repeated.
fn walk<'a>(
    text: &'a str,
    fields: &mut [Option<Field<'a>>; 8],
    seen: &mut ReportSeen,
    report: &mut Vec<u8>,
    base: usize,
) -> Result<Option<(&'a str, &'a str)>, crate::json::SyntaxError> {
    let mut sc = Scanner::new(text.as_bytes());
    sc.ws();
    if sc.buf.get(sc.pos) != Some(&b'{') {
        let start = sc.pos;
        let kind = sc.value(&mut Discard)?;
        sc.end()?;
        return Err(crate::json::SyntaxError {
            what: not_object(kind),
            at: start,
        });
    }
    sc.begin(b'{')?;
    let mut duplicate = None;
    let mut first = true;
    while let Some(key) = sc.next_member(&mut first)? {
        let key_token = &text[key.start..key.end];
        let name = unescape(key_token, key.escaped);
        let slot = KEYS.iter().position(|k| k.eq_ignore_ascii_case(&name));
        sc.ws();
        let start = sc.pos;
        let kind = if slot == Some(REPORT) && sc.buf.get(start) == Some(&b'{') {
            *seen = report_members(&mut sc, text, report, base)?;
            Kind::Object
        } else {
            sc.value(&mut Discard)?
        };
        let token = &text[start..sc.pos];
        if let Some(i) = slot {
            match fields[i] {
                Some(prev) if duplicate.is_none() => duplicate = Some((prev.key, key_token)),
                _ => {}
            }
            fields[i] = Some(Field {
                key: key_token,
                kind,
                token,
                escaped: kind == Kind::Str && token.contains('\\'),
            });
        }
    }
    sc.end()?;
    if let Some(at) = sc.lone_surrogate {
        return Err(crate::json::SyntaxError {
            what: LONE_SURROGATE,
            at,
        });
    }
    Ok(duplicate)
}

const LONE_SURROGATE: &str = "a lone UTF-16 surrogate escape in a string";

fn not_object(kind: Kind) -> &'static str {
    match kind {
        Kind::Array => "expected a JSON object, got array",
        Kind::Str => "expected a JSON object, got string",
        Kind::Int => "expected a JSON object, got integer",
        Kind::Float => "expected a JSON object, got float",
        Kind::Bool => "expected a JSON object, got boolean",
        _ => "expected a JSON object, got null",
    }
}

/// The Report object at the scanner's position, copied compactly without the dropped keys.
fn report_members(
    sc: &mut Scanner,
    text: &str,
    out: &mut Vec<u8>,
    base: usize,
) -> Result<ReportSeen, crate::json::SyntaxError> {
    let mut seen = ReportSeen::default();
    out.truncate(base); // a repeated Report key: the last one is kept (and the message rejected)
    sc.begin(b'{')?;
    out.push(b'{');
    let mut first = true;
    let mut wrote = false;
    loop {
        let nuls = sc.nuls;
        let Some(key) = sc.next_member(&mut first)? else {
            break;
        };
        let token = &text[key.start..key.end];
        let name = unescape(token, key.escaped);
        for (i, required) in REQUIRED_REPORT_KEYS.iter().enumerate() {
            seen.present[i] |= *required == name;
        }
        if DROPPED_REPORT_KEYS.contains(&name.as_ref()) {
            sc.value(&mut Discard)?;
            continue;
        }
        if wrote {
            out.push(b',');
        }
        wrote = true;
        out.extend_from_slice(token.as_bytes());
        out.push(b':');
        sc.value_compact(out)?;
        seen.nul |= sc.nuls > nuls;
    }
    out.push(b'}');
    Ok(seen)
}

fn validate(
    fields: &[Option<Field>; 8],
    seen: &ReportSeen,
    latest_allowed_us: i64,
    request_id: Option<String>,
) -> Result<Row, Rejection> {
    let org_id = int32(fields[ORG], "OrgID")?.ok_or_else(|| {
        let state = if fields[ORG].is_some() {
            "null"
        } else {
            "missing"
        };
        reject("missing_field", format!("OrgID: required field is {state}"))
    })?;
    let account = int32(fields[ACCOUNT], "AccountNumber")?;
    let cluster = cluster(fields[CLUSTER])?;
    report(fields[REPORT], seen)?;
    let updated_at = timestamp(fields[LAST_CHECKED], latest_allowed_us)?;
    let unexpected_version = match fields[VERSION] {
        None => None,
        Some(f) if f.kind == Kind::Null || (f.kind == Kind::Int && expected_version(f.token)) => {
            None
        }
        Some(f) => Some(truncate(f.token).to_string()),
    };
    Ok(Row {
        org_id,
        account_number: account.unwrap_or(0),
        account_missing: account.is_none(),
        cluster,
        updated_at,
        unexpected_version,
        request_id,
    })
}

/// Whether a JSON integer token is `EXPECTED_VERSION` (JSON spells an integer one way only).
fn expected_version(token: &str) -> bool {
    token.parse::<i64>() == Ok(EXPECTED_VERSION)
}

/// Ok(None) for a missing or null field.
fn int32(field: Option<Field>, name: &str) -> Result<Option<i32>, Rejection> {
    let Some(f) = field.filter(|f| f.kind != Kind::Null) else {
        return Ok(None);
    };
    if f.kind != Kind::Int {
        return Err(wrong_type(name, "integer", f.kind));
    }
    match fields::int32(f.token) {
        Some(v) => Ok(Some(v)),
        None => Err(reject(
            "out_of_range",
            format!("{name}: {} is outside 0..{}", truncate(f.token), i32::MAX),
        )),
    }
}

fn cluster(field: Option<Field>) -> Result<[u8; 36], Rejection> {
    let f = present(field, "ClusterName")?;
    if f.kind != Kind::Str {
        return Err(wrong_type("ClusterName", "string", f.kind));
    }
    fields::cluster(&unescape(f.token, f.escaped)).ok_or_else(|| {
        reject(
            "bad_cluster",
            format!("ClusterName: not a UUID: {}", truncate(f.token)),
        )
    })
}

fn report(field: Option<Field>, seen: &ReportSeen) -> Result<(), Rejection> {
    let f = present(field, "Report")?;
    if f.kind != Kind::Object {
        return Err(wrong_type("Report", "object", f.kind));
    }
    let missing: Vec<&str> = REQUIRED_REPORT_KEYS
        .iter()
        .zip(seen.present)
        .filter(|(_, here)| !here)
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        return Err(reject(
            "bad_report",
            format!("Report: missing required key(s) {}", missing.join(", ")),
        ));
    }
    if seen.nul {
        return Err(reject(
            "unstorable_text",
            "Report: contains a \\u0000 character".into(),
        ));
    }
    Ok(())
}

fn timestamp(field: Option<Field>, latest_allowed_us: i64) -> Result<i64, Rejection> {
    let f = present(field, "LastChecked")?;
    if f.kind != Kind::Str {
        return Err(wrong_type("LastChecked", "string", f.kind));
    }
    let text = unescape(f.token, f.escaped);
    match fields::rfc3339(&text) {
        Ok(us) if us > latest_allowed_us => Err(reject(
            "future_timestamp",
            format!(
                "LastChecked: {} is later than now plus the allowed clock skew \
                 (message from the future)",
                truncate(f.token)
            ),
        )),
        Ok(us) => Ok(us),
        Err(Stamp::Range) => Err(reject(
            "bad_timestamp",
            format!(
                "LastChecked: {} is out of the datetime range (years 1..9999 in UTC)",
                truncate(f.token)
            ),
        )),
        Err(Stamp::Syntax) => Err(reject(
            "bad_timestamp",
            format!(
                "LastChecked: not an RFC 3339 timestamp with offset: {}",
                truncate(f.token)
            ),
        )),
    }
}

fn present<'a>(field: Option<Field<'a>>, name: &str) -> Result<Field<'a>, Rejection> {
    field.filter(|f| f.kind != Kind::Null).ok_or_else(|| {
        reject(
            "missing_field",
            format!("{name}: required field is missing or null"),
        )
    })
}

fn wrong_type(name: &str, expected: &str, got: Kind) -> Rejection {
    reject(
        "wrong_type",
        format!("{name}: expected {expected}, got {}", got.name()),
    )
}

/// The canonical spelling of a known key token.
fn canonical(key_token: &str) -> &'static str {
    let name = unescape(key_token, key_token.contains('\\'));
    KEYS.iter()
        .find(|k| k.eq_ignore_ascii_case(&name))
        .copied()
        .unwrap_or("?")
}

fn show(token: &str) -> &str {
    truncate(token)
}

/// At most `SHOWN` characters of a token, cut on a character boundary.
fn truncate(token: &str) -> &str {
    match token.char_indices().nth(SHOWN) {
        Some((i, _)) => &token[..i],
        None => token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"OrgID":1,"ClusterName":"5d5892d3-1f74-4ccf-91af-548dfc9767aa","LastChecked":"2026-01-01T00:00:00Z","Report":REPORT}"#;

    fn run(report: &str) -> (Result<Row, Rejection>, String) {
        let doc = BASE.replace("REPORT", report);
        let mut out = Vec::new();
        let result = decode(Some(doc.as_bytes()), i64::MAX, &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn utf8_accepts_what_the_standard_library_accepts_and_names_the_same_byte() {
        let long = "é€😀 ".repeat(40); // past one SIMD block, every sequence length
        let mut cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            long.as_bytes().to_vec(),
            b"\xc0\xaf".to_vec(),         // overlong
            b"ab\xed\xa0\x80".to_vec(),   // a surrogate
            b"\xf4\x90\x80\x80".to_vec(), // past U+10FFFF
        ];
        for cut in [1, 2, 3] {
            // a sequence cut short, at the end and in the middle of a long value
            let mut v = long.as_bytes()[..long.len() - cut].to_vec();
            cases.push(v.clone());
            v.extend_from_slice(long.as_bytes());
            cases.push(v);
        }
        for case in cases {
            let std = std::str::from_utf8(&case).map_err(|e| e.valid_up_to());
            assert_eq!(utf8(&case), std, "{case:?}");
        }
    }

    #[test]
    fn the_report_keeps_every_value_as_sent_without_the_dropped_keys() {
        let (row, report) = run(
            r#" { "system" : {"a": 1}, "reports" : [ 1E400 , -1e-400, 123456789012345678901234567890 ], "fingerprints":[], "z": {"b": 1, "a": "\u00e9\n"} , "info": [] } "#,
        );
        assert!(row.is_ok(), "{row:?}");
        assert_eq!(
            report,
            r#"{"reports":[1E400,-1e-400,123456789012345678901234567890],"z":{"b":1,"a":"\u00e9\n"}}"#
        );
    }

    #[test]
    fn a_nul_only_in_a_dropped_key_is_not_stored_so_not_refused() {
        let (row, _) = run(r#"{"system":"\u0000","reports":[],"fingerprints":[]}"#);
        assert!(row.is_ok());
        let (row, _) = run(r#"{"system":{},"reports":["\u0000"],"fingerprints":[]}"#);
        assert_eq!(row.unwrap_err().reason, "unstorable_text");
    }

    /// Every `reject("...")` of this file, read from its text: a new reason is added to
    /// `REASONS` (and so to the module's export) or this test fails.
    #[test]
    fn every_reason_rejected_for_is_listed_and_every_listed_one_is_used() {
        let source = include_str!("message.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let mut used = Vec::new();
        for (at, _) in code.match_indices("reject(") {
            let rest = code[at + "reject(".len()..].trim_start();
            let line = &code[code[..at].rfind('\n').map_or(0, |n| n + 1)..at];
            if line.trim_start().starts_with("//") || line.ends_with("fn ") {
                continue; // a comment, or the definition
            }
            let literal = rest
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .map(|(reason, _)| reason);
            let Some(reason) = literal else {
                panic!("reject( at byte {at} is not given a literal reason");
            };
            assert!(REASONS.contains(&reason), "{reason} is not in REASONS");
            used.push(reason);
        }
        for reason in REASONS {
            assert!(used.contains(&reason), "{reason} is listed but never used");
        }
    }

    #[test]
    fn only_the_expected_version_spelled_as_an_integer_is_expected() {
        for (version, unexpected) in [
            ("2", None),
            ("null", None),
            ("3", Some("3")),
            ("2.0", Some("2.0")),
            ("\"2\"", Some("\"2\"")),
            ("-2", Some("-2")),
        ] {
            let doc = BASE
                .replace("REPORT", r#"{"fingerprints":[],"reports":[],"system":{}}"#)
                .replace("{\"OrgID\"", &format!("{{\"Version\":{version},\"OrgID\""));
            let row = decode(Some(doc.as_bytes()), i64::MAX, &mut Vec::new()).unwrap();
            assert_eq!(row.unexpected_version.as_deref(), unexpected, "{version}");
        }
    }

    #[test]
    fn a_key_repeated_in_another_case_is_ambiguous() {
        let doc = BASE
            .replace("REPORT", "{}")
            .replace("{\"OrgID\":1,", "{\"OrgID\":1,\"orgid\":2,");
        let err = decode(Some(doc.as_bytes()), i64::MAX, &mut Vec::new()).unwrap_err();
        assert_eq!(err.reason, "duplicate_key");
        assert!(
            err.detail
                .starts_with("OrgID: the key appears more than once"),
            "{}",
            err.detail
        );
    }
}
