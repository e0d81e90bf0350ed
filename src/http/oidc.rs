//! OIDC sign-in routes: `GET /auth/oidc/{provider_id}/login` (to the IdP) and
//! `GET /auth/oidc/callback` (back from it).
//!
//! The login route answers 303 to the IdP, or 404 when the provider is unknown, turned off or
//! not an OIDC provider. The callback ends in a 303 to the sign-in landing page
//! (`sso_redirect_url`, else `{public_url}/`) with the outcome in the URL fragment, which
//! browsers do not send to servers: `#token=…&expires_at=…` (RFC 3339), plus `&return_to=…`
//! when the sign-in was started with one; or `#error=…`, a message for the person signing in.
//! Internal detail is logged, never shown.
//!
//! The login route binds the sign-in to the browser that started it: it sets the pending
//! request's `state` in an HttpOnly, SameSite=Lax cookie scoped to `/auth/oidc`, and the
//! callback refuses a `state` this browser did not start (login CSRF: an attacker cannot have
//! a victim's browser finish the attacker's sign-in). Link round trips (`startSsoLink`) start
//! from the API, not from this route; they are bound to the account that started them.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use uuid::Uuid;

use super::sso_landing::{
    landing, landing_error, log_failure, not_found, outcome_fragment, see_other,
};
use super::{HttpState, actor_of};
use crate::domain::Actor;
use crate::services::Services;
use crate::sso::{self, ProviderSettings, SsoError, oidc};

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/auth/oidc/{provider_id}/login", get(login))
        .route("/auth/oidc/callback", get(callback))
}

#[derive(Deserialize)]
struct LoginParams {
    return_to: Option<String>,
}

#[derive(Deserialize)]
struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/{provider_id}/login?return_to=…`: sends the browser to the IdP.
async fn login(
    State(state): State<HttpState>,
    Path(provider_id): Path<String>,
    params: Result<Query<LoginParams>, QueryRejection>,
) -> Response {
    let services = &state.services;
    let Ok(provider_id) = Uuid::parse_str(&provider_id) else {
        return not_found();
    };
    let provider = match services.store().provider(provider_id).await {
        Ok(Some(p)) if p.enabled && matches!(p.settings, ProviderSettings::Oidc(_)) => p,
        Ok(_) => return not_found(),
        Err(e) => {
            tracing::error!(error = ?e, %provider_id, "oidc login: reading the provider failed");
            return landing_error(services, &SsoError::Store(e));
        }
    };
    let return_to = params
        .ok()
        .and_then(|Query(p)| p.return_to)
        .and_then(|r| sso::safe_return_to(&r));
    match oidc::start(&services.sso, &provider, return_to, None).await {
        Ok(url) => {
            let mut response = see_other(url.as_str());
            let state = url
                .query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if let Ok(cookie) = state_cookie(services, &state, sso::REQUEST_TTL_SECS) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            log_failure("oidc login", &e);
            landing_error(services, &e)
        }
    }
}

/// `GET /auth/oidc/callback?state=…&code=…` (or `error=…`): ends the sign-in.
async fn callback(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let services = &state.services;
    let Ok(Query(params)) = params else {
        return landing_error(
            services,
            &SsoError::Refused("the identity provider's answer could not be read".to_owned()),
        );
    };
    let actor = actor_of(&headers, peer, services);
    let started_here = state_of_browser(&headers).is_some_and(|cookie| {
        let given = params.state.as_deref().unwrap_or_default();
        !given.is_empty()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                cookie.as_bytes(),
                given.as_bytes(),
            ))
    });
    let outcome = match started_here {
        true => sign_in(services, params, &actor).await,
        false => foreign(services, params, &actor).await,
    };
    let mut response = match outcome {
        Ok(fragment) => see_other(&landing(services, &fragment)),
        Err(e) => {
            log_failure("oidc callback", &e);
            landing_error(services, &e)
        }
    };
    // The cookie did its work; a callback it did not match leaves it for the real one.
    if started_here && let Ok(expired) = state_cookie(services, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, expired);
    }
    response
}

/// The name of the cookie that holds the `state` of the sign-in this browser started.
const STATE_COOKIE: &str = "iam_oidc_state";

/// The cookie that binds `state` to this browser for `max_age` seconds (0: forget it).
fn state_cookie(
    services: &Services,
    state: &str,
    max_age: i64,
) -> Result<HeaderValue, axum::http::header::InvalidHeaderValue> {
    let secure = if services.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={state}; Max-Age={max_age}; Path=/auth/oidc; HttpOnly; SameSite=Lax{secure}"
    ))
}

/// The `state` cookie this browser sent, if any.
fn state_of_browser(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == STATE_COOKIE)
        .map(|(_, value)| value)
}

/// A callback whose `state` this browser did not start: only a link round trip may go on
/// (it started from the API), or an IdP's refusal be shown (it signs no one in); a sign-in is
/// refused, and its pending request is spent so the code cannot be used elsewhere either.
async fn foreign(
    services: &Services,
    params: CallbackParams,
    actor: &Actor,
) -> Result<String, SsoError> {
    let state = params.state.clone().unwrap_or_default();
    if params.error.is_some()
        || (!state.is_empty() && services.store().sso_request_links(&state).await?)
    {
        return sign_in(services, params, actor).await;
    }
    if !state.is_empty() {
        let _ = services.store().take_sso_request(&state, None).await;
    }
    Err(SsoError::Refused(
        "this sign-in's state was not issued to this browser: start the sign-in again from the sign-in page"
            .to_owned(),
    ))
}

/// The callback's work: the fragment for the landing page on success.
async fn sign_in(
    services: &Services,
    params: CallbackParams,
    actor: &Actor,
) -> Result<String, SsoError> {
    let state = params.state.unwrap_or_default();
    if let Some(error) = params.error {
        tracing::info!(
            error = %error,
            description = params.error_description.as_deref().unwrap_or_default(),
            "oidc callback: the identity provider answered an error"
        );
        // The pending sign-in is over: take it, so that its state cannot be used any more.
        if !state.is_empty() {
            let _ = services.store().take_sso_request(&state, None).await;
        }
        return Err(SsoError::Refused(idp_error_message(&error)));
    }
    let code = params.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        SsoError::Refused("the identity provider sent no sign-in code".to_owned())
    })?;
    let finished = oidc::finish(&services.sso, &state, &code).await?;
    let done = sso::complete(
        &services.sso,
        &finished.provider,
        finished.identity,
        finished.link_user_id,
        actor,
    )
    .await?;
    Ok(outcome_fragment(&done, finished.return_to.as_deref()))
}

/// A message for an OAuth error code sent back by the IdP. Only the code (its letters and
/// underscores) is repeated; the IdP's free-text description is logged, not shown.
fn idp_error_message(error: &str) -> String {
    match error {
        "access_denied" => {
            "the sign-in was cancelled or refused at the identity provider".to_owned()
        }
        "login_required" | "interaction_required" | "consent_required" => {
            "the identity provider needs you to sign in there first".to_owned()
        }
        other => {
            let code: String = other
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            format!("the identity provider refused the sign-in (`{code}`)")
        }
    }
}
