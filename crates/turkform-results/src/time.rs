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
#[derive(Clone, Debug)]
pub struct TimeFormatter {
    format: TimeFormat,
    pacific: jiff::tz::TimeZone,
}

impl TimeFormatter {
    pub fn new(format: TimeFormat) -> Result<TimeFormatter, ZoneError> {
        let pacific = jiff::tz::TimeZone::get(PACIFIC).map_err(|e| ZoneError(e.to_string()))?;
        Ok(TimeFormatter { format, pacific })
    }

    pub fn format(&self, t: UnixTime) -> String {
        match self.format {
            TimeFormat::Iso8601 => t.to_rfc3339(),
            TimeFormat::Mturk => match jiff::Timestamp::from_second(t.0) {
                Ok(ts) => ts
                    .to_zoned_datetime(self.pacific.clone())
                    .strftime("%a %b %d %H:%M:%S %Z %Y")
                    .to_string(),
                // Outside jiff's range (years beyond -9999..=9999): not a time MTurk can send.
                Err(_) => t.to_rfc3339(),
            },
        }
    }

    /// An optional time: empty when absent, as the web UI leaves it.
    pub fn format_opt(&self, t: Option<UnixTime>) -> String {
        t.map(|t| self.format(t)).unwrap_or_default()
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

    #[test]
    fn iso8601_is_utc_rfc3339() {
        let f = TimeFormatter::new(TimeFormat::Iso8601).unwrap();
        assert_eq!(f.format(UnixTime(1_678_121_961)), "2023-03-06T16:59:21Z");
        assert_eq!(f.format_opt(None), "");
    }
}
