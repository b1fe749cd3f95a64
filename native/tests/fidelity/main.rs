//! The JSON scanner against an independent parser (serde_json), on generated and mutated
//! documents: they must agree on what is JSON and, for JSON, on every value.
//!
//! What is compared, for each document (bytes, possibly not UTF-8):
//!
//! - **Grammar**: the core (UTF-8 check, as `message::decode` does first, then `Scanner::value`
//!   and `end`) accepts exactly what serde_json accepts as a raw value (`Box<RawValue>`: the
//!   RFC 8259 grammar, UTF-8 checked, escapes checked but `\u` surrogates not paired).
//!   One difference is by design: the core refuses nesting deeper than `MAX_DEPTH` (512); serde
//!   runs without a depth limit here, so a document it accepts that is deeper than 512 must be
//!   refused by the core with the depth error, and only then may they disagree.
//! - **Lone surrogates**: a grammatical document holding a `\u` surrogate escape without its
//!   pair is valid RFC 8259 text that no Unicode string can hold; serde refuses it when it
//!   decodes strings, the core accepts it and notes where (`lone_surrogate`), so a message
//!   with one is rejected as `unstorable_text`. So: serde decodes the document into a `Value`
//!   exactly when the core accepted it and noted no lone surrogate.
//! - **Values**: the tree the core's scanner sees (objects through `begin`/`next_member`,
//!   scalars through `value`, strings decoded by `unescape`) equals serde's `Value`: numbers
//!   by their lexeme (serde keeps it with `arbitrary_precision`, only writing the exponent as
//!   `e` with its sign: `1E400` as `1e+400`) and integer/float kind,
//!   strings by decoded text, arrays element by element, objects member by member in order.
//!   Repeated keys: serde (`preserve_order`) keeps one member per key, at the key's first
//!   position, with the last value; the core keeps every member as sent. The core's members
//!   are folded the same way before comparing that. Then, member by member with repeated keys
//!   kept, against serde's own walk of the document (a visitor of ours instead of its `Map`).
//! - **Compact copy**: `value` copies the document without the whitespace between tokens and
//!   nothing else changed (checked against a whitespace stripper written here, and by serde
//!   reading the copy back to the same `Value`); `value_compact` gives the same bytes and
//!   state; the `\u0000` count equals the NULs in serde's decoded keys and strings.
//!
//! `messages.rs` does the same one level up: generated report messages through
//! `message::decode` against serde_json's reading of them.
//!
//! Cases come from a seeded generator (`generate.rs`; `FIDELITY_SEED`, default fixed;
//! `FIDELITY_CASES`, default 20000 documents and a quarter as many messages), so a failure names
//! its seed and case and replays exactly: `FIDELITY_SEED=7 FIDELITY_CASES=500000 cargo test
//! --manifest-path native/Cargo.toml --test fidelity` searches further.

mod compare;
mod generate;
mod messages;

use std::panic::{catch_unwind, AssertUnwindSafe};

use _native::json::MAX_DEPTH;

use compare::{check, core_scan, serde_raw, DEPTH_ERROR};
use generate::{document, Rng};

pub fn show(doc: &[u8]) -> String {
    let text = String::from_utf8_lossy(doc);
    if text.len() > 600 {
        let cut: String = text.chars().take(600).collect();
        format!("{cut:?}... ({} bytes)", doc.len())
    } else {
        format!("{text:?} (bytes {doc:?})")
    }
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` generated documents; returns (valid, invalid) counts or the first failure.
pub fn run(seed: u64, cases: u64) -> Result<(u64, u64), String> {
    let mut rng = Rng(seed);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..cases {
        let doc = document(&mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&doc)))
            .unwrap_or_else(|_| Err("panicked".into()));
        match outcome {
            Ok(true) => valid += 1,
            Ok(false) => invalid += 1,
            Err(why) => {
                return Err(format!(
                    "seed {seed} case {case}: {why}\ndocument: {}",
                    show(&doc)
                ))
            }
        }
    }
    Ok((valid, invalid))
}

/// In a thread with a large stack: both walks recurse once per nesting level, 512 deep.
pub fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no panic escapes")
}

#[test]
fn the_scanner_agrees_with_serde_json_on_generated_documents() {
    let seed = env_number("FIDELITY_SEED", 0x5EED_2026);
    let cases = env_number("FIDELITY_CASES", 20_000);
    let (valid, invalid) = on_big_stack(move || run(seed, cases)).unwrap_or_else(|e| panic!("{e}"));
    println!("seed {seed}: {cases} documents, {valid} JSON, {invalid} not");
    // The generator must keep producing both kinds, or the test checks less than it says.
    assert!(valid > cases / 3, "only {valid} valid documents of {cases}");
    assert!(
        invalid > cases / 5,
        "only {invalid} invalid documents of {cases}"
    );
}

/// Fixed documents for the edges the brief of this test names; each must agree like the rest.
#[test]
fn edge_documents_agree() {
    let docs: Vec<Vec<u8>> = [
        "-0",
        "1e400",
        "-1e-400",
        "01",
        "1.",
        ".1",
        "-",
        "1e",
        "1E+2",
        "0e0",
        "[-0.0]",
        " \t\n\r1",
        "\u{feff}1",
        "\u{a0}1",
        "\x0c1",
        "\x0b1",
        "1 2",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\ud800\"",
        "\"\\udc00\\ud800\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud800\\n\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800\\uZZZZ\"",
        "\"\\ud800\\",
        "\"\\u0000\"",
        "\"\x00\"",
        "\"\x1f\"",
        "\"\x7f\"",
        "\"\t\"",
        "\"\\/\"",
        "\"\\U0041\"",
        "\"\\u00e9\"",
        "\"\\u00E9\"",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"\\u0061\":2,\"b\":3}",
        "[1,]",
        "{\"a\":1,}",
        "[",
        "]",
        "{",
        "\"",
        "",
        " ",
        "null",
        "nul",
        "truefalse",
        "[true false]",
        "{\"a\"}",
        "{\"a\":}",
        "{1:2}",
        "[\"\u{2028}\"]",
    ]
    .iter()
    .map(|d| d.as_bytes().to_vec())
    .chain([
        b"\"\xff\"".to_vec(),
        b"\"\xc0\x80\"".to_vec(),
        b"\"\xed\xa0\x80\"".to_vec(),
        b"\"\xf4\x90\x80\x80\"".to_vec(),
        b"\"\xe2\x82\"".to_vec(),
        b"[\"a\"]\xff".to_vec(),
    ])
    .chain((MAX_DEPTH - 1..=MAX_DEPTH + 1).flat_map(|d| {
        [
            format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes(),
            format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d)).into_bytes(),
        ]
    }))
    .collect();
    on_big_stack(move || {
        for doc in &docs {
            let outcome = catch_unwind(AssertUnwindSafe(|| check(doc)))
                .unwrap_or_else(|_| Err("panicked".into()));
            if let Err(why) = outcome {
                panic!("{why}\ndocument: {}", show(doc));
            }
        }
    });
}

#[test]
fn the_depth_limit_is_the_only_refusal_of_valid_json() {
    on_big_stack(depth_limit);
}

fn depth_limit() {
    for (depth, ok) in [(MAX_DEPTH, true), (MAX_DEPTH + 1, false)] {
        let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let core = core_scan(doc.as_bytes());
        assert_eq!(core.is_ok(), ok, "depth {depth}");
        if !ok {
            assert!(core.err().unwrap().starts_with(DEPTH_ERROR));
        }
        assert!(serde_raw(doc.as_bytes()).is_ok());
    }
}
