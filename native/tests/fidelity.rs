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
//! Cases come from a seeded generator (`FIDELITY_SEED`, default fixed; `FIDELITY_CASES`
//! to run more), so a failure names its seed and case and replays exactly.

use std::panic::{catch_unwind, AssertUnwindSafe};

use _native::json::{unescape, Discard, Kind, Scanner, SyntaxError, MAX_DEPTH};
use serde::Deserialize as _;
use serde_json::value::RawValue;
use serde_json::Value;

const DEPTH_ERROR: &str = "nesting deeper than 512 levels";

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Generation

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "0E-0",
    "1e400",
    "-1e-400",
    "1E+2",
    "1e+0002",
    "123456789012345678901234567890",
    "-123456789012345678901234567890.5e-30",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "5e-324",
    "1.7976931348623157e308",
    "4.9406564584124654e-324",
    "0.1",
    "100",
];

/// Not JSON in any position where a value belongs.
const BAD_VALUES: &[&str] = &[
    "01",
    "00",
    "-01",
    "1.",
    ".1",
    "-",
    "+1",
    "1e",
    "1e+",
    "1.e5",
    "0x10",
    "1_0",
    "NaN",
    "Infinity",
    "-Infinity",
    "tru",
    "nul",
    "True",
    "nulll",
    "'a'",
    "undefined",
    "1.5e",
    "--1",
    "-.5",
    "0.e1",
];

/// Inserted anywhere by the mutator: structure, escapes, whitespace that is not JSON's.
const SNIPPETS: &[&[u8]] = &[
    b"\\u",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\u0000",
    b"\\x",
    b"\\",
    b"\"",
    b",",
    b":",
    b"[",
    b"]",
    b"{",
    b"}",
    b"01",
    b"1.",
    b".1",
    b"-",
    b"e",
    b"E+",
    b"+",
    b"tru",
    b"null",
    b"/* c */",
    b"//",
    b"\x0b",
    b"\x0c",
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"\xc2\xa0",
    b"\xef\xbb\xbf",
    b"\xe2\x80\xa8",
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    b" ",
    b"\t",
    b"\r\n",
];

/// Not allowed inside a string.
const BAD_IN_STRINGS: [&[u8]; 11] = [
    b"\x01",
    b"\x1f",
    b"\t",
    b"\n",
    b"\\x",
    b"\\u12",
    b"\\uZZZZ",
    b"\\U0041",
    b"\\'",
    b"\xff",
    b"\xed\xa0\x80",
];

const INTERESTING_BYTES: &[u8] = &[
    b'"', b'\\', b',', b':', b'[', b']', b'{', b'}', b' ', b'\t', b'\n', b'\r', 0x00, 0x08, 0x1f,
    0x20, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff, b'e', b'E', b'.', b'-',
    b'+', b'0', b'1', b'u', b'n', b't', b'/',
];

struct Gen<'r> {
    rng: &'r mut Rng,
    out: Vec<u8>,
    /// Percent chance that a scalar is replaced by something that is not JSON.
    bad: usize,
    /// Percent chance that a `\u` escape is an unpaired surrogate.
    lone: usize,
}

