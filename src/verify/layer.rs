//! The tower layers: [`VerifyLayer`] (who is calling) and [`RequireScopes`]
//! (may it call this route).
//!
//! Both answer refusals themselves, with an empty body of the inner
//! service's response body type (any `Default` body: axum's `Body`,
//! tonic's, `http_body_util::Full`/`Empty`, `String`), so they sit in
//! `axum::Router::layer`/`route_layer`, `tonic`'s server layers and a
//! plain `hyper` service alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::error::VerifyError;
use super::principal::AgentPrincipal;
use super::verifier::Verifier;
use crate::scope::{Scope, ScopeSet};

/// The future of both services: the inner call, or a refusal.
type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

/// Verifies each request's bearer token and puts its [`AgentPrincipal`] in
/// the request's extensions; refuses the request otherwise (RFC 6750: 400,
/// 401 or 503, the inner service not called).
///
/// Checks no scope: add [`RequireScopes`] per route.
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        VerifyLayer { verifier }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service of [`VerifyLayer`].
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Answer<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            match verifier.verify_request_headers(request.headers()).await {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(refusal) => Ok(refusal.to_response()),
            }
        })
    }
}

/// Refuses a request whose [`AgentPrincipal`] (put there by [`VerifyLayer`])
/// lacks scopes: 403 `insufficient_scope` naming them; 401 when there is
/// no principal at all.
///
/// Checked on every request: the verifier's cache never remembers a scope
/// decision.
#[derive(Clone, Debug)]
pub struct RequireScopes {
    rule: Arc<Rule>,
}

#[derive(Debug)]
struct Rule {
    scopes: ScopeSet,
    all: bool,
}

impl RequireScopes {
    /// Every one of `scopes` is required.
    pub fn all(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self::rule(scopes, true)
    }

    /// At least one of `scopes` is required (none given: every request is refused).
    pub fn any(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self::rule(scopes, false)
    }

    fn rule(scopes: impl IntoIterator<Item = Scope>, all: bool) -> Self {
        RequireScopes {
            rule: Arc::new(Rule {
                scopes: scopes.into_iter().collect(),
                all,
            }),
        }
    }

    /// Whether `principal` passes; the refusal otherwise.
    pub fn check(&self, principal: Option<&AgentPrincipal>) -> Result<(), VerifyError> {
        let principal = principal.ok_or(VerifyError::MissingToken)?;
        let rule = &*self.rule;
        let held = &principal.scopes;
        let pass = if rule.all {
            held.is_superset(&rule.scopes)
        } else {
            rule.scopes.iter().any(|s| held.contains(s))
        };
        if pass {
            Ok(())
        } else {
            Err(VerifyError::InsufficientScope {
                required: rule.scopes.clone(),
            })
        }
    }
}

impl<S> Layer<S> for RequireScopes {
    type Service = RequireScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopesService {
            inner,
            require: self.clone(),
        }
    }
}

/// The service of [`RequireScopes`].
#[derive(Clone, Debug)]
pub struct RequireScopesService<S> {
    inner: S,
    require: RequireScopes,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopesService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Answer<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self
            .require
            .check(request.extensions().get::<AgentPrincipal>())
        {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(refusal) => {
                let response = refusal.to_response();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}
