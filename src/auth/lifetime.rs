//! A token response's `expires_in` as servers really send it: a whole
//! number of seconds (RFC 6749 §5.1), a fraction, or a string holding one.

use std::time::Duration;

/// The lifetime a token response without a usable `expires_in` is given
/// (3600 s): the documented default.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The lifetime a token answered with an `expires_in` of 0 or less is given
/// (10 s): taken at its word, it would cost a token request per call. If the
/// server meant it, the token is refused with a 401, which refreshes it and
/// replays the call once.
const NON_POSITIVE_LIFETIME: Duration = Duration::from_secs(10);

/// `expires_in` as received, kept as sent (so it serializes back unchanged).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub(crate) enum WireLifetime {
    Number(serde_json::Number),
    Text(String),
}

impl WireLifetime {
    /// The lifetime `expires_in` gives; anything that is not a number of
    /// seconds counts as absent.
    pub(crate) fn lifetime(expires_in: Option<&Self>) -> Duration {
        let seconds = match expires_in {
            Some(Self::Number(n)) => n.as_f64(),
            Some(Self::Text(text)) => text.trim().parse::<f64>().ok(),
            None => None,
        };
        match seconds.filter(|s| s.is_finite()) {
            None => DEFAULT_TOKEN_LIFETIME,
            Some(s) if s <= 0.0 => NON_POSITIVE_LIFETIME,
            // Too long to represent: as long as can be (a 401 still
            // refreshes the token).
            Some(s) => Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX),
        }
    }
}

impl schemars::JsonSchema for WireLifetime {
    fn schema_name() -> String {
        "Lifetime".to_owned()
    }

    fn json_schema(g: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        serde_json::Value::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(json: &str) -> Duration {
        let wire: WireLifetime = serde_json::from_str(json).unwrap();
        WireLifetime::lifetime(Some(&wire))
    }

    #[test]
    fn an_expires_in_sent_as_a_string_or_a_fraction_gives_its_lifetime() {
        assert_eq!(of("3600"), Duration::from_secs(3600));
        assert_eq!(of(r#""3600""#), Duration::from_secs(3600));
        assert_eq!(of(r#"" 60 ""#), Duration::from_secs(60));
        assert_eq!(of("59.5"), Duration::from_millis(59_500));
        assert_eq!(of(r#""59.5""#), Duration::from_millis(59_500));
    }

    #[test]
    fn an_expires_in_that_is_not_a_number_counts_as_absent() {
        for json in [r#""soon""#, r#""""#, r#""NaN""#, r#""inf""#] {
            assert_eq!(of(json), DEFAULT_TOKEN_LIFETIME, "{json}");
        }
        assert_eq!(WireLifetime::lifetime(None), DEFAULT_TOKEN_LIFETIME);
    }

    #[test]
    fn an_expires_in_of_zero_or_less_or_too_large_is_bounded() {
        assert_eq!(of("0"), NON_POSITIVE_LIFETIME);
        assert_eq!(of("-5"), NON_POSITIVE_LIFETIME);
        assert_eq!(of(r#""-5""#), NON_POSITIVE_LIFETIME);
        assert_eq!(of("1e300"), Duration::MAX);
    }

    #[test]
    fn an_expires_in_serializes_back_as_it_came() {
        for json in ["3600", "3599.5", r#""3600""#] {
            let wire: WireLifetime = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&wire).unwrap(), json);
        }
    }
}
