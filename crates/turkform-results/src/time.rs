//! Times as the web UI's batch CSV writes them: US Pacific, with PST or PDT as the date has it
//! (`Mon Mar 06 08:59:21 PST 2023`). The zone rules come from jiff's bundled tz database, so
//! the output is right offline and on machines without `/usr/share/zoneinfo`.

use turkform_model::UnixTime;

/// The zone of the web UI's timestamps.
pub const PACIFIC: &str = "America/Los_Angeles";

/// How exported times are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// `Mon Mar 06 08:59:21 PST 2023`, US Pacific, as the web UI writes it.
    #[default]
    Mturk,
    /// UTC RFC 3339, `2023-03-06T16:59:21Z`.
    Iso8601,
}

/// Why the time formatter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the US Pacific time zone from the bundled database: {0}")]
pub struct ZoneError(String);

/// Formats instants; build once, use for every row.
///
/// The zone's offset and abbreviation stay the same between two of its transitions, so the
/// formatter remembers the few spans between transitions it last saw (asked of jiff's rules,
/// not assumed) and formats within them by arithmetic: an export formats six times per row.
#[derive(Clone, Debug)]
pub struct TimeFormatter {
    format: TimeFormat,
    pacific: jiff::tz::TimeZone,
    spans: std::cell::Cell<[Option<Span>; SPANS]>,
}

/// How many spans between transitions are remembered: an export's times cross a DST change
/// back and forth (accept in PST, auto-approval in PDT).
const SPANS: usize = 4;

