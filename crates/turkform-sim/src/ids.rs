//! Identifiers and date formats in MTurk's own shapes.

use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A 30-character upper-case alphanumeric id such as `3X7837UUADRXYCA1K7JAJLKC66DJ60`.
/// Real HIT, assignment and qualification-type ids start with a digit; so do ours.
pub fn random_id(rng: &mut impl Rng) -> String {
    let mut id = String::with_capacity(30);
    id.push('3');
    for _ in 0..29 {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

/// A stable 30-character id derived from some bytes: HIT types are identified by their
/// properties, so the same properties give the same id even after a restart.
pub fn derived_id(prefix: char, material: &str) -> String {
    let digest = Sha256::digest(material.as_bytes());
    let mut id = String::with_capacity(30);
    id.push(prefix);
    for byte in digest.iter().take(29) {
        id.push(ALPHABET[usize::from(*byte) % ALPHABET.len()] as char);
    }
    id
}

/// An `x-amzn-RequestId` in the usual UUID layout.
pub fn request_id(rng: &mut impl Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Days since 1970-01-01 -> (year, month 1-12, day 1-31); Howard Hinnant's civil_from_days.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Java's `Date.toString()` in UTC (`Wed Jul 14 20:26:06 UTC 2021`): MTurk builds the hidden
/// UpdateExpirationForHIT idempotency key from the HIT id and this rendering of ExpireAt.
pub fn java_date(epoch_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        y
    )
}

/// `20210618T003000Z` -> epoch seconds (the SigV4 `X-Amz-Date` format).
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Epoch seconds -> `20210618T003000Z`.
pub fn format_amz_date(epoch_secs: i64) -> String {
    let (y, m, d) = civil_from_days(epoch_secs.div_euclid(86_400));
    let secs = epoch_secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_date_matches_the_real_token() {
        // From Dallinger#3109: ExpireAt 2021-07-14 20:26:06 UTC.
        assert_eq!(java_date(1_626_294_366), "Wed Jul 14 20:26:06 UTC 2021");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    }

    #[test]
    fn amz_dates_round_trip() {
        let t = parse_amz_date("20210618T003000Z").unwrap();
        assert_eq!(format_amz_date(t), "20210618T003000Z");
        assert_eq!(parse_amz_date("2021-06-18T00:30:00Z"), None);
    }

    #[test]
    fn ids_are_thirty_upper_alphanumerics() {
        let mut rng = rand::rng();
        let id = random_id(&mut rng);
        assert_eq!(id.len(), 30);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_eq!(derived_id('3', "x"), derived_id('3', "x"));
    }
}
