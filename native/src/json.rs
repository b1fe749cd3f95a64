//! Strict JSON (RFC 8259) scanning that keeps every value exactly as sent.
//!
//! The scanner walks a document once over input already checked to be UTF-8. It validates
//! the grammar, reports each value's kind and byte span, and can copy a value compactly into
//! a buffer while it walks: whitespace between tokens is left out, everything else (number
//! spelling, string escapes, key order, repeated keys) is copied byte for byte. Nothing is
//! ever parsed into numbers or re-serialised, so no value can change on its way through.
//!
//! It also notes two things a valid document can hold that PostgreSQL or a reader cannot
//! store: `\u0000` escapes (counted, so a caller can tell which value held one) and lone
//! UTF-16 surrogates (the first one's byte position).

use std::borrow::Cow;

/// Deeper documents are refused rather than risking the stack of the calling thread.
pub const MAX_DEPTH: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Array,
    Object,
}

impl Kind {
    /// The name used in rejection details ("expected integer, got string").
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Int => "integer",
            Kind::Float => "float",
            Kind::Str => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

/// Why a document is not JSON, and the byte offset where that was found.
#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub what: &'static str,
    pub at: usize,
}

/// Where compact output goes: a buffer, or nowhere when a value is only validated.
pub trait Out {
    fn byte(&mut self, b: u8);
    fn bytes(&mut self, s: &[u8]);
    /// The whitespace at `buf[start..end]`, between two tokens, was skipped.
    #[inline]
    fn gap(&mut self, _buf: &[u8], _start: usize, _end: usize) {}
}

impl Out for Vec<u8> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }
    #[inline]
    fn bytes(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
}

/// Validation only.
pub struct Discard;

impl Out for Discard {
    #[inline]
    fn byte(&mut self, _: u8) {}
    #[inline]
    fn bytes(&mut self, _: &[u8]) {}
}

/// The walked text copied in runs: everything between two gaps of whitespace in one copy (the
/// tokens of a run are the text itself), so a value without whitespace is a single copy and a
/// value with some is still walked once.
struct Runs<'o> {
    out: &'o mut Vec<u8>,
    /// Where the run not yet copied begins.
    from: usize,
}

impl Out for Runs<'_> {
    #[inline]
    fn byte(&mut self, _: u8) {}
    #[inline]
    fn bytes(&mut self, _: &[u8]) {}
    #[inline]
    fn gap(&mut self, buf: &[u8], start: usize, end: usize) {
        self.out.extend_from_slice(&buf[self.from..start]);
        self.from = end;
    }
}

/// An object key: the span of its JSON string including the quotes.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
}

pub struct Scanner<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
    /// `\u0000` escapes seen so far.
    pub nuls: usize,
    /// Byte offset of the first lone surrogate escape seen.
    pub lone_surrogate: Option<usize>,
    depth: usize,
}

type Result<T> = std::result::Result<T, SyntaxError>;

