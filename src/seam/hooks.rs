//! progenitor's hooks, the only way the generated client calls back into the
//! facade: `pre` authorizes the request, `exec` sends it (with retries).

use progenitor_client::{ClientHooks, OperationInfo};
use reqwest::header::AUTHORIZATION;

use super::{Call, CallState};
use crate::error::{Error, Result};
use crate::operation::Operation;
use crate::raw;

impl ClientHooks<Call> for raw::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> std::result::Result<(), raw::Error<E>> {
        let call = &self.inner.0;
        match call.authorize(request, info).await {
            Ok(()) => Ok(()),
            Err(error) => Err(call.fail(error)),
        }
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        self.inner.0.attempts(request).await
    }
}

impl CallState {
    /// Sets the attempt timeout and, for bearer operations, checks the
    /// scopes and puts the token on the request.
    async fn authorize(&self, request: &mut reqwest::Request, info: &OperationInfo) -> Result<()> {
        let op = self.op;
        if info.operation_id != op.id {
            return Err(Error::config(format!(
                "the seam was asked for `{}` but the bindings sent `{}`",
                op.id, info.operation_id
            )));
        }
        *request.timeout_mut() = Some(self.seam.config.attempt_timeout);
        if !op.bearer {
            return Ok(());
        }
        let Some(auth) = &self.seam.auth else {
            return Err(Error::config("this client has no token source"));
        };
        if let Some(requested) = auth.requested.as_ref().filter(|r| !op.granted_by(r)) {
            return Err(Error::missing_scope(
                op.operation.required_scopes(),
                requested.clone(),
                false,
            ));
        }
        let token = auth
            .tokens
            .token()
            .await
            .map_err(|e| e.with_operation(Operation::IssueToken))?;
        if let Some(granted) = token.scopes().filter(|g| !op.granted_by(g)) {
            return Err(Error::missing_scope(
                op.operation.required_scopes(),
                granted.clone(),
                true,
            ));
        }
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.bearer_header()?);
        self.report().token = Some(token);
        Ok(())
    }

    /// After a 401: drops the refused token, fetches a new one and returns
    /// its header, or `None` when no newer token came (the 401 stands).
    pub(super) async fn fresh_token(&self) -> Result<Option<reqwest::header::HeaderValue>> {
        let Some(auth) = &self.seam.auth else {
            return Ok(None);
        };
        let Some(used) = self.report().token.take() else {
            return Ok(None);
        };
        auth.tokens.invalidate(&used);
        let fresh = auth
            .tokens
            .token()
            .await
            .map_err(|e| e.with_operation(Operation::IssueToken))?;
        if std::sync::Arc::ptr_eq(&fresh, &used) {
            return Ok(None);
        }
        let header = fresh.bearer_header()?;
        self.report().token = Some(fresh);
        Ok(Some(header))
    }
}