impl Gen<'_> {
    fn ws(&mut self) {
        if self.rng.chance(60) {
            return;
        }
        for _ in 0..=self.rng.below(3) {
            let c = *self.rng.pick(b" \n\t\r");
            self.out.push(c);
        }
    }

    fn value(&mut self, depth: usize) {
        let kinds = if depth >= 6 { 5 } else { 8 };
        match self.rng.below(kinds) {
            0 => self.number(),
            1 => self.string(),
            2 => {
                let word = *self.rng.pick(&["true", "false", "null"]);
                self.out.extend_from_slice(word.as_bytes());
            }
            3 | 4 => self.string(),
            5 => self.array(depth),
            _ => self.object(depth),
        }
    }

    fn array(&mut self, depth: usize) {
        self.out.push(b'[');
        self.ws();
        let n = self.rng.below(5);
        for i in 0..n {
            if i > 0 {
                self.out.push(b',');
                self.ws();
            }
            self.value(depth + 1);
            self.ws();
        }
        if n > 0 && self.rng.chance(self.bad) {
            self.out.push(b','); // a trailing comma
        }
        self.out.push(b']');
    }

    fn object(&mut self, depth: usize) {
        self.out.push(b'{');
        self.ws();
        let n = self.rng.below(5);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for i in 0..n {
            if i > 0 {
                self.out.push(b',');
                self.ws();
            }
            let start = self.out.len();
            if !keys.is_empty() && self.rng.chance(15) {
                // a repeated key, as sent or spelt with an escape
                let key = self.rng.pick(&keys).clone();
                if key.len() > 2 && key[1].is_ascii_alphanumeric() && self.rng.chance(50) {
                    self.out.push(b'"');
                    self.out
                        .extend_from_slice(format!("\\u{:04X}", key[1]).as_bytes());
                    self.out.extend_from_slice(&key[2..]);
                } else {
                    self.out.extend_from_slice(&key);
                }
            } else if self.rng.chance(self.bad / 2 + 1) && self.bad > 0 {
                self.value(depth + 1); // a key that is not a string
            } else {
                self.string();
            }
            keys.push(self.out[start..].to_vec());
            self.ws();
            if !self.rng.chance(self.bad) {
                self.out.push(b':');
            }
            self.ws();
            self.value(depth + 1);
            self.ws();
        }
        self.out.push(b'}');
    }

    fn number(&mut self) {
        if self.rng.chance(self.bad) {
            let bad = *self.rng.pick(BAD_VALUES);
            self.out.extend_from_slice(bad.as_bytes());
            return;
        }
        if self.rng.chance(30) {
            let n = *self.rng.pick(NUMBERS);
            self.out.extend_from_slice(n.as_bytes());
            return;
        }
        if self.rng.chance(30) {
            self.out.push(b'-');
        }
        if self.rng.chance(20) {
            self.out.push(b'0');
        } else {
            self.out.push(b'1' + self.rng.below(9) as u8);
            self.digits(25);
        }
        if self.rng.chance(30) {
            self.out.push(b'.');
            self.out.push(b'0' + self.rng.below(10) as u8);
            self.digits(20);
        }
        if self.rng.chance(25) {
            let e = *self.rng.pick(&["e", "E", "e+", "e-", "E+", "E-"]);
            self.out.extend_from_slice(e.as_bytes());
            self.out.push(b'0' + self.rng.below(10) as u8);
            self.digits(4);
        }
    }

    fn digits(&mut self, most: usize) {
        for _ in 0..self.rng.below(most) {
            self.out.push(b'0' + self.rng.below(10) as u8);
        }
    }

    fn hex4(&mut self, unit: u32) {
        let text = if self.rng.chance(50) {
            format!("\\u{unit:04x}")
        } else {
            format!("\\u{unit:04X}")
        };
        self.out.extend_from_slice(text.as_bytes());
    }

    fn string(&mut self) {
        self.out.push(b'"');
        for _ in 0..self.rng.below(8) {
            match self.rng.below(12) {
                // plain runs, long enough to cross the scanner's eight-byte steps
                0..=3 => {
                    for _ in 0..self.rng.below(24) {
                        let c = b' ' + self.rng.below(95) as u8;
                        if c != b'"' && c != b'\\' {
                            self.out.push(c);
                        }
                    }
                }
                4 | 5 => {
                    let c = *self.rng.pick(&[
                        "é",
                        "日本",
                        "😀",
                        "\u{2028}",
                        "\u{feff}",
                        "\u{7f}",
                        "Ω≥",
                        "\u{10ffff}",
                    ]);
                    self.out.extend_from_slice(c.as_bytes());
                }
                6 | 7 => {
                    let e = *self
                        .rng
                        .pick(&["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]);
                    self.out.extend_from_slice(e.as_bytes());
                }
                8 => {
                    let unit = loop {
                        let u = self.rng.below(0x1_0000) as u32;
                        if !(0xD800..0xE000).contains(&u) {
                            break u;
                        }
                    };
                    let unit = if self.rng.chance(10) { 0 } else { unit };
                    self.hex4(unit);
                }
                9 => {
                    let high = 0xD800 + self.rng.below(0x400) as u32;
                    let low = 0xDC00 + self.rng.below(0x400) as u32;
                    self.hex4(high);
                    self.hex4(low);
                }
                10 if self.rng.chance(self.lone) => {
                    let unit = if self.rng.chance(50) {
                        0xD800 + self.rng.below(0x400) as u32
                    } else {
                        0xDC00 + self.rng.below(0x400) as u32
                    };
                    self.hex4(unit);
                    if self.rng.chance(30) {
                        let other = 0xD800 + self.rng.below(0x400) as u32;
                        self.hex4(other); // a second high surrogate, or a reversed pair
                    }
                }
                11 if self.rng.chance(self.bad) => {
                    let bad = *self.rng.pick(&BAD_IN_STRINGS);
                    self.out.extend_from_slice(bad);
                }
                _ => self.out.push(b'a'),
            }
        }
        self.out.push(b'"');
    }
}

fn mutate(rng: &mut Rng, doc: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        let at = rng.below(doc.len() + 1);
        match rng.below(7) {
            0 if at < doc.len() => doc[at] = *rng.pick(INTERESTING_BYTES),
            1 if at < doc.len() => doc[at] = rng.below(256) as u8,
            2 => doc.truncate(at),
            3 => {
                let snippet = *rng.pick(SNIPPETS);
                doc.splice(at..at, snippet.iter().copied());
            }
            4 => {
                let end = (at + 1 + rng.below(4)).min(doc.len());
                doc.drain(at.min(end)..end);
            }
            5 => {
                let end = (at + 1 + rng.below(8)).min(doc.len());
                let part = doc[at.min(end)..end].to_vec();
                doc.splice(at..at, part);
            }
            _ if at + 1 < doc.len() => doc.swap(at, at + 1),
            _ => doc.push(*rng.pick(INTERESTING_BYTES)),
        }
    }
}

