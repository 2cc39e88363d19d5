//! `--fields a,b`: the columns a table shows and the keys JSON keeps, named
//! by the API's JSON field names (`agentId`, `email`, …).

/// A name compared as people type it: no case, no `_` or `-`
/// (`agent_id`, `agent-id` and `agentId` are one field).
fn key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The indices of the fields `asked` names, in the order asked; an error
/// naming what is not a field, and the fields there are.
pub(crate) fn pick(asked: &[String], fields: &[&str]) -> Result<Vec<usize>, String> {
    asked
        .iter()
        .map(|name| {
            let name = name.trim();
            fields
                .iter()
                .position(|f| key(f) == key(name))
                .ok_or_else(|| {
                    format!(
                        "--fields: `{name}` is not a field here; the fields are {}",
                        fields.join(", ")
                    )
                })
        })
        .collect()
}

/// `object` with only the keys `names` (those it has; a JSON object prints
/// its keys sorted).
pub(crate) fn keep(object: serde_json::Value, names: &[&str]) -> serde_json::Value {
    let serde_json::Value::Object(mut all) = object else {
        return object;
    };
    let kept: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .filter_map(|name| all.remove(*name).map(|v| ((*name).to_owned(), v)))
        .collect();
    serde_json::Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_as_json_names_them_in_any_case_or_separator() {
        let fields = ["agentId", "email", "createdAt"];
        assert_eq!(
            pick(&["email".into(), "agent_id".into()], &fields),
            Ok(vec![1, 0])
        );
        assert_eq!(pick(&["CREATED-AT".into()], &fields), Ok(vec![2]));
        let refused = pick(&["nope".into()], &fields).unwrap_err();
        assert!(
            refused.contains("`nope`") && refused.contains("agentId, email"),
            "{refused}"
        );
    }

    #[test]
    fn json_keeps_the_keys_asked_for() {
        let object = serde_json::json!({"agentId": "a", "email": "e", "owner": "o"});
        assert_eq!(
            keep(object, &["email", "agentId"]),
            serde_json::json!({"email": "e", "agentId": "a"})
        );
    }
}
