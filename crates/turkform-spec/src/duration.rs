//! Durations as campaign files write them: `30s`, `10m`, `3h`, `7d`, or several parts
//! (`1d 12h`, `1h30m`), which is also how `turkform_model::time::format_duration` prints them.

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// Parses a duration into seconds. The error says what was wrong, for a diagnostic.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{s}` is not a duration: write a number and a unit, like `30s`, `10m`, `3h` or `7d`"
        )
    };
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let after = &rest[digits..];
        let unit = after.chars().next().ok_or_else(bad)?;
        let size = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => DAY,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(size)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| format!("`{s}` is too long a duration"))?;
        rest = after[1..].trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_combinations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("3h"), Ok(10_800));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("1d 12h"), Ok(129_600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "",
            "10",
            "m",
            "10 m",
            "1.5h",
            "10w",
            "-1d",
            "3hours",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
