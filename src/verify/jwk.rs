//! Which published keys may check an RS256 token (RFC 7517 §4.2–4.3).

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};

/// The key of `jwk` if it may verify an RS256 signature: an RSA key, for
/// RS256 (or saying no `alg`), whose `use` (if any) is `sig` and whose
/// `key_ops` (if any) hold `verify`. A key published for encryption never
/// checks a signature, even one it made.
pub(crate) fn rs256_verifying_key(jwk: &Jwk) -> Option<DecodingKey> {
    let common = &jwk.common;
    let rs256 = matches!(common.key_algorithm, None | Some(KeyAlgorithm::RS256))
        && matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
    let for_signatures = common
        .public_key_use
        .as_ref()
        .is_none_or(|key_use| *key_use == PublicKeyUse::Signature);
    let may_verify = common
        .key_operations
        .as_ref()
        .is_none_or(|ops| ops.contains(&KeyOperations::Verify));
    if !(rs256 && for_signatures && may_verify) {
        return None;
    }
    DecodingKey::from_jwk(jwk).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwk(extra: serde_json::Value) -> Jwk {
        // The fake's embedded test key's modulus is not needed: any RSA
        // numbers parse.
        let mut value = json!({"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "k"});
        for (name, member) in extra.as_object().cloned().unwrap_or_default() {
            value[name] = member;
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_keys_for_verifying_signatures_are_used() {
        for usable in [
            json!({}),
            json!({"use": "sig"}),
            json!({"key_ops": ["verify"]}),
            json!({"use": "sig", "key_ops": ["sign", "verify"], "alg": "RS256"}),
        ] {
            assert!(
                rs256_verifying_key(&jwk(usable.clone())).is_some(),
                "{usable}"
            );
        }
        for unusable in [
            json!({"use": "enc"}),
            json!({"use": "tls"}),
            json!({"key_ops": ["encrypt", "wrapKey"]}),
            json!({"key_ops": []}),
            json!({"use": "sig", "key_ops": ["sign"]}),
            json!({"alg": "RS512"}),
        ] {
            assert!(
                rs256_verifying_key(&jwk(unusable.clone())).is_none(),
                "{unusable}"
            );
        }
    }
}
