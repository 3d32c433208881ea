//! Durations in `hooks.toml`: a string with a unit ("30s", "5m", "1h 30m"); a bare number is refused, and so is
//! anything longer than [`MAX_DURATION`], so that no timeout or deadline computed from one can overflow.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The longest duration `hooks.toml` accepts: a year. Longer would mean "never", which no timeout should.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A positive duration written with its unit, at most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

const BARE_NUMBER: &str = "a duration needs a unit, e.g. \"30s\", \"5m\" or \"1h\"";

impl Visitor<'_> for DurationVisitor {
    type Value = HumanDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration with a unit, e.g. \"30s\"")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
        let duration = humantime::parse_duration(s.trim()).map_err(|e| {
            E::custom(format!(
                "invalid duration \"{s}\": {e}; write e.g. \"30s\", \"5m\" or \"1h\""
            ))
        })?;
        if duration.is_zero() {
            return Err(E::custom("a duration must be greater than zero"));
        }
        if duration > MAX_DURATION {
            return Err(E::custom(format!(
                "duration \"{s}\" is longer than the longest allowed, \"365d\""
            )));
        }
        Ok(HumanDuration(duration))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<HumanDuration, E> {
        Err(E::custom(BARE_NUMBER))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<HumanDuration, E> {
        Err(E::custom(BARE_NUMBER))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<HumanDuration, E> {
        Err(E::custom(BARE_NUMBER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        t: HumanDuration,
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(
            toml::from_str::<Doc>("t = \"90s\"").unwrap().t.0,
            Duration::from_secs(90)
        );
        assert_eq!(
            toml::from_str::<Doc>("t = \"1h 30m\"").unwrap().t.0,
            Duration::from_secs(5400)
        );
        let err = toml::from_str::<Doc>("t = 30").unwrap_err();
        assert!(err.message().contains("needs a unit"), "{err}");
        assert!(toml::from_str::<Doc>("t = \"soon\"").is_err());
        assert!(toml::from_str::<Doc>("t = \"0s\"").is_err());
        assert_eq!(toml::from_str::<Doc>("t = \"365d\"").unwrap().t.0, MAX_DURATION);
        let err = toml::from_str::<Doc>("t = \"9223372036854775807s\"").unwrap_err();
        assert!(err.message().contains("longer than the longest allowed"), "{err}");
    }
}
