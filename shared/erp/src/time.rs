//! The one place ERP dates and times are converted: calendar dates `YYYY-MM-DD` checked and
//! turned to and from Unix time (proleptic Gregorian, UTC; Howard Hinnant's civil-from-days
//! and days-from-civil), and the `YYYY-MM-DD HH:MM:SS` timestamps ERPs filter and answer with.
//! [`ErpDate`](crate::commands::ErpDate) and every connector go through these functions.

const SECS_PER_DAY: i64 = 86_400;

/// The parts of a calendar date `YYYY-MM-DD` (exactly that shape, a year from 1900, a real
/// day of the month), or `None`.
pub fn parse_ymd(s: &str) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if y < 1900 || d == 0 || d > days {
        return None;
    }
    Some((y, m, d))
}

/// `YYYY-MM-DD` of the UTC day a Unix time falls on (civil-from-days). The text is not checked:
/// years outside 1900–9999 give text [`parse_ymd`] refuses.
pub fn ymd_of_unix(unix_secs: i64) -> String {
    let z = unix_secs.div_euclid(SECS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Unix time of a date's midnight UTC (days-from-civil, the inverse of [`ymd_of_unix`]).
pub fn unix_midnight(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * SECS_PER_DAY
}

/// `YYYY-MM-DD{sep}HH:MM:SS` of a Unix time, in UTC (the date part `1970-01-01` when the year
/// is outside 1900–9999).
pub fn format_utc(unix_secs: i64, sep: char) -> String {
    let ymd = ymd_of_unix(unix_secs);
    let day = if parse_ymd(&ymd).is_some() {
        ymd
    } else {
        "1970-01-01".to_owned()
    };
    let s = unix_secs.rem_euclid(SECS_PER_DAY);
    format!("{day}{sep}{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A UTC date-time `YYYY-MM-DD[T| ]HH:MM[:SS[.fff]][Z]` (or a bare date) as Unix seconds;
/// fractions are dropped.
pub fn parse_utc(text: &str) -> Option<i64> {
    let t = text.trim().trim_end_matches('Z');
    let (y, m, d) = parse_ymd(t.get(..10)?)?;
    let rest = t.get(10..).unwrap_or("");
    let secs = if rest.is_empty() {
        0
    } else {
        let time = rest.strip_prefix(['T', ' '])?;
        let time = time.split(['.', '+']).next()?;
        let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
        let h = parts.next()??;
        let m = parts.next()??;
        let s = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
            return None;
        }
        h * 3600 + m * 60 + s
    };
    Some(unix_midnight(i64::from(y), i64::from(m), i64::from(d)) + secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_round_trip() {
        assert_eq!(format_utc(1_788_523_200, 'T'), "2026-09-04T12:00:00");
        assert_eq!(parse_utc("2026-09-04T12:00:00Z"), Some(1_788_523_200));
        assert_eq!(parse_utc("2026-09-04 12:00:00.123"), Some(1_788_523_200));
        assert_eq!(parse_utc("2026-09-04"), Some(1_788_480_000));
        for bad in [
            "",
            "2026-09-04T25:00:00",
            "2026-13-01",
            "2026-09-04X12:00",
            "yesterday",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn calendar_dates_are_checked_and_converted() {
        assert_eq!(parse_ymd("2024-02-29"), Some((2024, 2, 29)));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "1899-12-31",
            "-005-01-01",
        ] {
            assert_eq!(parse_ymd(bad), None, "{bad}");
        }
        assert_eq!(ymd_of_unix(951_782_400), "2000-02-29");
        assert_eq!(unix_midnight(2000, 2, 29), 951_782_400);
        // Out of range: the date part falls back, the time of day is kept.
        assert_eq!(format_utc(-2_300_000_000, ' '), "1970-01-01 15:06:40");
    }
}
