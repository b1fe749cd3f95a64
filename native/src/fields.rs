//! The scalar rules of the message contract: 32-bit ids, cluster UUID spellings, RFC 3339.

/// Microseconds from 1970-01-01 to the bounds of the stored range (years 1..9999, UTC).
pub const MIN_US: i64 = -62_135_596_800_000_000;
pub const MAX_US: i64 = 253_402_300_799_999_999;

/// A JSON integer token in 0..=2**31-1, or None. `-0` is 0, as a JSON reader sees it.
pub fn int32(token: &str) -> Option<i32> {
    let digits = token.strip_prefix('-');
    if let Some(d) = digits {
        return (d == "0").then_some(0);
    }
    if token.len() > 10 {
        return None;
    }
    token
        .parse::<u32>()
        .ok()
        .and_then(|v| i32::try_from(v).ok())
}

/// The canonical lowercase 8-4-4-4-12 form of a cluster UUID, from exactly these spellings:
/// 8-4-4-4-12 or 32 hex digits in any letter case, each bare, in braces, or after
/// `urn:uuid:` (the prefix in any letter case).
pub fn cluster(text: &str) -> Option<[u8; 36]> {
    let b = text.as_bytes();
    let inner = if b.first() == Some(&b'{') && b.last() == Some(&b'}') && b.len() > 2 {
        &b[1..b.len() - 1]
    } else if b.len() > 9 && b[..9].eq_ignore_ascii_case(b"urn:uuid:") {
        &b[9..]
    } else {
        b
    };
    let mut out = [b'-'; 36];
    let hex_at = |i: usize| {
        let c = inner[i];
        c.is_ascii_hexdigit().then(|| c.to_ascii_lowercase())
    };
    match inner.len() {
        36 => {
            for i in 0..36 {
                if matches!(i, 8 | 13 | 18 | 23) {
                    if inner[i] != b'-' {
                        return None;
                    }
                } else {
                    out[i] = hex_at(i)?;
                }
            }
        }
        32 => {
            let mut j = 0;
            for (i, slot) in out.iter_mut().enumerate() {
                if !matches!(i, 8 | 13 | 18 | 23) {
                    *slot = hex_at(j)?;
                    j += 1;
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// Why a `LastChecked` value is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Stamp {
    /// Not the RFC 3339 `date-time` grammar (or a field out of its range).
    Syntax,
    /// Valid, but before year 1 or after year 9999 once converted to UTC.
    Range,
}

/// An RFC 3339 `date-time` as microseconds since 1970-01-01 UTC: `YYYY-MM-DDTHH:MM:SS`, an
/// optional fraction of 1 to 9 digits (truncated to microseconds), then `Z` or `+HH:MM` /
/// `-HH:MM`; `T` and `Z` in either letter case. Nothing else: no week or ordinal dates, no
/// basic format, no offset without minutes, no leap second, no surrounding whitespace.
pub fn rfc3339(text: &str) -> Result<i64, Stamp> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, Stamp> {
        let part = b.get(from..from + len).ok_or(Stamp::Syntax)?;
        part.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit()
                .then(|| acc * 10 + i64::from(d - b'0'))
                .ok_or(Stamp::Syntax)
        })
    };
    let at = |i: usize, allowed: &[u8]| -> Result<(), Stamp> {
        match b.get(i) {
            Some(c) if allowed.contains(c) => Ok(()),
            _ => Err(Stamp::Syntax),
        }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    at(4, b"-")?;
    at(7, b"-")?;
    at(10, b"Tt")?;
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    at(13, b":")?;
    at(16, b":")?;
    let mut i = 19;
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let len = i - start;
        if !(1..=9).contains(&len) {
            return Err(Stamp::Syntax);
        }
        let kept = len.min(6);
        micros = num(start, kept)? * 10i64.pow((6 - kept) as u32);
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 => {
            at(i + 3, b":")?;
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(Stamp::Syntax);
            }
            let total = oh * 60 + om;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return Err(Stamp::Syntax),
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(Stamp::Syntax);
    }
    if year == 0 {
        return Err(Stamp::Range);
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_minutes * 60;
    let us = seconds * 1_000_000 + micros;
    if !(MIN_US..=MAX_US).contains(&us) {
        return Err(Stamp::Range);
    }
    Ok(us)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "5d5892d3-1f74-4ccf-91af-548dfc9767aa";

    #[test]
    fn cluster_spellings() {
        for ok in [
            C.to_string(),
            C.to_uppercase(),
            format!("{{{C}}}"),
            format!("urn:uuid:{C}"),
            format!("URN:UUID:{C}"),
            C.replace('-', ""),
            format!("{{{}}}", C.replace('-', "")),
        ] {
            assert_eq!(
                cluster(&ok).map(|c| c.to_vec()),
                Some(C.as_bytes().to_vec()),
                "{ok}"
            );
        }
        for bad in [
            format!(" {C}"),
            format!("{C} "),
            format!("+{}", &C.replace('-', "")[1..]),
            format!("0_{}", &C.replace('-', "")[2..]),
            "5d5892d31-f74-4ccf-91af-548dfc9767aa".to_string(),
            format!("{{{C}"),
            format!("urn:{C}"),
            format!("uuid:{C}"),
            "".to_string(),
        ] {
            assert_eq!(cluster(&bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_accepts_the_grammar() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(rfc3339("1970-01-01t00:00:01z"), Ok(1_000_000));
        assert_eq!(rfc3339("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(rfc3339("1969-12-31T23:00:00-01:00"), Ok(0));
        assert_eq!(rfc3339("1970-01-01T00:00:00.123456789Z"), Ok(123_456));
        assert_eq!(rfc3339("1970-01-01T00:00:00.5Z"), Ok(500_000));
        assert_eq!(rfc3339("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000_000));
        assert_eq!(rfc3339("0001-01-01T00:00:00Z"), Ok(MIN_US));
        assert_eq!(rfc3339("9999-12-31T23:59:59.999999Z"), Ok(MAX_US));
    }

    #[test]
    fn rfc3339_refuses_everything_else() {
        for bad in [
            "2026-01-01T00:00:00\u{0}Z",
            "2026-01-01T00:00:00XZ",
            "2026-01-01T00:00:00.Z",
            "2026-W01-1T00:00:00Z",
            "20240101T000000Z",
            "2026-01-01T00:00:00+01",
            "2026-01-01T00:00:00+0100",
            "2026-01-01 00:00:00Z",
            " 2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z ",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "2026-01-01T00:00:00.1234567890Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00ZZ",
        ] {
            assert_eq!(rfc3339(bad), Err(Stamp::Syntax), "{bad:?}");
        }
        assert_eq!(rfc3339("0001-01-01T00:30:00+01:00"), Err(Stamp::Range));
        assert_eq!(rfc3339("0000-06-01T00:00:00Z"), Err(Stamp::Range));
    }

    #[test]
    fn int32_range() {
        assert_eq!(int32("0"), Some(0));
        assert_eq!(int32("-0"), Some(0));
        assert_eq!(int32("2147483647"), Some(i32::MAX));
        assert_eq!(int32("2147483648"), None);
        assert_eq!(int32("-1"), None);
        assert_eq!(int32("123456789012345678901234567890"), None);
    }
}
