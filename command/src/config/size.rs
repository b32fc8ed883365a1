//! Byte sizes as people write them: `"512k"`, `"10m"`, `"1g"`, or a plain
//! number of bytes.

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a whole number optionally followed by a known unit.
    #[error(
        "invalid size {input:?}, expected a whole number of bytes optionally followed by \
         k, m or g (powers of 1024), like \"512k\", \"10m\" or \"1g\""
    )]
    Invalid {
        /// The text as written.
        input: String,
    },
    /// The number of bytes does not fit in 64 bits.
    #[error("size {input:?} is too large")]
    Overflow {
        /// The text as written.
        input: String,
    },
}

/// Parses a size in bytes: a whole number, optionally immediately followed by
/// `k`, `m` or `g` (either case; powers of 1024, as nginx reads them). Spaces,
/// signs, fractions and other units are refused rather than guessed at.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let invalid = || SizeError::Invalid {
        input: input.to_owned(),
    };
    let digits_end = input
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(digits_end);
    if number.is_empty() {
        return Err(invalid());
    }
    let multiplier: u64 = match unit {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return Err(invalid()),
    };
    let overflow = || SizeError::Overflow {
        input: input.to_owned(),
    };
    let number: u64 = number.parse().map_err(|_| overflow())?;
    number.checked_mul(multiplier).ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bytes_and_every_unit() {
        let cases = [
            ("0", 0),
            ("1024", 1024),
            ("512k", 512 * 1024),
            ("512K", 512 * 1024),
            ("10m", 10 * 1024 * 1024),
            ("1g", 1 << 30),
            ("3G", 3 << 30),
        ];
        for (input, bytes) in cases {
            assert_eq!(parse_size(input), Ok(bytes), "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_size() {
        for input in [
            "", "k", "10 m", "-1", "+5", "1.5m", "10mb", "10t", "m10", " 10",
        ] {
            assert_eq!(
                parse_size(input),
                Err(SizeError::Invalid {
                    input: input.to_owned()
                }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn refuses_sizes_over_64_bits() {
        for input in ["18446744073709551616", "17179869184g"] {
            assert_eq!(
                parse_size(input),
                Err(SizeError::Overflow {
                    input: input.to_owned()
                }),
                "{input}"
            );
        }
        assert_eq!(parse_size("17179869183g"), Ok(17_179_869_183 << 30));
    }
}
