//! [`Origin`]: where a token may go, compared without allocating per request.

use std::fmt;

use crate::error::{Error, Result};
use crate::seam::transport::clear_text_allowed;

/// A web origin (RFC 6454): scheme, host and port, the unit the allowlist of
/// [`OutgoingAuth`](super::OutgoingAuth) is made of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` is accepted). Refused: a
    /// path, a query, a fragment, user info, a scheme other than `http` or
    /// `https`, and `http` to a host other than loopback unless `insecure`:
    /// a bearer token in clear text can be read by anyone on the path.
    pub(crate) fn parse(origin: &str, insecure: bool) -> Result<Origin> {
        let url = url::Url::parse(origin)
            .map_err(|e| Error::invalid_input(format!("an allowed origin is not a URL: {e}")))?;
        // Quoted by its origin only: user info or a query may hold secrets.
        let shown = url.origin().ascii_serialization();
        let invalid = |why: &str| Error::invalid_input(format!("allowed origin `{shown}`: {why}"));
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("an origin has no path, query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("an origin has no user info"));
        }
        let host = url.host_str().ok_or_else(|| invalid("no host"))?;
        // The one rule of the client builder and the verifier.
        if !clear_text_allowed(&url, insecure) {
            return Err(invalid(
                "http sends the token in clear text; use https, or allow_insecure_http(true)",
            ));
        }
        Ok(Origin {
            scheme: url.scheme().to_owned(),
            host: host.to_owned(),
            port: url
                .port_or_known_default()
                .ok_or_else(|| invalid("no port"))?,
        })
    }

    /// Whether a request to `scheme://host:port` goes to this origin.
    /// `host` is compared ignoring ASCII case; an absent port is the
    /// scheme's default.
    pub(crate) fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let port = port.or(match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        self.scheme.eq_ignore_ascii_case(scheme)
            && self.host.eq_ignore_ascii_case(host)
            && port == Some(self.port)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The origin of a request's URL as text, for an error message: scheme,
/// host and port only, so no path or query (which may hold secrets) is
/// quoted.
pub(crate) fn describe(scheme: &str, host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_origin_and_matches_case_insensitively_with_default_ports() {
        let origin = Origin::parse("https://Billing.Example.com/", false).unwrap();
        assert!(origin.matches("https", "billing.example.COM", None));
        assert!(origin.matches("https", "billing.example.com", Some(443)));
        assert!(!origin.matches("https", "billing.example.com", Some(8443)));
        assert!(!origin.matches("http", "billing.example.com", Some(443)));
        assert!(!origin.matches("https", "billing.example.com.evil", None));
        let v6 = Origin::parse("http://[::1]:8080", false).unwrap();
        assert!(v6.matches("http", "[::1]", Some(8080)));
    }

    #[test]
    fn refuses_what_is_not_an_origin_and_clear_text_to_remote_hosts() {
        for bad in [
            "https://example.com/path",
            "https://example.com/?q=1",
            "https://user:pw@example.com",
            "ftp://example.com",
            "example.com",
            "http://example.com",
        ] {
            assert!(Origin::parse(bad, false).is_err(), "{bad}");
        }
        assert!(Origin::parse("http://example.com", true).is_ok());
        assert!(Origin::parse("http://localhost:3000", false).is_ok());
        assert!(Origin::parse("http://127.0.0.1:3000", false).is_ok());
    }
}