/// One document of the run: valid most of the time before mutation.
fn document(rng: &mut Rng) -> Vec<u8> {
    let bad = if rng.chance(20) { 3 } else { 0 };
    let lone = if rng.chance(10) { 30 } else { 0 };
    let mut gen = Gen {
        rng,
        out: Vec::new(),
        bad,
        lone,
    };
    gen.ws();
    if gen.rng.chance(2) {
        // near the depth limit, either side of it
        let depth = MAX_DEPTH - 2 + gen.rng.below(5);
        let (open, close) = if gen.rng.chance(50) {
            ("[", "]")
        } else {
            ("{\"k\":", "}")
        };
        gen.out.extend_from_slice(open.repeat(depth).as_bytes());
        gen.value(6);
        gen.out.extend_from_slice(close.repeat(depth).as_bytes());
    } else {
        gen.value(0);
    }
    gen.ws();
    let mut doc = gen.out;
    if rng.chance(40) {
        mutate(rng, &mut doc);
    }
    doc
}

// ---------------------------------------------------------------------------------------------
// The two sides

/// What the core makes of a document: the compact copy, top-level kind, `\u0000` escapes and
/// the first lone surrogate; or why it is not JSON.
struct CoreOk {
    compact: Vec<u8>,
    kind: Kind,
    nuls: usize,
    lone_surrogate: Option<usize>,
}

fn core_scan(doc: &[u8]) -> Result<CoreOk, String> {
    let text = std::str::from_utf8(doc).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut sc = Scanner::new(text.as_bytes());
    let mut compact = Vec::new();
    let done = sc
        .value(&mut compact)
        .and_then(|kind| sc.end().map(|()| kind));
    let done = done.map(|kind| CoreOk {
        compact,
        kind,
        nuls: sc.nuls,
        lone_surrogate: sc.lone_surrogate,
    });
    // The one-piece copy must agree with the token-by-token one, failure included.
    let mut other = Scanner::new(text.as_bytes());
    let mut one = Vec::new();
    let again = other
        .value_compact(&mut one)
        .and_then(|kind| other.end().map(|()| kind));
    match (&done, again) {
        (Ok(ok), Ok(kind)) => {
            if one != ok.compact || kind != ok.kind {
                return Err("INCONSISTENT: value_compact differs from value".into());
            }
            if (other.nuls, other.lone_surrogate) != (ok.nuls, ok.lone_surrogate) {
                return Err("INCONSISTENT: value_compact's notes differ from value's".into());
            }
        }
        (Err(a), Err(b)) if a == &b => {}
        (a, b) => {
            return Err(format!(
                "INCONSISTENT: value gave {:?}, value_compact {:?}",
                a.as_ref().map(|_| ()),
                b.map(|_| ())
            ))
        }
    }
    done.map_err(|SyntaxError { what, at }| {
        assert!(at <= doc.len(), "error position {at} past the end");
        format!("{what} at byte {at}")
    })
}

