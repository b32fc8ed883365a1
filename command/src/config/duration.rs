//! Durations as people write them: `"250ms"`, `"5s"`, `"2m"`, `"1h"`.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a whole number followed by a known unit.
    #[error(
        "invalid duration {input:?}, expected a whole number followed by ms, s, m or h, \
         like \"250ms\", \"5s\", \"2m\" or \"1h\""
    )]
    Invalid {
        /// The text as written.
        input: String,
    },
    /// The number does not fit in a duration.
    #[error("duration {input:?} is too large")]
    Overflow {
        /// The text as written.
        input: String,
    },
}

/// Parses a duration: a whole number immediately followed by `ms`, `s`, `m`
/// or `h`. Spaces, signs, fractions and missing units are refused rather than
/// guessed at, because a misread timeout only shows up under load.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid {
        input: input.to_owned(),
    };
    let digits_end = input
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = input.split_at(digits_end);
    if number.is_empty() {
        return Err(invalid());
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    let overflow = || DurationError::Overflow {
        input: input.to_owned(),
    };
    let number: u64 = number.parse().map_err(|_| overflow())?;
    let millis = number.checked_mul(millis_per_unit).ok_or_else(overflow)?;
    Ok(Duration::from_millis(millis))
}

/// Writes a duration in the largest unit that keeps it whole (`"90s"`,
/// `"2m"`, `"250ms"`), so that `parse_duration(&format_duration(d)) == d` for
/// whole milliseconds.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    let units = [(3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    for (size, unit) in units {
        if millis != 0 && millis % size == 0 {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

/// Milliseconds for a protobuf field. Configured durations are at most one
/// day, far below `u32::MAX` milliseconds (49 days); saturate rather than wrap.
pub(crate) fn millis_u32(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("250ms", 250),
            ("5s", 5_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("0s", 0),
            ("007s", 7_000),
        ];
        for (input, millis) in cases {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_millis(millis)),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for input in [
            "", "5", "5 s", "abc", "-1s", "+1s", "1.5s", "5S", "s", "5sec", " 5s",
        ] {
            assert_eq!(
                parse_duration(input),
                Err(DurationError::Invalid {
                    input: input.to_owned()
                }),
                "{input:?}"
            );
        }
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("18446744073709551615h"),
            Err(DurationError::Overflow { .. })
        ));
    }

    #[test]
    fn formats_in_the_largest_whole_unit() {
        let cases = [
            (250, "250ms"),
            (5_000, "5s"),
            (90_000, "90s"),
            (120_000, "2m"),
            (0, "0ms"),
        ];
        for (millis, text) in cases {
            let duration = Duration::from_millis(millis);
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }
}
