//! What a failed attempt came to: the [`Observed`] the retry rules classify,
//! and the [`Error`] the call returns if it ends there.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorBody, ErrorKind, IntoErrorBody, Result, retry_after};
use crate::raw;
use crate::retry::Observed;

/// Maps progenitor's error, with what the hooks saw of the answer. `Ok` when
/// the "error" is a success body after all (decoded again to name a field,
/// it fit).
pub(super) async fn observe<T, E>(
    e: raw::Error<E>,
    seen: Option<(StatusCode, HeaderMap)>,
) -> std::result::Result<T, (Observed, Error)>
where
    T: DeserializeOwned,
    E: IntoErrorBody,
{
    let answered =
        |status: StatusCode, headers: &HeaderMap, code: Option<String>| Observed::Response {
            status,
            retry_after: retry_after(headers),
            code,
        };
    Err(match e {
        raw::Error::ErrorResponse(rv) => {
            let (status, headers) = (rv.status(), rv.headers().clone());
            let body = rv.into_inner().into_error_body();
            let observed = answered(status, &headers, Some(body.code.clone()));
            (observed, Error::from_body(status, &headers, body))
        }
        raw::Error::InvalidResponsePayload(bytes, _) => match seen {
            // progenitor drops the status here; the hooks kept it.
            Some((status, headers)) if !status.is_success() => {
                let code = ErrorBody::parse(&bytes).map(|b| b.code);
                (
                    answered(status, &headers, code),
                    Error::from_response(status, &headers, &bytes),
                )
            }
            // A success body that does not fit: decode again to name the field.
            _ => {
                let mut de = serde_json::Deserializer::from_slice(&bytes);
                match serde_path_to_error::deserialize::<_, T>(&mut de) {
                    Ok(value) => match de.end() {
                        Ok(()) => return Ok(value),
                        Err(e) => (Observed::Refused, Error::decode("", &e)),
                    },
                    Err(e) => (
                        Observed::Refused,
                        Error::decode(&e.path().to_string(), e.inner()),
                    ),
                }
            }
        },
        raw::Error::UnexpectedResponse(response) => {
            // Any 2xx decodes, so this is an undocumented error status; the
            // hooks read its body already.
            let (status, headers) = (response.status(), response.headers().clone());
            match response.bytes().await {
                Ok(body) => {
                    let code = ErrorBody::parse(&body).map(|b| b.code);
                    (
                        answered(status, &headers, code),
                        Error::from_response(status, &headers, &body),
                    )
                }
                Err(e) => (
                    Observed::Failed {
                        timeout: e.is_timeout(),
                    },
                    Error::transport(e),
                ),
            }
        }
        raw::Error::CommunicationError(e) if e.is_connect() => {
            (Observed::Unsent, Error::transport(e))
        }
        raw::Error::CommunicationError(e)
        | raw::Error::ResponseBodyError(e)
        | raw::Error::InvalidUpgrade(e) => (
            Observed::Failed {
                timeout: e.is_timeout(),
            },
            Error::transport(e),
        ),
        raw::Error::InvalidRequest(message) => (Observed::Refused, Error::invalid_input(message)),
        raw::Error::Custom(message) => {
            (Observed::Refused, Error::new(ErrorKind::Transport, message))
        }
    })
}

/// The value of a call whose replay found the work done: operations with
/// done codes answer with no body, so their value is `()`.
pub(super) fn done<T: DeserializeOwned>(conflict: Error) -> Result<T> {
    serde_json::from_value(serde_json::Value::Null).map_err(|_| conflict)
}
