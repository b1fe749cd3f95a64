//! Generated report messages through `message::decode`, against what serde_json sees in them.
//!
//! Each message holds the contract's fields, each valid or broken in one known way (missing,
//! null, another JSON type, out of range, an unknown spelling), top-level keys in random
//! ASCII case (sometimes spelt with an escape), in random order, with random extra members and
//! sometimes a repeated field. The expected outcome is worked out from serde_json's reading of
//! the message (which members are there, with which JSON types, which integers, which report
//! members and texts): the first broken rule in the contract's order gives the rejection
//! reason; otherwise the row must carry serde's values and the stored report must be serde's
//! `Report` without the dropped keys, every other member kept (repeated ones included).
//!
//! The spelling rules of cluster ids and timestamps are `fields.rs`'s own tests' business;
//! here each generated spelling carries the outcome it must have.

use _native::message::{decode, Row, DROPPED_REPORT_KEYS, REQUIRED_REPORT_KEYS};

use crate::compare::{nuls, serde_members, strip_ws, Members};
use crate::generate::{Gen, Rng};

const LATEST_US: i64 = 2_000_000_000_000_000; // 2033-05-18, "now" plus the allowed skew
const CLUSTER: &str = "5d5892d3-1f74-4ccf-91af-548dfc9767aa";

