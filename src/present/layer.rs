//! The `tower::Layer` of [`OutgoingAuth`], for tower-based HTTP clients
//! (hyper-util's client, tonic channels, anything taking `http::Request`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};

use super::auth::{Next, OutgoingAuth, Replayable};
use super::error::PresentError;

/// The error of [`OutgoingAuthService`]: a
/// [`PresentError`](super::PresentError) or the inner service's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Layer<S> for OutgoingAuth {
    type Service = OutgoingAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OutgoingAuthService {
            auth: self.clone(),
            inner,
        }
    }
}

/// An HTTP client service that presents the agent's token; made by
/// [`OutgoingAuth`] as a `tower::Layer`.
///
/// The request body must be `Clone` (e.g. `http_body_util::Full<Bytes>`) so
/// that a call refused for its token can be replayed. Put a redirect
/// follower (`tower_http::follow_redirect`) outside this layer: each hop then
/// passes the origin check, and a hop to another origin fails instead of
/// carrying the token.
#[derive(Clone, Debug)]
pub struct OutgoingAuthService<S> {
    auth: OutgoingAuth,
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for OutgoingAuthService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<RB>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes
        // its place for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let uri = request.uri();
            auth.check_origin(uri.scheme_str(), uri.host(), uri.port_u16())?;
            let (token, header) = auth.token().await?;
            request.headers_mut().insert(AUTHORIZATION, header);
            let marked = request.extensions().get::<Replayable>().is_some();
            let copy = OutgoingAuth::replayable(request.method(), marked).then(|| copy(&request));
            let response = inner.call(request).await.map_err(Into::into)?;
            // A redirect follower sits outside this layer (see above), so
            // the answer is from the origin that got the token.
            let next = auth
                .after(
                    response.status(),
                    response.headers(),
                    true,
                    &token,
                    copy.is_some(),
                )
                .await?;
            match (next, copy) {
                (Next::Replay(token), Some(mut again)) => {
                    again.headers_mut().insert(
                        AUTHORIZATION,
                        token.bearer_header().map_err(PresentError::Token)?,
                    );
                    let response = inner.ready().await.map_err(Into::into)?;
                    let response = response.call(again).await.map_err(Into::into)?;
                    OutgoingAuth::check_scope(response.status(), response.headers())?;
                    Ok(response)
                }
                _ => Ok(response),
            }
        })
    }
}

/// A copy of `request` to send again (`http::Request` is not `Clone`).
fn copy<B: Clone>(request: &Request<B>) -> Request<B> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}
