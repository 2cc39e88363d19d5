//! Checks of client-sent values, each failing with `400 VALIDATION_ERROR`
//! whose `details.field` names the field. Patterns follow the spec.

use std::fmt;

use serde_json::{Map, Value};

use super::errors::ApiError;

/// A JSON request body that must be an object. An empty body counts as `{}`
/// when `empty_ok`.
pub(crate) fn json_object(
    body: Option<&[u8]>,
    empty_ok: bool,
) -> Result<Map<String, Value>, ApiError> {
    let Some(body) = body else {
        return Err(ApiError::validation(
            "body",
            "The request body could not be read.",
        ));
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok {
            Ok(Map::new())
        } else {
            Err(ApiError::validation(
                "body",
                "A JSON request body is required.",
            ))
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::validation(
            "body",
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(ApiError::validation(
            "body",
            "The request body is not valid JSON.",
        )),
    }
}

/// An optional field of `body`: `None` when absent. No request field of the
/// spec is `nullable`, so JSON `null` is refused rather than read as absent.
pub(crate) fn field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Value>, ApiError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Null) => Err(ApiError::validation(
            name,
            format!("{name} must not be null; leave it out instead."),
        )),
        Some(value) => Ok(Some(value)),
    }
}

/// A required field; JSON `null` counts as missing.
pub(crate) fn required<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Value, ApiError> {
    body.get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::validation(name, format!("{name} is required.")))
}

fn string<'a>(name: &str, value: &'a Value) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .ok_or_else(|| ApiError::validation(name, format!("{name} must be a string.")))
}

/// One of the values the spec documents for an enum: `known` is the
/// generated enum's `KNOWN` (e.g. `AgentType::KNOWN`), so the fake accepts
/// exactly what the spec lists and needs no copy of it.
pub(crate) fn one_of<E>(name: &str, value: &Value, known: &[E]) -> Result<String, ApiError>
where
    E: for<'a> From<&'a str> + PartialEq + fmt::Display,
{
    let s = string(name, value)?;
    // The open enums read an undocumented value as `Unknown`, never in `known`.
    if known.contains(&E::from(s)) {
        Ok(s.to_owned())
    } else {
        let listed: Vec<String> = known.iter().map(ToString::to_string).collect();
        Err(ApiError::validation(
            name,
            format!("{name} must be one of: {}.", listed.join(", ")),
        ))
    }
}

/// A plausible email address: `local@domain.tld`, no whitespace.
pub(crate) fn email(value: &Value) -> Result<String, ApiError> {
    let s = string("email", value)?;
    let ok = s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && domain.split('.').all(|label| {
                    !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
                })
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ApiError::validation(
            "email",
            "email must be a valid email address.",
        ))
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
}

fn is_number(s: &str) -> bool {
    s == "0" || (!s.is_empty() && !s.starts_with('0') && s.chars().all(|c| c.is_ascii_digit()))
}

/// Semantic version per the spec's `SemVer` pattern.
pub(crate) fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| is_number(p))
        && pre.is_none_or(is_ident)
        && build.is_none_or(is_ident)
}

/// A `version`.
pub(crate) fn version(value: &Value) -> Result<String, ApiError> {
    let s = string("version", value)?;
    if is_semver(s) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::validation(
            "version",
            "version must be a semantic version such as 1.0.0.",
        ))
    }
}

/// `resource:action` per the spec's `Capability` pattern (`*` as the action).
pub(crate) fn is_capability(s: &str) -> bool {
    let word = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    s.split_once(':')
        .is_some_and(|(resource, action)| word(resource) && (action == "*" || word(action)))
}

/// `capabilities`: at least one, each `resource:action`.
pub(crate) fn capabilities(value: &Value) -> Result<Vec<String>, ApiError> {
    let invalid = |message: &str| ApiError::validation("capabilities", message);
    let items = value
        .as_array()
        .ok_or_else(|| invalid("capabilities must be an array of strings."))?;
    if items.is_empty() {
        return Err(invalid("capabilities must hold at least one item."));
    }
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(s) if is_capability(s) => Ok(s.to_owned()),
            _ => Err(invalid("each capability must look like resource:action.")),
        })
        .collect()
}

/// `owner`: 1 to 128 characters.
pub(crate) fn owner(value: &Value) -> Result<String, ApiError> {
    let s = string("owner", value)?;
    let len = s.chars().count();
    if (1..=128).contains(&len) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::validation(
            "owner",
            "owner must be 1 to 128 characters.",
        ))
    }
}

/// A query parameter that must be an integer of at least 1.
pub(crate) fn positive(name: &str, value: &str) -> Result<u32, ApiError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(n),
        _ => Err(ApiError::validation(
            name,
            format!("{name} must be an integer of at least 1."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_and_capability_follow_the_spec_patterns() {
        for good in [
            "1.0.0",
            "0.10.2",
            "2.3.1-beta",
            "1.0.0-rc.1+build.5",
            "1.2.3+x",
        ] {
            assert!(is_semver(good), "{good}");
        }
        for bad in [
            "1.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0+",
            "v1.0.0",
            "1.0.0-be ta",
            "a.b.c",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
        for good in ["resume:read", "data:*", "a_b.c-d:e"] {
            assert!(is_capability(good), "{good}");
        }
        for bad in ["resume", ":read", "resume:", "a:b:c", "a:**", "a b:c"] {
            assert!(!is_capability(bad), "{bad}");
        }
    }

    #[test]
    fn null_is_refused_for_optional_fields_and_missing_for_required_ones() {
        let body = json_object(Some(br#"{"a": null, "b": 1}"#), false).unwrap();
        assert!(field(&body, "a").is_err(), "no request field is nullable");
        assert_eq!(field(&body, "b").unwrap(), Some(&Value::from(1)));
        assert_eq!(field(&body, "c").unwrap(), None);
        assert!(required(&body, "a").is_err());
        assert!(required(&body, "c").is_err());
        // A missing body is `{}` only where the operation's body is optional.
        assert!(json_object(Some(b""), true).unwrap().is_empty());
        assert!(json_object(Some(b""), false).is_err());
    }

    #[test]
    fn enum_values_are_the_generated_lists() {
        use crate::model::{AgentType, AuditAction};
        assert_eq!(
            one_of("agentType", &Value::from("router"), AgentType::KNOWN).unwrap(),
            "router"
        );
        assert!(one_of("action", &Value::from("auth.failed"), AuditAction::KNOWN).is_ok());
        let refused = one_of("agentType", &Value::from("robot"), AgentType::KNOWN).unwrap_err();
        let message = format!("{refused:?}");
        assert!(
            message.contains(
                "screener, classifier, orchestrator, extractor, summarizer, router, monitor, custom"
            ),
            "{message}"
        );
        assert!(one_of("agentType", &Value::from(3), AgentType::KNOWN).is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(email(&Value::from("a@b.co")).is_ok());
        for bad in ["a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@b..co"] {
            assert!(email(&Value::from(bad)).is_err(), "{bad}");
        }
    }
}