/// Spellings of `LastChecked` (as JSON tokens) and the microseconds they mean, or the reason.
const STAMPS: &[(&str, Result<i64, &str>)] = &[
    (r#""1970-01-01T00:00:00Z""#, Ok(0)),
    (r#""2000-01-01T00:00:00.5z""#, Ok(946_684_800_500_000)),
    (r#""1970-01-02T00:00:00+01:00""#, Ok(82_800_000_000)),
    (
        r#""2024-02-29t23:59:59.999999999-00:30""#,
        Ok(1_709_252_999_999_999),
    ),
    (r#""1970-01-01T00:00:00\u005a""#, Ok(0)),
    (r#""2024-02-30T00:00:00Z""#, Err("bad_timestamp")),
    (r#""2024-01-01 00:00:00Z""#, Err("bad_timestamp")),
    (r#""9999-12-31T23:59:59Z""#, Err("future_timestamp")),
    ("1700000000", Err("wrong_type")),
    ("null", Err("missing_field")),
];

/// Spellings of `ClusterName` and whether they are a cluster id.
fn cluster_spelling(rng: &mut Rng) -> (String, Result<(), &'static str>) {
    let bare = CLUSTER.replace('-', "");
    let (text, ok) = match rng.below(10) {
        0 => (CLUSTER.to_string(), true),
        1 => (CLUSTER.to_uppercase(), true),
        2 => (format!("{{{CLUSTER}}}"), true),
        3 => (format!("urn:uuid:{CLUSTER}"), true),
        4 => (bare, true),
        5 => (format!("\\u0035{}", &CLUSTER[1..]), true), // '5' as an escape
        6 => (format!(" {CLUSTER}"), false),
        7 => (CLUSTER[1..].to_string(), false),
        8 => return ("4".into(), Err("wrong_type")),
        _ => return ("null".into(), Err("missing_field")),
    };
    (
        format!("\"{text}\""),
        if ok { Ok(()) } else { Err("bad_cluster") },
    )
}

/// An `OrgID`/`AccountNumber` token; serde's reading decides what it means.
fn int_spelling(rng: &mut Rng) -> String {
    let tokens = [
        "0",
        "-0",
        "1",
        "2147483647",
        "2147483648",
        "-1",
        "123456789012345678901",
        "1.0",
        "1e3",
        "\"7\"",
        "true",
        "[]",
        "null",
    ];
    if rng.chance(50) {
        return (rng.below(i32::MAX as usize) + 1).to_string();
    }
    rng.pick(&tokens).to_string()
}

/// A Report object's members (as sent) and whether every required key is among them.
fn report_spelling(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => return "[]".into(),
        1 => return "\"{}\"".into(),
        2 => return "null".into(),
        _ => {}
    }
    let mut keys: Vec<String> = REQUIRED_REPORT_KEYS
        .iter()
        .filter(|_| !rng.chance(5))
        .map(|k| k.to_string())
        .collect();
    for _ in 0..rng.below(4) {
        let key = if rng.chance(50) {
            rng.pick(&DROPPED_REPORT_KEYS).to_string()
        } else {
            rng.pick(&["version", "reports", "Reports", "z", "info "])
                .to_string()
        };
        keys.push(key);
    }
    let mut out = String::from("{");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut gen = Gen {
            rng,
            out: Vec::new(),
            bad: 0,
            lone: 0,
        };
        gen.ws();
        gen.value(2);
        let value = String::from_utf8(gen.out).expect("generated as UTF-8");
        out.push_str(&format!(" \"{key}\" :{value}"));
    }
    out.push('}');
    out
}

/// A key in a random ASCII case, sometimes with its first letter as a `\u` escape.
fn key_spelling(rng: &mut Rng, key: &str) -> String {
    let cased: String = key
        .chars()
        .map(|c| match rng.below(4) {
            0 => c.to_ascii_lowercase(),
            1 => c.to_ascii_uppercase(),
            _ => c,
        })
        .collect();
    if rng.chance(10) {
        let first = cased.as_bytes()[0];
        format!("\"\\u{first:04x}{}\"", &cased[1..])
    } else {
        format!("\"{cased}\"")
    }
}

struct Message {
    text: String,
    cluster: Result<(), &'static str>,
    stamp: Result<i64, &'static str>,
    version: Option<&'static str>,
}

fn message(rng: &mut Rng) -> Message {
    let mut members: Vec<(String, String)> = Vec::new();
    if !rng.chance(5) {
        members.push(("OrgID".into(), int_spelling(rng)));
    }
    if !rng.chance(30) {
        members.push(("AccountNumber".into(), int_spelling(rng)));
    }
    let (cluster_token, cluster) = cluster_spelling(rng);
    members.push(("ClusterName".into(), cluster_token));
    members.push(("Report".into(), report_spelling(rng)));
    let (stamp_token, stamp) = *rng.pick(STAMPS);
    members.push(("LastChecked".into(), stamp_token.into()));
    let version = if rng.chance(50) {
        let token = *rng.pick(&["2", "3", "\"2\"", "2.0", "null", "[2]", "-0"]);
        members.push(("Version".into(), token.into()));
        Some(token)
    } else {
        None
    };
    if rng.chance(70) {
        let id = *rng.pick(&["\"\"", "\"r-1\"", "\"a\\u00e9\"", "17", "null"]);
        members.push(("RequestId".into(), id.into()));
    }
    if rng.chance(50) {
        members.push(("Metadata".into(), r#"{"gathering_time": "x"}"#.into()));
    }
    if rng.chance(5) {
        let i = rng.below(members.len());
        let again = members[i].clone();
        members.push(again); // a field given twice: the message is ambiguous
    }
    for i in (1..members.len()).rev() {
        members.swap(i, rng.below(i + 1));
    }
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}: {v}", key_spelling(rng, k)))
        .collect();
    Message {
        text: format!("{{{}}}", body.join(", ")),
        cluster,
        stamp,
        version,
    }
}

/// The member of the message for a contract key, matched in any ASCII case.
fn field<'m>(top: &'m [(String, Members)], name: &str) -> Option<&'m Members> {
    top.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Ok(None) when missing or null.
fn int32(m: Option<&Members>) -> Result<Option<i32>, &'static str> {
    match m {
        None | Some(Members::Null) => Ok(None),
        Some(Members::Num(n)) if !n.contains(['.', 'e', 'E']) => match n.parse::<i64>() {
            Ok(v) if (0..=i64::from(i32::MAX)).contains(&v) => Ok(Some(v as i32)),
            _ => Err("out_of_range"),
        },
        Some(_) => Err("wrong_type"),
    }
}

/// What `decode` must give, from serde's reading: the row, or the rejection reason.
fn expected(msg: &Message, top: &[(String, Members)]) -> Result<Row, &'static str> {
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
    for key in KEYS {
        if top
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .count()
            > 1
        {
            return Err("duplicate_key");
        }
    }
    let org_id = int32(field(top, "OrgID"))?.ok_or("missing_field")?;
    let account = int32(field(top, "AccountNumber"))?;
    msg.cluster?;
    let report = match field(top, "Report") {
        None | Some(Members::Null) => return Err("missing_field"),
        Some(Members::Obj(members)) => members,
        Some(_) => return Err("wrong_type"),
    };
    let has = |key: &str| report.iter().any(|(k, _)| k == key);
    if !REQUIRED_REPORT_KEYS.iter().all(|k| has(k)) {
        return Err("bad_report");
    }
    let kept = report
        .iter()
        .filter(|(k, _)| !DROPPED_REPORT_KEYS.contains(&k.as_str()));
    if kept
        .map(|(k, v)| k.matches('\0').count() + nuls(v))
        .sum::<usize>()
        > 0
    {
        return Err("unstorable_text");
    }
    let updated_at = msg.stamp?;
    let request_id = match field(top, "RequestId") {
        Some(Members::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let mut cluster = [0; 36];
    cluster.copy_from_slice(CLUSTER.as_bytes());
    Ok(Row {
        org_id,
        account_number: account.unwrap_or(0),
        account_missing: account.is_none(),
        cluster,
        updated_at,
        unexpected_version: msg
            .version
            .filter(|v| !matches!(*v, "2" | "null"))
            .map(str::to_string),
        request_id,
    })
}

/// One message through `decode`, against the expectation; Err describes a disagreement.
fn check_message(msg: &Message) -> Result<&'static str, String> {
    let top = match serde_members(msg.text.as_bytes())? {
        Members::Obj(members) => members,
        other => return Err(format!("generated a non-object {other:?}")),
    };
    let mut report = Vec::new();
    let got = decode(Some(msg.text.as_bytes()), LATEST_US, &mut report);
    match (got, expected(msg, &top)) {
        (Ok(row), Ok(want)) => {
            if row != want {
                return Err(format!("row {row:?}, expected {want:?}"));
            }
            let Some(Members::Obj(sent)) = field(&top, "Report") else {
                unreachable!("checked by expected()")
            };
            let kept: Vec<(String, Members)> = sent
                .iter()
                .filter(|(k, _)| !DROPPED_REPORT_KEYS.contains(&k.as_str()))
                .cloned()
                .collect();
            let stored =
                serde_members(&report).map_err(|e| format!("stored report not JSON: {e}"))?;
            if stored != Members::Obj(kept) {
                return Err(format!(
                    "stored report {:?} is not the sent one without the dropped keys",
                    String::from_utf8_lossy(&report)
                ));
            }
            if strip_ws(&report) != report {
                return Err("the stored report is not compact".into());
            }
            Ok("ok")
        }
        (Err(rejection), Err(reason)) if rejection.reason == reason => Ok(reason),
        (got, want) => Err(format!(
            "decode gave {:?}, expected {want:?}",
            got.map_err(|r| (r.reason, r.detail))
        )),
    }
}

#[test]
fn messages_decode_as_serde_json_reads_them() {
    let seed = crate::env_number("FIDELITY_SEED", 0x5EED_2026);
    let cases = crate::env_number("FIDELITY_CASES", 20_000) / 4;
    let mut rng = Rng(seed);
    let mut outcomes = std::collections::BTreeMap::new();
    for case in 0..cases {
        let msg = message(&mut rng);
        match check_message(&msg) {
            Ok(outcome) => *outcomes.entry(outcome).or_insert(0u64) += 1,
            Err(why) => panic!("seed {seed} message {case}: {why}\nmessage: {}", msg.text),
        }
    }
    println!("seed {seed}: {outcomes:?}");
    // Every outcome must keep being reached, or the test checks less than it says.
    for reason in [
        "ok",
        "duplicate_key",
        "missing_field",
        "wrong_type",
        "out_of_range",
        "bad_cluster",
        "bad_report",
        "unstorable_text",
        "bad_timestamp",
        "future_timestamp",
    ] {
        assert!(
            outcomes.get(reason).copied().unwrap_or(0) >= cases / 200,
            "{reason} reached too rarely: {outcomes:?}"
        );
    }
}
