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
        request.headers_mut().insert(AUTHORIZATION, header);
        let marked = extensions.get::<Replayable>().is_some();
        let copy = if OutgoingAuth::replayable(request.method(), marked) {
            request.try_clone()
        } else {
            None
        };
        let response = chain.clone().run(request, extensions).await?;
        let next = self
            .after(
                response.status(),
                response.headers(),
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

fn refusal(error: PresentError) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(error)
}
