//! The two readings of a document, the core's and serde_json's, and their comparison.

use _native::json::{unescape, Discard, Kind, Scanner, SyntaxError, MAX_DEPTH};
use serde::Deserialize as _;
use serde_json::value::RawValue;
use serde_json::Value;

pub const DEPTH_ERROR: &str = "nesting deeper than 512 levels";

/// What the core makes of a document: the compact copy, top-level kind, `\u0000` escapes and
/// the first lone surrogate; or why it is not JSON.
pub struct CoreOk {
    pub compact: Vec<u8>,
    pub kind: Kind,
    pub nuls: usize,
    pub lone_surrogate: Option<usize>,
}

pub fn core_scan(doc: &[u8]) -> Result<CoreOk, String> {
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

pub fn serde_raw(doc: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    de.disable_recursion_limit();
    Box::<RawValue>::deserialize(&mut de)
        .and_then(|_| de.end())
        .map_err(|e| e.to_string())
}

pub fn serde_value(doc: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    de.disable_recursion_limit();
    let v = Value::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// The tree as the core's scanner sees it.
#[derive(Debug)]
pub enum Core {
    Null,
    Bool(bool),
    Num(String, Kind),
    Str(String),
    Arr(Vec<Core>),
    Obj(Vec<(String, Core)>),
}

/// The value at `pos` of a document the core accepted, and where it ends. Each value gets a
/// scanner of its own (the document's depth was checked by the whole-document scan).
pub fn core_tree(text: &str, pos: usize) -> Result<(Core, usize), String> {
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

pub fn same(core: &Core, v: &Value, path: &str) -> Result<(), String> {
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
pub fn serde_spelling(token: &str) -> String {
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
#[derive(Clone, Debug, PartialEq)]
pub enum Members {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Members>),
    Obj(Vec<(String, Members)>),
}

/// The map key under which `arbitrary_precision` hands a number to a visitor.
pub const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MembersVisitor)
    }
}

pub struct MembersVisitor;

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

pub fn serde_members(doc: &[u8]) -> Result<Members, String> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    de.disable_recursion_limit();
    let v = Members::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// Every member as sent, repeated keys included.
pub fn same_members(core: &Core, m: &Members, path: &str) -> Result<(), String> {
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

pub fn nuls(m: &Members) -> usize {
    let count = |s: &str| s.matches('\0').count();
    match m {
        Members::Str(s) => count(s),
        Members::Arr(items) => items.iter().map(nuls).sum(),
        Members::Obj(members) => members.iter().map(|(k, v)| count(k) + nuls(v)).sum(),
        _ => 0,
    }
}

pub fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The document without whitespace between tokens, by a walk of its own: the oracle for the
/// compact copy. Only called on documents both sides accepted.
pub fn strip_ws(doc: &[u8]) -> Vec<u8> {
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
pub fn check(doc: &[u8]) -> Result<bool, String> {
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
