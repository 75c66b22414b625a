//! Text forms of the model's quantities, shared by the command line and scenario files.
//!
//! - durations: a number and a unit, `250ms`, `2s`, `1.5m` (also `us` and `ns`, so that every
//!   [`Duration`] that [`format_duration`] writes can be read back);
//! - probabilities: a percentage `2%` or a fraction `0.02`, between 0 and 1;
//! - bandwidth: bits per second with a unit, `750kbit`, `1.5mbit`, `1gbit`, as in `tc`.
//!
//! Parsing is exact decimal arithmetic, not floating point, so `0.1s` is exactly 100 ms.
//! The `serde_*` modules plug these forms into `#[serde(with = ...)]`.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// A value that is not in one of this module's text forms.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Not a duration: the text names the value and the expected form.
    #[error("invalid duration {0:?}: expected a number and a unit (ms, s or m), like 250ms or 2s")]
    Duration(String),
    /// Not a probability, or outside 0..=1.
    #[error("invalid probability {0:?}: expected a percentage like 2% or a fraction from 0 to 1")]
    Probability(String),
    /// Not a bandwidth.
    #[error(
        "invalid rate {0:?}: expected bits per second with a unit (kbit, mbit or gbit), \
         like 750kbit; `kbps` is ambiguous (tc reads it as kilobytes), use --rate-kbps for a \
         plain number of kilobits"
    )]
    Rate(String),
}

/// Parses a duration such as `250ms`, `2s`, `1.5m`, `500us`; `0` needs no unit.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let err = || ParseError::Duration(text.to_owned());
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let split = trimmed.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(err)?;
    let (number, unit) = trimmed.split_at(split);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(err()),
    };
    let nanos = scale_decimal(number.trim(), unit_nanos).ok_or_else(err)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| err())?;
    // The remainder of a division by 1e9 always fits in u32.
    let subsec = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, subsec))
}

/// Writes a duration in the largest unit that represents it exactly (`2s`, `250ms`, `1500us`).
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        "0ms".to_owned()
    } else if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// Parses a probability: `2%`, `0.5%` or a plain fraction `0.02`. Must lie within 0..=1.
pub fn parse_probability(text: &str) -> Result<f64, ParseError> {
    let err = || ParseError::Probability(text.to_owned());
    let trimmed = text.trim();
    let value = match trimmed.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map_err(|_| err())? / 100.0,
        None => trimmed.parse::<f64>().map_err(|_| err())?,
    };
    check_probability(value).ok_or_else(err)
}

/// Returns the value if it is a probability (finite, within 0..=1).
pub fn check_probability(value: f64) -> Option<f64> {
    (0.0..=1.0).contains(&value).then_some(value)
}

/// Parses a bandwidth such as `750kbit`, `1.5mbit` or `1gbit` into kilobits per second.
/// Rates below 1 kbit/s are refused: nothing useful fits through them.
pub fn parse_rate_kbps(text: &str) -> Result<u32, ParseError> {
    let err = || ParseError::Rate(text.to_owned());
    let trimmed = text.trim().to_ascii_lowercase();
    let split = trimmed.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(err)?;
    let (number, unit) = trimmed.split_at(split);
    let unit_bits: u128 = match unit {
        "bit" => 1,
        "kbit" => 1_000,
        "mbit" => 1_000_000,
        "gbit" => 1_000_000_000,
        _ => return Err(err()),
    };
    let bits = scale_decimal(number.trim(), unit_bits).ok_or_else(err)?;
    let kbps = u32::try_from(bits / 1_000).map_err(|_| err())?;
    if kbps == 0 {
        return Err(err());
    }
    Ok(kbps)
}

/// `number × unit`, for a non-negative decimal `number`, truncated to an integer; `None` if the
/// number is malformed or absurdly long.
fn scale_decimal(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || whole.len() + fraction.len() > 24
    {
        return None;
    }
    let mantissa: u128 = format!("{whole}{fraction}").parse().ok()?;
    let divisor = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    mantissa.checked_mul(unit).map(|scaled| scaled / divisor)
}

/// Formats a probability as a percentage for people (`2%`, `0.1%`).
pub fn format_percent(probability: f64) -> String {
    // Rounded to a millionth of a percent so that 0.07 prints as 7%, not 7.000000000000001%.
    let percent = (probability * 100.0 * 1e6).round() / 1e6;
    format!("{percent}%")
}

/// Display adapter: a [`Duration`] in the text form, for messages and logs.
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// `#[serde(with = "serde_duration")]` for a [`Duration`] written as `"250ms"`.
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Writes the duration in its text form.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*value))
    }

    /// Reads a duration from its text form.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "serde_opt_duration")]` for an `Option<Duration>`.
pub mod serde_opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Writes the duration in its text form, or nothing.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_some(&super::format_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an optional duration from its text form.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::parse_duration(&text).map_err(D::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "serde_durations")]` for a list of durations.
pub mod serde_durations {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::SerializeSeq};

    /// Writes each duration in its text form.
    pub fn serialize<S: Serializer>(value: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(value.len()))?;
        for duration in value {
            seq.serialize_element(&super::format_duration(*duration))?;
        }
        seq.end()
    }

    /// Reads a list of durations from their text forms.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| super::parse_duration(text).map_err(D::Error::custom))
            .collect()
    }
}

/// `#[serde(with = "serde_probability")]` for a probability: a number (`0.02`) or a percentage
/// string (`"2%"`) is read; a number is written.
pub mod serde_probability {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    /// Writes the probability as a fraction.
    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(*value)
    }

    /// Reads a fraction or a percentage string, refusing values outside 0..=1.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        match Repr::deserialize(deserializer)? {
            Repr::Number(value) => super::check_probability(value)
                .ok_or_else(|| D::Error::custom(super::ParseError::Probability(value.to_string()))),
            Repr::Text(text) => super::parse_probability(&text).map_err(D::Error::custom),
        }
    }
}

/// `#[serde(with = "serde_opt_probability")]` for an `Option<f64>` probability.
pub mod serde_opt_probability {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the probability as a fraction, or nothing.
    pub fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(p) => serializer.serialize_some(p),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an optional fraction or percentage string.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapper(#[serde(with = "super::serde_probability")] f64);
        Ok(Option::<Wrapper>::deserialize(deserializer)?.map(|Wrapper(p)| p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_exactly() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 500us "), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "ms", "5", "5h", "-1s", "1.2.3s", "1e3ms", ".s", "99999999999999999999999m"]
        {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn durations_round_trip_through_text() {
        for d in [0, 1, 999, 1_000, 1_500_000, 250_000_000, 2_000_000_000, 61_500_000_000u64] {
            let duration = Duration::from_nanos(d);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }

    #[test]
    fn probabilities_accept_percent_and_fractions() {
        assert_eq!(parse_probability("2%"), Ok(0.02));
        assert_eq!(parse_probability("0.02"), Ok(0.02));
        assert_eq!(parse_probability("100%"), Ok(1.0));
        for bad in ["", "%", "101%", "-1%", "1.5", "NaN", "two"] {
            assert!(parse_probability(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(format_percent(0.07), "7%");
        assert_eq!(format_percent(0.001), "0.1%");
    }

    #[test]
    fn rates_need_an_unambiguous_unit() {
        assert_eq!(parse_rate_kbps("750kbit"), Ok(750));
        assert_eq!(parse_rate_kbps("1.5mbit"), Ok(1500));
        assert_eq!(parse_rate_kbps("1Gbit"), Ok(1_000_000));
        for bad in ["750", "750kbps", "100bit", "kbit", "-5kbit"] {
            assert!(parse_rate_kbps(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
