//! Generated and mutated JSON documents: valid ones from a small grammar walker, then
//! byte flips, truncations, insertions (structure, escapes, surrogates, bad numbers, invalid
//! UTF-8, whitespace that is not JSON's) and deletions.

use _native::json::MAX_DEPTH;

/// SplitMix64: small, fast and the same everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Generation

pub const NUMBERS: &[&str] = &[
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
pub const BAD_VALUES: &[&str] = &[
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
pub const SNIPPETS: &[&[u8]] = &[
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
pub const BAD_IN_STRINGS: [&[u8]; 11] = [
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

pub const INTERESTING_BYTES: &[u8] = &[
    b'"', b'\\', b',', b':', b'[', b']', b'{', b'}', b' ', b'\t', b'\n', b'\r', 0x00, 0x08, 0x1f,
    0x20, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff, b'e', b'E', b'.', b'-',
    b'+', b'0', b'1', b'u', b'n', b't', b'/',
];

pub struct Gen<'r> {
    pub rng: &'r mut Rng,
    pub out: Vec<u8>,
    /// Percent chance that a scalar is replaced by something that is not JSON.
    pub bad: usize,
    /// Percent chance that a `\u` escape is an unpaired surrogate.
    pub lone: usize,
}

impl Gen<'_> {
    pub fn ws(&mut self) {
        if self.rng.chance(60) {
            return;
        }
        for _ in 0..=self.rng.below(3) {
            let c = *self.rng.pick(b" \n\t\r");
            self.out.push(c);
        }
    }

    pub fn value(&mut self, depth: usize) {
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

    pub fn string(&mut self) {
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

pub fn mutate(rng: &mut Rng, doc: &mut Vec<u8>) {
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
pub fn document(rng: &mut Rng) -> Vec<u8> {
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
