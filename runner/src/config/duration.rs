//! Durations in `hooks.toml`: a string with a unit ("30s", "5m", "1h 30m"); a bare number is refused.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A positive duration written with its unit.
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
    }
}
