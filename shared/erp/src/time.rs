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

/// The company's time zone: the one every booking date is taken in (an event at
/// 2026-03-01T03:30Z is a 2026-02-28 document for a company in `America/Chicago`). An IANA name
/// looked up in the IANA time zone database bundled into the binary (a Lambda image has no
/// `/usr/share/zoneinfo`; the bundled copy also makes every machine convert the same way).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CompanyTimeZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

/// A time zone name the bundled database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time zone {name:?} is not an IANA time zone name (e.g. \"America/Chicago\", \"Europe/Berlin\", \"UTC\")")]
pub struct UnknownTimeZone {
    pub name: String,
}

impl CompanyTimeZone {
    /// The default when none is configured.
    pub const DEFAULT_NAME: &'static str = "UTC";

    /// Look an IANA name up (`America/Chicago`, `UTC`).
    pub fn parse(name: &str) -> Result<Self, UnknownTimeZone> {
        let unknown = || UnknownTimeZone {
            name: name.chars().take(64).collect(),
        };
        if name.trim().is_empty() || name.trim() != name {
            return Err(unknown());
        }
        let tz = jiff::tz::TimeZoneDatabase::bundled()
            .get(name)
            .map_err(|_| unknown())?;
        Ok(CompanyTimeZone {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn utc() -> Self {
        CompanyTimeZone {
            name: Self::DEFAULT_NAME.to_owned(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `YYYY-MM-DD` of the company-local day a Unix time falls on (the text is not checked;
    /// [`parse_ymd`] refuses years outside 1900–9999). Times jiff cannot represent (beyond
    /// years -9999..=9999) give the UTC day, which the range check then refuses.
    pub fn ymd_of_unix(&self, unix_secs: i64) -> String {
        match jiff::Timestamp::from_second(unix_secs) {
            Ok(ts) => {
                let date = self.tz.to_datetime(ts).date();
                format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
            }
            Err(_) => ymd_of_unix(unix_secs),
        }
    }
}

/// The company's time zone is named twice, in the mapping (`[defaults] time_zone`) and in the
/// reconciliation file (`[posting] time_zone`), and the deployment names it once more for
/// every function (`LEDGERBRIDGE_TIME_ZONE`, the template's `CompanyTimeZone`). A function
/// refuses to start when its file names another zone than the deployment, so the two files
/// cannot book the same day under different dates. `setting` is the variable's value, `key`
/// the file's key, `file` its zone; `None` when they agree (or the variable is unset).
pub fn time_zone_problem(
    setting: Option<&str>,
    key: &str,
    file: &CompanyTimeZone,
) -> Option<String> {
    let setting = setting?;
    match CompanyTimeZone::parse(setting) {
        Err(e) => Some(format!("LEDGERBRIDGE_TIME_ZONE: {e}")),
        Ok(zone) if zone != *file => Some(format!(
            "{key} = {:?} differs from LEDGERBRIDGE_TIME_ZONE = {:?}: name the company's time zone in both configuration files and the deployment",
            file.name(),
            zone.name()
        )),
        Ok(_) => None,
    }
}

impl TryFrom<String> for CompanyTimeZone {
    type Error = UnknownTimeZone;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        CompanyTimeZone::parse(&name)
    }
}

impl From<CompanyTimeZone> for String {
    fn from(zone: CompanyTimeZone) -> String {
        zone.name
    }
}

impl Default for CompanyTimeZone {
    fn default() -> Self {
        Self::utc()
    }
}

impl PartialEq for CompanyTimeZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for CompanyTimeZone {}

impl std::fmt::Debug for CompanyTimeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompanyTimeZone({})", self.name)
    }
}

impl std::fmt::Display for CompanyTimeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
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

    #[test]
    fn company_time_zone_takes_the_local_day() {
        // 2026-03-01T03:30:00Z is 2026-02-28 21:30 in Chicago (CST, UTC-6).
        let chicago = CompanyTimeZone::parse("America/Chicago").unwrap();
        let t = 1_772_335_800;
        assert_eq!(ymd_of_unix(t), "2026-03-01");
        assert_eq!(chicago.ymd_of_unix(t), "2026-02-28");
        assert_eq!(CompanyTimeZone::utc().ymd_of_unix(t), "2026-03-01");
        // East of UTC the day starts earlier: 2026-02-28T23:30Z is 1 March in Tokyo.
        let tokyo = CompanyTimeZone::parse("Asia/Tokyo").unwrap();
        assert_eq!(tokyo.ymd_of_unix(1_772_321_400), "2026-03-01");
    }

    #[test]
    fn company_time_zone_follows_daylight_saving() {
        let chicago = CompanyTimeZone::parse("America/Chicago").unwrap();
        // Summer (CDT, UTC-5): 2026-07-01T04:59:59Z is still 30 June, 05:00:00Z is 1 July.
        assert_eq!(chicago.ymd_of_unix(1_782_881_999), "2026-06-30");
        assert_eq!(chicago.ymd_of_unix(1_782_882_000), "2026-07-01");
        // Winter (CST, UTC-6): 2026-01-01T05:59:59Z is still 31 December, 06:00:00Z is 1 January.
        assert_eq!(chicago.ymd_of_unix(1_767_247_199), "2025-12-31");
        assert_eq!(chicago.ymd_of_unix(1_767_247_200), "2026-01-01");
        // The spring-forward day (8 March 2026, 02:00 → 03:00 local) and the fall-back day
        // (1 November 2026, 02:00 → 01:00 local) keep their own dates through the change.
        assert_eq!(chicago.ymd_of_unix(1_772_956_800), "2026-03-08"); // 08:00Z = 02:00 CST → 03:00 CDT
        assert_eq!(chicago.ymd_of_unix(1_773_032_399), "2026-03-08"); // 04:59:59Z on the 9th = 23:59:59 CDT
        assert_eq!(chicago.ymd_of_unix(1_773_032_400), "2026-03-09");
        assert_eq!(chicago.ymd_of_unix(1_793_516_400), "2026-11-01"); // 07:00Z = 01:00 CST (second 01:00)
        assert_eq!(chicago.ymd_of_unix(1_793_599_199), "2026-11-01"); // 05:59:59Z on the 2nd = 23:59:59 CST
        assert_eq!(chicago.ymd_of_unix(1_793_599_200), "2026-11-02");
    }

    #[test]
    fn unknown_time_zones_are_refused() {
        for bad in ["", " UTC", "America/Chikago", "CST6", "Mars/Olympus_Mons"] {
            let err = CompanyTimeZone::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("not an IANA time zone"),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(
            CompanyTimeZone::parse("UTC").unwrap(),
            CompanyTimeZone::utc()
        );
        assert_eq!(CompanyTimeZone::default().name(), "UTC");
    }
}