fn serde_raw(doc: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    de.disable_recursion_limit();
    Box::<RawValue>::deserialize(&mut de)
        .and_then(|_| de.end())
        .map_err(|e| e.to_string())
}

fn serde_value(doc: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    de.disable_recursion_limit();
    let v = Value::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// The tree as the core's scanner sees it.
#[derive(Debug)]
enum Core {
    Null,
    Bool(bool),
    Num(String, Kind),
    Str(String),
    Arr(Vec<Core>),
    Obj(Vec<(String, Core)>),
}

/// The value at `pos` of a document the core accepted, and where it ends. Each value gets a
/// scanner of its own (the document's depth was checked by the whole-document scan).
fn core_tree(text: &str, pos: usize) -> Result<(Core, usize), String> {
    let buf = text.as_bytes();
    let mut sc = Scanner::new(buf);
    sc.pos = pos;
    sc.ws();
    let start = sc.pos;
    let fail = |e: SyntaxError| format!("re-walk failed: {} at {}", e.what, e.at);
    match buf.get(start) {
        Some(b'{') => {
            sc.begin(b'{').map_err(fail)?;
            let mut members = Vec::new();
            let mut first = true;
            while let Some(key) = sc.next_member(&mut first).map_err(fail)? {
                let token = &text[key.start..key.end];
                if key.escaped != token.contains('\\') {
                    return Err(format!("key {token} escaped={}", key.escaped));
                }
                let (value, end) = core_tree(text, sc.pos)?;
                sc.pos = end;
                members.push((unescape(token, key.escaped).into_owned(), value));
            }
            Ok((Core::Obj(members), sc.pos))
        }
        Some(b'[') => {
            let mut items = Vec::new();
            let mut at = start + 1;
            loop {
                let mut p = Scanner::new(buf);
                p.pos = at;
                p.ws();
                if items.is_empty() && buf.get(p.pos) == Some(&b']') {
                    return Ok((Core::Arr(items), p.pos + 1));
                }
                let (item, end) = core_tree(text, p.pos)?;
                items.push(item);
                p.pos = end;
                p.ws();
                match buf.get(p.pos) {
                    Some(b',') => at = p.pos + 1,
                    Some(b']') => return Ok((Core::Arr(items), p.pos + 1)),
                    _ => return Err(format!("re-walk: no ',' or ']' at {}", p.pos)),
                }
            }
        }
        _ => {
            let kind = sc.value(&mut Discard).map_err(fail)?;
            let token = &text[start..sc.pos];
            let value = match kind {
                Kind::Null => Core::Null,
                Kind::Bool => Core::Bool(token == "true"),
                Kind::Int | Kind::Float => Core::Num(token.to_string(), kind),
                Kind::Str => Core::Str(unescape(token, token.contains('\\')).into_owned()),
                Kind::Array | Kind::Object => return Err(format!("{kind:?} from a scalar")),
            };
            Ok((value, sc.pos))
        }
    }
}

fn same(core: &Core, v: &Value, path: &str) -> Result<(), String> {
    let differ = || Err(format!("at {path}: core {core:?}, serde {v}"));
    match (core, v) {
        (Core::Null, Value::Null) => Ok(()),
        (Core::Bool(a), Value::Bool(b)) if a == b => Ok(()),
        (Core::Num(token, kind), Value::Number(n)) => {
            let lexeme = n.as_str();
            let float = lexeme.contains(['.', 'e', 'E']);
            if serde_spelling(token) != lexeme || (*kind == Kind::Float) != float {
                return differ();
            }
            Ok(())
        }
        (Core::Str(a), Value::String(b)) if a == b => Ok(()),
        (Core::Arr(items), Value::Array(values)) if items.len() == values.len() => items
            .iter()
            .zip(values)
            .enumerate()
            .try_for_each(|(i, (c, v))| same(c, v, &format!("{path}[{i}]"))),
        (Core::Obj(members), Value::Object(map)) => {
            // serde's Map (preserve_order): first position of a key, last value.
            let mut folded: Vec<(&str, &Core)> = Vec::new();
            for (key, value) in members {
                match folded.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = value,
                    None => folded.push((key, value)),
                }
            }
            if folded.len() != map.len() {
                return differ();
            }
            for ((ck, cv), (sk, sv)) in folded.iter().zip(map) {
                if ck != sk {
                    return Err(format!("at {path}: key {ck:?} where serde has {sk:?}"));
                }
                same(cv, sv, &format!("{path}.{sk}"))?;
            }
            Ok(())
        }
        _ => differ(),
    }
}