/// `[start, end)` between two transitions of the zone, with its offset and abbreviation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: i64,
    end: i64,
    offset: jiff::tz::Offset,
    abbreviation: [u8; 8],
    abbreviation_len: u8,
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl TimeFormatter {
    pub fn new(format: TimeFormat) -> Result<TimeFormatter, ZoneError> {
        let pacific = jiff::tz::TimeZone::get(PACIFIC).map_err(|e| ZoneError(e.to_string()))?;
        Ok(TimeFormatter {
            format,
            pacific,
            spans: std::cell::Cell::new([None; SPANS]),
        })
    }

    pub fn format(&self, t: UnixTime) -> String {
        let mut out = String::with_capacity(28);
        self.write(t, &mut out);
        out
    }

    /// Appends `t`, formatted, to `out`.
    pub fn write(&self, t: UnixTime, out: &mut String) {
        match self.format {
            TimeFormat::Iso8601 => out.push_str(&t.to_rfc3339()),
            TimeFormat::Mturk => match jiff::Timestamp::from_second(t.0) {
                Ok(ts) => self.write_pacific(ts, out),
                // Outside jiff's range (years beyond -9999..=9999): not a time MTurk can send.
                Err(_) => out.push_str(&t.to_rfc3339()),
            },
        }
    }

    /// An optional time: empty when absent, as the web UI leaves it.
    pub fn format_opt(&self, t: Option<UnixTime>) -> String {
        t.map(|t| self.format(t)).unwrap_or_default()
    }

    /// Appends an optional time (nothing when absent) to `out`.
    pub fn write_opt(&self, t: Option<UnixTime>, out: &mut String) {
        if let Some(t) = t {
            self.write(t, out);
        }
    }

    /// `%a %b %d %H:%M:%S %Z %Y` in US Pacific.
    fn write_pacific(&self, ts: jiff::Timestamp, out: &mut String) {
        let span = self.span_of(ts);
        let dt = span.offset.to_datetime(ts);
        let two = |out: &mut String, n: i8| {
            let n = n.unsigned_abs();
            out.push(char::from(b'0' + n / 10));
            out.push(char::from(b'0' + n % 10));
        };
        out.push_str(WEEKDAYS[usize::from(dt.weekday().to_monday_zero_offset().unsigned_abs())]);
        out.push(' ');
        out.push_str(MONTHS[usize::from(dt.month().unsigned_abs()) - 1]);
        out.push(' ');
        two(out, dt.day());
        out.push(' ');
        two(out, dt.hour());
        out.push(':');
        two(out, dt.minute());
        out.push(':');
        two(out, dt.second());
        out.push(' ');
        out.push_str(
            std::str::from_utf8(&span.abbreviation[..usize::from(span.abbreviation_len)])
                .unwrap_or(""),
        );
        out.push(' ');
        let year = dt.year();
        if (0..10_000).contains(&year) {
            // `%Y` pads to four digits.
            let y = year.unsigned_abs();
            for d in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
                out.push(char::from(b'0' + u8::try_from(d).unwrap_or(0)));
            }
        } else {
            use std::fmt::Write;
            let _ = write!(out, "{year:04}");
        }
    }

    /// The span between transitions holding `ts`: remembered, or asked of the zone's rules.
    fn span_of(&self, ts: jiff::Timestamp) -> Span {
        let secs = ts.as_second();
        let mut spans = self.spans.get();
        if let Some(span) = spans
            .iter()
            .flatten()
            .find(|s| s.start <= secs && secs < s.end)
        {
            return *span;
        }
        let info = self.pacific.to_offset_info(ts);
        // The last transition at or before `ts` (transitions fall on whole seconds, so "before
        // ts + 1s") and the first one after it.
        let start = ts
            .checked_add(jiff::SignedDuration::from_secs(1))
            .ok()
            .and_then(|next| self.pacific.preceding(next).next())
            .map_or(i64::MIN, |t| t.timestamp().as_second());
        let end = self
            .pacific
            .following(ts)
            .next()
            .map_or(i64::MAX, |t| t.timestamp().as_second());
        let name = info.abbreviation().as_bytes();
        let mut abbreviation = [0u8; 8];
        let len = name.len().min(abbreviation.len());
        abbreviation[..len].copy_from_slice(&name[..len]);
        let span = Span {
            start,
            end,
            offset: info.offset(),
            abbreviation,
            abbreviation_len: u8::try_from(len).unwrap_or(0),
        };
        spans.rotate_right(1);
        spans[0] = Some(span);
        self.spans.set(spans);
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mturk(rfc3339: &str) -> String {
        let f = TimeFormatter::new(TimeFormat::Mturk).unwrap();
        f.format(UnixTime::parse_rfc3339(rfc3339).unwrap())
    }

    #[test]
    fn the_web_uis_own_example_comes_out_the_same() {
        assert_eq!(
            mturk("2023-03-06T16:59:21Z"),
            "Mon Mar 06 08:59:21 PST 2023"
        );
    }

    #[test]
    fn the_march_change_switches_pst_to_pdt_at_2am_local() {
        // 2023-03-12: 01:59:59 PST is followed by 03:00:00 PDT (10:00 UTC).
        assert_eq!(
            mturk("2023-03-12T09:59:59Z"),
            "Sun Mar 12 01:59:59 PST 2023"
        );
        assert_eq!(
            mturk("2023-03-12T10:00:00Z"),
            "Sun Mar 12 03:00:00 PDT 2023"
        );
        assert_eq!(
            mturk("2024-03-10T10:00:00Z"),
            "Sun Mar 10 03:00:00 PDT 2024"
        );
    }

    #[test]
    fn the_november_change_repeats_1am_once_in_each_zone() {
        // 2023-11-05: 01:59:59 PDT (08:59:59 UTC) then 01:00:00 PST (09:00 UTC).
        assert_eq!(
            mturk("2023-11-05T08:59:59Z"),
            "Sun Nov 05 01:59:59 PDT 2023"
        );
        assert_eq!(
            mturk("2023-11-05T09:00:00Z"),
            "Sun Nov 05 01:00:00 PST 2023"
        );
        assert_eq!(
            mturk("2023-08-01T19:00:00Z"),
            "Tue Aug 01 12:00:00 PDT 2023"
        );
    }

    /// The remembered spans must give exactly what jiff's own formatting gives, at and around
    /// every transition of several years, in any order.
    #[test]
    fn remembered_spans_format_like_jiff_at_every_transition() {
        let f = TimeFormatter::new(TimeFormat::Mturk).unwrap();
        let zone = jiff::tz::TimeZone::get(PACIFIC).unwrap();
        let reference = |secs: i64| {
            jiff::Timestamp::from_second(secs)
                .unwrap()
                .to_zoned_datetime(zone.clone())
                .strftime("%a %b %d %H:%M:%S %Z %Y")
                .to_string()
        };
        let from = jiff::Timestamp::from_second(1_577_836_800).unwrap(); // 2020-01-01
        let transitions: Vec<i64> = zone
            .following(from)
            .take(16)
            .map(|t| t.timestamp().as_second())
            .collect();
        assert_eq!(transitions.len(), 16);
        let mut instants = Vec::new();
        for t in &transitions {
            for d in [-86_400, -3601, -3600, -1, 0, 1, 3599, 3600, 86_400] {
                instants.push(t + d);
            }
        }
        // Forward, backward, and interleaved far apart, so the spans are found, reused and
        // evicted.
        let mut order = instants.clone();
        order.extend(instants.iter().rev());
        order.extend(
            instants
                .iter()
                .zip(instants.iter().rev())
                .flat_map(|(a, b)| [*a, *b]),
        );
        for secs in order {
            assert_eq!(f.format(UnixTime(secs)), reference(secs), "at {secs}");
        }
        assert_eq!(
            f.format(UnixTime(-62_000_000_000)),
            reference(-62_000_000_000)
        );
    }

    #[test]
    fn iso8601_is_utc_rfc3339() {
        let f = TimeFormatter::new(TimeFormat::Iso8601).unwrap();
        assert_eq!(f.format(UnixTime(1_678_121_961)), "2023-03-06T16:59:21Z");
        assert_eq!(f.format_opt(None), "");
    }
}