impl<'a> Scanner<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Scanner {
            buf,
            pos: 0,
            nuls: 0,
            lone_surrogate: None,
            depth: 0,
        }
    }

    fn err<T>(&self, what: &'static str) -> Result<T> {
        Err(SyntaxError { what, at: self.pos })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    pub fn ws(&mut self) {
        self.ws_to(&mut Discard);
    }

    /// `ws`, telling `out` of the whitespace skipped.
    #[inline]
    fn ws_to<O: Out>(&mut self, out: &mut O) {
        let start = self.pos;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
        if self.pos != start {
            out.gap(self.buf, start, self.pos);
        }
    }

    /// After the top-level value: only whitespace may follow.
    pub fn end(&mut self) -> Result<()> {
        self.ws();
        if self.pos < self.buf.len() {
            return self.err("unexpected content after the document");
        }
        Ok(())
    }

    /// One value at the current position (leading whitespace skipped), copied compactly to
    /// `out`; returns its kind.
    pub fn value<O: Out>(&mut self, out: &mut O) -> Result<Kind> {
        self.ws_to(out);
        let start = self.pos;
        match self.peek() {
            Some(b'{') => {
                self.begin(b'{')?;
                out.byte(b'{');
                let mut first = true;
                let mut wrote = false;
                while let Some(key) = self.next_member_to(&mut first, out)? {
                    if wrote {
                        out.byte(b',');
                    }
                    wrote = true;
                    out.bytes(&self.buf[key.start..key.end]);
                    out.byte(b':');
                    self.value(out)?;
                }
                out.byte(b'}');
                Ok(Kind::Object)
            }
            Some(b'[') => {
                self.begin(b'[')?;
                out.byte(b'[');
                self.ws_to(out);
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    self.depth -= 1;
                } else {
                    loop {
                        self.value(out)?;
                        self.ws_to(out);
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                out.byte(b',');
                            }
                            Some(b']') => {
                                self.pos += 1;
                                self.depth -= 1;
                                break;
                            }
                            _ => return self.err("expected ',' or ']' in an array"),
                        }
                    }
                }
                out.byte(b']');
                Ok(Kind::Array)
            }
            Some(b'"') => {
                self.string()?;
                out.bytes(&self.buf[start..self.pos]);
                Ok(Kind::Str)
            }
            Some(b'-' | b'0'..=b'9') => {
                let kind = self.number()?;
                out.bytes(&self.buf[start..self.pos]);
                Ok(kind)
            }
            Some(b't') => self.literal(b"true", Kind::Bool, out),
            Some(b'f') => self.literal(b"false", Kind::Bool, out),
            Some(b'n') => self.literal(b"null", Kind::Null, out),
            None => self.err("unexpected end of the document"),
            Some(_) => self.err("expected a value"),
        }
    }

    /// `value`, copied compactly into `out` in one walk: in one piece when it holds no
    /// whitespace between its tokens (what most producers send), else in one piece per run
    /// between two gaps (Python's `json.dumps` puts a space after every `,` and `:`).
    pub fn value_compact(&mut self, out: &mut Vec<u8>) -> Result<Kind> {
        self.ws();
        let mut runs = Runs {
            out,
            from: self.pos,
        };
        let kind = self.value(&mut runs)?;
        runs.out.extend_from_slice(&self.buf[runs.from..self.pos]);
        Ok(kind)
    }

    /// Enter an object or array whose opening byte is at the current position.
    pub fn begin(&mut self, open: u8) -> Result<()> {
        if self.peek() != Some(open) {
            return self.err("expected an object");
        }
        if self.depth >= MAX_DEPTH {
            return self.err("nesting deeper than 512 levels");
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    /// The next member's key of the object being walked, positioned at its value; `None`
    /// after the closing brace. `first` is true before the first member.
    pub fn next_member(&mut self, first: &mut bool) -> Result<Option<Key>> {
        self.next_member_to(first, &mut Discard)
    }

    /// `next_member`, telling `out` of the whitespace skipped.
    fn next_member_to<O: Out>(&mut self, first: &mut bool, out: &mut O) -> Result<Option<Key>> {
        self.ws_to(out);
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(None);
            }
            Some(b',') if !*first => {
                self.pos += 1;
                self.ws_to(out);
            }
            _ if *first => {}
            _ => return self.err("expected ',' or '}' in an object"),
        }
        *first = false;
        if self.peek() != Some(b'"') {
            return self.err("expected a string key in an object");
        }
        let start = self.pos;
        let escaped = self.string()?;
        let key = Key {
            start,
            end: self.pos,
            escaped,
        };
        self.ws_to(out);
        if self.peek() != Some(b':') {
            return self.err("expected ':' after an object key");
        }
        self.pos += 1;
        Ok(Some(key))
    }

    /// A string at the current position (on its opening quote); true when it holds escapes.
    fn string(&mut self) -> Result<bool> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            self.skip_plain();
            let Some(&b) = self.buf.get(self.pos) else {
                return self.err("unterminated string");
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0..=0x1f => return self.err("unescaped control character in a string"),
                _ => self.pos += 1,
            }
        }
    }

    /// Skip string bytes that need no attention (not `"`, `\\` or a control character). The
    /// strings of a report are short (7 bytes median) but most of its bytes are in long ones
    /// (a third in strings of 64 bytes or more): the first eight bytes are checked as one word,
    /// which ends most strings at once, and a string still going is then scanned sixteen
    /// bytes at a time.
    #[inline]
    fn skip_plain(&mut self) {
        if let Some(chunk) = self.buf.get(self.pos..self.pos + 8) {
            let hit = plain_word(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
            if hit != 0 {
                self.pos += (hit.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
            self.skip_plain_long();
        }
    }

    /// `skip_plain` past the first word: sixteen bytes at a time with SSE2 (part of every
    /// x86-64 processor), then words of eight.
    fn skip_plain_long(&mut self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
                _mm_or_si128, _mm_set1_epi8,
            };
            // SAFETY: SSE2 is in the x86-64 baseline; every load reads 16 bytes inside `buf`.
            unsafe {
                let quote = _mm_set1_epi8(b'"' as i8);
                let slash = _mm_set1_epi8(b'\\' as i8);
                let control = _mm_set1_epi8(0x1f);
                while self.pos + 16 <= self.buf.len() {
                    let v = _mm_loadu_si128(self.buf.as_ptr().add(self.pos).cast::<__m128i>());
                    // a byte is a control character when min(byte, 0x1f) is the byte itself
                    let hit = _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                        _mm_cmpeq_epi8(_mm_min_epu8(v, control), v),
                    );
                    let mask = _mm_movemask_epi8(hit) as u32;
                    if mask != 0 {
                        self.pos += mask.trailing_zeros() as usize;
                        return;
                    }
                    self.pos += 16;
                }
            }
        }
        while let Some(chunk) = self.buf.get(self.pos..self.pos + 8) {
            let hit = plain_word(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
            if hit != 0 {
                self.pos += (hit.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
    }

    fn escape(&mut self) -> Result<()> {
        let at = self.pos;
        match self.buf.get(self.pos + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                let unit = self.hex4(self.pos + 2)?;
                self.pos += 6;
                match unit {
                    0 => self.nuls += 1,
                    0xD800..=0xDBFF => {
                        let low = if self.buf.get(self.pos..self.pos + 2) == Some(b"\\u") {
                            self.hex4(self.pos + 2).ok()
                        } else {
                            None
                        };
                        if matches!(low, Some(0xDC00..=0xDFFF)) {
                            self.pos += 6;
                        } else {
                            self.lone_surrogate.get_or_insert(at);
                        }
                    }
                    0xDC00..=0xDFFF => {
                        self.lone_surrogate.get_or_insert(at);
                    }
                    _ => {}
                }
                Ok(())
            }
            _ => self.err("invalid escape in a string"),
        }
    }

    fn hex4(&self, at: usize) -> Result<u32> {
        let digits = self.buf.get(at..at + 4).ok_or(SyntaxError {
            what: "invalid \\u escape in a string",
            at: self.pos,
        })?;
        let mut unit = 0;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or(SyntaxError {
                what: "invalid \\u escape in a string",
                at: self.pos,
            })?;
            unit = unit * 16 + v;
        }
        Ok(unit)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Kind> {
        let mut kind = Kind::Int;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            kind = Kind::Float;
            if self.digits() == 0 {
                return self.err("invalid number: no digit after the decimal point");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            kind = Kind::Float;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number: no digit in the exponent");
            }
        }
        Ok(kind)
    }

    fn literal<O: Out>(&mut self, word: &'static [u8], kind: Kind, out: &mut O) -> Result<Kind> {
        if self.buf.get(self.pos..self.pos + word.len()) != Some(word) {
            return self.err("expected a value");
        }
        self.pos += word.len();
        out.bytes(word);
        Ok(kind)
    }
}

/// The text of a JSON string token (with its quotes), escapes resolved. A lone surrogate
/// becomes U+FFFD: such a message is rejected anyway, the text is only compared or shown.
pub fn unescape(token: &str, escaped: bool) -> Cow<'_, str> {
    let inner = &token[1..token.len() - 1];
    if !escaped {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut units = inner.char_indices();
    let bytes = inner.as_bytes();
    let hex = |at: usize| u32::from_str_radix(&inner[at..at + 4], 16).unwrap_or(0xFFFD);
    while let Some((i, c)) = units.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = units.next().unwrap_or((i, '\\'));
        match e {
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let mut unit = hex(i + 2);
                for _ in 0..4 {
                    units.next();
                }
                if (0xD800..0xDC00).contains(&unit) && bytes.get(i + 6..i + 8) == Some(b"\\u") {
                    let low = hex(i + 8);
                    if (0xDC00..0xE000).contains(&low) {
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        for _ in 0..6 {
                            units.next();
                        }
                    }
                }
                out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
            }
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// The high bit of each byte of `w` (eight string bytes, little-endian) that is `"`, `\\` or a
/// control character; the lowest flagged byte is exact, flags above it may be false alarms.
#[inline]
fn plain_word(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    let slash = w ^ (ONES * u64::from(b'\\'));
    let hit = (quote.wrapping_sub(ONES) & !quote)
        | (slash.wrapping_sub(ONES) & !slash)
        | (w.wrapping_sub(ONES * 0x20) & !w);
    hit & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(doc: &str) -> std::result::Result<String, SyntaxError> {
        let mut sc = Scanner::new(doc.as_bytes());
        let mut out = Vec::new();
        sc.value(&mut out)?;
        sc.end()?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn compaction_keeps_every_token_as_sent() {
        let doc = " { \"a\" : [ 1 , -1e-400 , 1E400 , 123456789012345678901234567890 ] ,\n\t\"b\\u0041\" : \"x y\\n\" , \"a\" : { } , \"e\" : [ ] , \"n\" : null , \"t\" : true } ";
        assert_eq!(
            compact(doc).unwrap(),
            "{\"a\":[1,-1e-400,1E400,123456789012345678901234567890],\"b\\u0041\":\"x y\\n\",\"a\":{},\"e\":[],\"n\":null,\"t\":true}"
        );
    }

    #[test]
    fn a_value_is_copied_in_one_piece_or_token_by_token_alike() {
        for doc in [
            r#"{"a":[1,-1e-400,{"b":"x y\n\u0000"}],"c":"\ud800"}"#,
            " { \"a\" : [ 1 , -1e-400 , { \"b\" : \"x y\\n\\u0000\" } ] , \"c\" : \"\\ud800\" }",
            "[\"\\u0000\" ,1]",
            "\"plain\"",
        ] {
            let (mut one, mut each) = (Vec::new(), Vec::new());
            let mut a = Scanner::new(doc.as_bytes());
            a.value_compact(&mut one).unwrap();
            let mut b = Scanner::new(doc.as_bytes());
            b.value(&mut each).unwrap();
            assert_eq!(one, each, "{doc}");
            assert_eq!(
                (a.pos, a.nuls, a.lone_surrogate),
                (b.pos, b.nuls, b.lone_surrogate)
            );
            assert!(!one.contains(&b' ') || doc.contains("x y"));
        }
    }

    #[test]
    fn a_string_ends_at_its_first_special_byte_wherever_that_falls() {
        // Every length across the word and sixteen-byte steps, and every special byte at
        // every position: the scan must stop exactly there, never before, never past it.
        for len in 0..80 {
            let plain = "a\u{7f}é ~".chars().cycle().take(len).collect::<String>();
            let doc = format!("\"{plain}\"");
            let mut sc = Scanner::new(doc.as_bytes());
            assert_eq!(sc.value(&mut Discard), Ok(Kind::Str), "{doc:?}");
            assert_eq!(sc.pos, doc.len());
            let bytes = plain.len();
            for at in 0..=bytes {
                let (head, tail) = doc.as_bytes().split_at(1 + at);
                for (special, pos) in [
                    (&b"\\n"[..], None),
                    (&b"\x01"[..], Some(1 + at)),
                    (&b"\x1f"[..], Some(1 + at)),
                ] {
                    let mut with = head.to_vec();
                    with.extend_from_slice(special);
                    with.extend_from_slice(tail);
                    let mut sc = Scanner::new(&with);
                    match (sc.value(&mut Discard), pos) {
                        (Ok(Kind::Str), None) => assert_eq!(sc.pos, with.len()),
                        (Err(e), Some(p)) => assert_eq!(e.at, p, "{with:?}"),
                        (got, _) => panic!("{with:?}: {got:?}"),
                    }
                }
                let mut cut = head.to_vec();
                cut.extend_from_slice(b"\",1]");
                let mut sc = Scanner::new(&cut);
                assert_eq!(sc.value(&mut Discard), Ok(Kind::Str));
                assert_eq!(sc.pos, 2 + at, "{cut:?}");
            }
        }
    }

    #[test]
    fn grammar_errors_are_found() {
        for bad in [
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "1e",
            "-",
            "\"\\x\"",
            "\"a",
            "{\"a\" 1}",
            "[1 2]",
            "tru",
            "{1:2}",
            "\"\t\"",
            "[] x",
            "",
        ] {
            assert!(compact(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn nul_escapes_and_lone_surrogates_are_noted() {
        let mut sc = Scanner::new(br#"["\u0000", "\ud83d\ude00", "\udc00"]"#);
        sc.value(&mut Discard).unwrap();
        assert_eq!(sc.nuls, 1);
        assert_eq!(sc.lone_surrogate, Some(28));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowing() {
        let doc = "[".repeat(100_000);
        assert_eq!(
            compact(&doc).unwrap_err().what,
            "nesting deeper than 512 levels"
        );
    }

    #[test]
    fn unescape_resolves_pairs() {
        assert_eq!(
            unescape(r#""a\u0041\ud83d\ude00\n""#, true),
            "aA\u{1F600}\n"
        );
        assert_eq!(unescape(r#""plain""#, false), "plain");
    }
}