/// A number token as serde_json's `arbitrary_precision` keeps it: the exact text, except that
/// the exponent mark is written `e` and its sign always (`1E5` is kept as `1e+5`).
fn serde_spelling(token: &str) -> String {
    match token.find(['e', 'E']) {
        Some(at) => {
            let (mantissa, exponent) = (&token[..at], &token[at + 1..]);
            let sign = if exponent.starts_with(['+', '-']) {
                ""
            } else {
                "+"
            };
            format!("{mantissa}e{sign}{exponent}")
        }
        None => token.to_string(),
    }
}

/// serde_json's reading of a document with every object member kept, repeated keys included,
/// in document order: serde's own walk, without its `Map` folding repeated keys.
#[derive(Debug, PartialEq)]
enum Members {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Members>),
    Obj(Vec<(String, Members)>),
}

/// The map key under which `arbitrary_precision` hands a number to a visitor.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> serde::de::Visitor<'de> for MembersVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Members, E> {
        Ok(Members::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Members, E> {
        Ok(Members::Bool(b))
    }
    // Integers that fit come as numbers; their decimal text is the token (JSON has no leading
    // zeros or '+', and serde hands `-0` over as text).
    fn visit_u64<E>(self, n: u64) -> Result<Members, E> {
        Ok(Members::Num(n.to_string()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Members, E> {
        Ok(Members::Num(n.to_string()))
    }
    fn visit_str<E>(self, s: &str) -> Result<Members, E> {
        Ok(Members::Str(s.to_string()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Members, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Members::Arr(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_TOKEN {
                return Ok(Members::Num(map.next_value()?));
            }
            members.push((key, map.next_value()?));
        }
        Ok(Members::Obj(members))
    }
}

fn serde_members(doc: &[u8]) -> Result<Members, String> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    de.disable_recursion_limit();
    let v = Members::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// Every member as sent, repeated keys included.
fn same_members(core: &Core, m: &Members, path: &str) -> Result<(), String> {
    let differ = || Err(format!("at {path}: core {core:?}, serde {m:?}"));
    match (core, m) {
        (Core::Null, Members::Null) => Ok(()),
        (Core::Bool(a), Members::Bool(b)) if a == b => Ok(()),
        (Core::Num(token, _), Members::Num(lexeme)) if serde_spelling(token) == *lexeme => Ok(()),
        (Core::Str(a), Members::Str(b)) if a == b => Ok(()),
        (Core::Arr(items), Members::Arr(values)) if items.len() == values.len() => items
            .iter()
            .zip(values)
            .enumerate()
            .try_for_each(|(i, (c, v))| same_members(c, v, &format!("{path}[{i}]"))),
        (Core::Obj(members), Members::Obj(others)) if members.len() == others.len() => members
            .iter()
            .zip(others)
            .try_for_each(|((ck, cv), (sk, sv))| {
                if ck != sk {
                    return Err(format!("at {path}: key {ck:?} where serde has {sk:?}"));
                }
                same_members(cv, sv, &format!("{path}.{sk}"))
            }),
        _ => differ(),
    }
}

fn nuls(m: &Members) -> usize {
    let count = |s: &str| s.matches('\0').count();
    match m {
        Members::Str(s) => count(s),
        Members::Arr(items) => items.iter().map(nuls).sum(),
        Members::Obj(members) => members.iter().map(|(k, v)| count(k) + nuls(v)).sum(),
        _ => 0,
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The document without whitespace between tokens, by a walk of its own: the oracle for the
/// compact copy. Only called on documents both sides accepted.
fn strip_ws(doc: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(doc.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in doc {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(b);
            in_string = b == b'"';
        }
    }
    out
}

/// Ok(true) when the document is JSON (both sides agreeing), Ok(false) when it is not.
fn check(doc: &[u8]) -> Result<bool, String> {
    let core = core_scan(doc);
    if let Err(e) = &core {
        if e.starts_with("INCONSISTENT") {
            return Err(e.clone());
        }
    }
    let raw = serde_raw(doc);
    let core = match (core, raw) {
        (Err(_), Err(_)) => return Ok(false),
        (Ok(core), Ok(())) => core,
        (Err(e), Ok(())) => {
            // Only the depth limit may refuse what serde reads, and only a deep document.
            let deep = serde_value(doc).map(|v| depth(&v) > MAX_DEPTH);
            if e.starts_with(DEPTH_ERROR) && deep != Ok(false) {
                return Ok(false);
            }
            return Err(format!("the core refuses ({e}), serde accepts"));
        }
        (Ok(_), Err(e)) => return Err(format!("the core accepts, serde refuses ({e})")),
    };
    let value = serde_value(doc);
    let value = match (value, core.lone_surrogate) {
        (Ok(v), None) => v,
        (Err(e), Some(_)) if e.contains("surrogate") || e.contains("hex escape") => {
            return Ok(true)
        }
        (Err(e), None) => return Err(format!("serde cannot decode ({e}), core noted nothing")),
        (v, Some(at)) => {
            return Err(format!(
                "core notes a lone surrogate at {at}, serde gives {:?}",
                v.map(|_| ())
            ))
        }
    };
    if depth(&value) > MAX_DEPTH {
        return Err("the core accepts a document deeper than its limit".into());
    }
    let text = std::str::from_utf8(doc).expect("checked by the core");
    let (tree, end) = core_tree(text, 0)?;
    same(&tree, &value, "$")?;
    let members = serde_members(doc)?;
    same_members(&tree, &members, "$")?;
    let mut rest = Scanner::new(doc);
    rest.pos = end;
    rest.end()
        .map_err(|e| format!("re-walk ended early: {}", e.what))?;
    if core.nuls != nuls(&members) {
        return Err(format!(
            "core counts {} NULs, serde {}",
            core.nuls,
            nuls(&members)
        ));
    }
    if core.compact != strip_ws(doc) {
        return Err(format!(
            "compact copy {:?} is not the document without whitespace",
            String::from_utf8_lossy(&core.compact)
        ));
    }
    let expected_kind = match &value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.as_str().contains(['.', 'e', 'E']) => Kind::Float,
        Value::Number(_) => Kind::Int,
        Value::String(_) => Kind::Str,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    };
    if core.kind != expected_kind {
        return Err(format!("kind {:?}, serde {expected_kind:?}", core.kind));
    }
    if serde_value(&core.compact) != Ok(value) {
        return Err("serde reads the compact copy differently".into());
    }
    Ok(true)
}

fn show(doc: &[u8]) -> String {
    let text = String::from_utf8_lossy(doc);
    if text.len() > 600 {
        let cut: String = text.chars().take(600).collect();
        format!("{cut:?}... ({} bytes)", doc.len())
    } else {
        format!("{text:?} (bytes {doc:?})")
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` generated documents; returns (valid, invalid) counts or the first failure.
fn run(seed: u64, cases: u64) -> Result<(u64, u64), String> {
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
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
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
