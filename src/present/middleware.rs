//! The `reqwest_middleware::Middleware` of [`OutgoingAuth`].

use http::Extensions;
use http::header::AUTHORIZATION;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next as Chain};

use super::auth::{Next, OutgoingAuth, Replayable};
use super::error::PresentError;

/// Put it after a retry middleware in the chain, so every retry carries the
/// current token. reqwest follows a redirect to another origin without the
/// token: it drops `Authorization` whenever the scheme, host or port changes.
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
#[async_trait::async_trait]
impl Middleware for OutgoingAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        chain: Chain<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let url = request.url();
        self.check_origin(Some(url.scheme()), url.host_str(), url.port())
            .map_err(refusal)?;
        let (token, header) = self.token().await.map_err(refusal)?;
        let marked = extensions.get::<Replayable>().is_some();
        // Copied before the token goes in: a replay carries a new token
        // anyway, and a request without headers of its own copies no map.
        let copy = if OutgoingAuth::replayable(request.method(), marked) {
            copy(&request)
        } else {
            None
        };
        request.headers_mut().insert(AUTHORIZATION, header);
        // reqwest follows redirects inside the chain and drops the token at
        // an origin change, so only an answer from this origin saw it.
        let sent_to = request.url().clone();
        let response = chain.clone().run(request, extensions).await?;
        let from_receiver = same_origin(response.url(), &sent_to);
        let next = self
            .after(
                response.status(),
                response.headers(),
                from_receiver,
                &token,
                copy.is_some(),
            )
            .await
            .map_err(refusal)?;
        match (next, copy) {
            (Next::Replay(token), Some(mut again)) => {
                let header = token
                    .bearer_header()
                    .map_err(|e| refusal(PresentError::Token(e)))?;
                again.headers_mut().insert(AUTHORIZATION, header);
                let response = chain.run(again, extensions).await?;
                OutgoingAuth::check_scope(response.status(), response.headers())
                    .map_err(refusal)?;
                Ok(response)
            }
            _ => Ok(response),
        }
    }
}

/// The request again, for a replay, or `None` when its body is a stream.
/// A request without a body is copied field by field rather than with
/// `Request::try_clone`, which always allocates a per-request config map
/// even when no timeout was set: this runs on every call.
fn copy(request: &Request) -> Option<Request> {
    if request.body().is_some() {
        return request.try_clone();
    }
    let mut copy = Request::new(request.method().clone(), request.url().clone());
    if let Some(timeout) = request.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    if !request.headers().is_empty() {
        *copy.headers_mut() = request.headers().clone();
    }
    *copy.version_mut() = request.version();
    Some(copy)
}

/// Whether `a` and `b` have one origin: scheme, host and port (the default
/// port of the scheme when none is written).
fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn refusal(error: PresentError) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(error)
}
