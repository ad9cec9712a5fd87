//! Instants as whole seconds since the Unix epoch. MTurk's wire format is epoch seconds, the
//! simulator has a virtual clock, and the planner takes `now` as an argument: a plain integer
//! newtype keeps all three honest and comparable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An instant, in whole seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    pub fn seconds(self) -> i64 {
        self.0
    }

    pub fn plus_secs(self, secs: u64) -> Self {
        UnixTime(
            self.0
                .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
        )
    }

    /// Seconds from `earlier` to `self` (negative when `self` is before it).
    pub fn secs_since(self, earlier: UnixTime) -> i64 {
        self.0 - earlier.0
    }

    /// RFC 3339 in UTC (`2026-12-31T00:00:00Z`), computed without a date library.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }

    /// Parses `YYYY-MM-DDTHH:MM:SSZ` or with an offset `+HH:MM` / `-HH:MM`; fractions of a
    /// second are accepted and truncated. Returns `None` for anything else.
    pub fn parse_rfc3339(s: &str) -> Option<UnixTime> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || se > 60
        {
            return None;
        }
        let mut rest = &s[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            rest = &frac[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let rb = rest.as_bytes();
                if rb.len() != 6 || rb[3] != b':' || !(rb[0] == b'+' || rb[0] == b'-') {
                    return None;
                }
                let oh: i64 = rest[1..3].parse().ok()?;
                let om: i64 = rest[4..6].parse().ok()?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if rb[0] == b'+' { o } else { -o }
            }
        };
        let days = days_from_civil(y, mo, d);
        Some(UnixTime(days * 86_400 + h * 3600 + mi * 60 + se - offset))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats a number of seconds the way campaign files write durations: `7d`, `3h`, `10m`,
/// `45s`, or a combination (`1d 2h`) when it is not a whole unit.
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = Vec::new();
    let mut rest = secs;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = UnixTime::parse_rfc3339("2026-12-31T00:00:00Z").unwrap();
        assert_eq!(t.0, 1_798_675_200);
        assert_eq!(t.to_rfc3339(), "2026-12-31T00:00:00Z");
        assert_eq!(
            UnixTime::parse_rfc3339("2026-12-31T02:00:00+02:00").unwrap(),
            t
        );
        assert_eq!(
            UnixTime::parse_rfc3339("2024-02-29T12:00:00.250Z")
                .unwrap()
                .to_rfc3339(),
            "2024-02-29T12:00:00Z"
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-12-31",
            "2026-12-31T00:00:00",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(UnixTime::parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn durations_format_in_campaign_units() {
        assert_eq!(format_duration(604_800), "7d");
        assert_eq!(format_duration(93_600), "1d 2h");
        assert_eq!(format_duration(45), "45s");
    }
}
