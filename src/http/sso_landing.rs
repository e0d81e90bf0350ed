//! What both SSO sign-in flows (`oidc.rs`, `saml.rs`) answer the browser with: a 303 to the
//! landing page (`sso_redirect_url`, else `{public_url}/`) carrying the session, or an error
//! message for the person signing in, in the URL fragment; and the page for an unknown or
//! disabled sign-in method.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use url::form_urlencoded;

use crate::services::Services;
use crate::sso::{Completed, SsoError};

/// The fragment that tells the landing page how the round trip ended: a new session
/// (`token`, `expires_at`), or `link_code` for a link round trip, which the account's own
/// session confirms with `confirmSsoLink`.
pub(super) fn outcome_fragment(done: &Completed, return_to: Option<&str>) -> String {
    let mut fragment = form_urlencoded::Serializer::new(String::new());
    match done {
        Completed::SignedIn(signed_in) => {
            fragment.append_pair("token", &signed_in.token);
            fragment.append_pair("expires_at", &signed_in.session.expires_at.to_rfc3339());
        }
        Completed::LinkPending { code } => {
            fragment.append_pair("link_code", code);
        }
    }
    if let Some(return_to) = return_to {
        fragment.append_pair("return_to", return_to);
    }
    fragment.finish()
}

/// The landing page with `fragment`.
pub(super) fn landing(services: &Services, fragment: &str) -> String {
    let config = &services.config;
    let base = match &config.sso_redirect_url {
        Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => format!("{}/", config.public_url.trim_end_matches('/')),
    };
    let base = base.split('#').next().unwrap_or_default();
    format!("{base}#{fragment}")
}

/// A 303 to the landing page with the error's message for the person signing in.
pub(super) fn landing_error(services: &Services, e: &SsoError) -> Response {
    let fragment = form_urlencoded::Serializer::new(String::new())
        .append_pair("error", &public_message(e))
        .finish();
    see_other(&landing(services, &fragment))
}

/// What the person signing in is told.
pub(super) fn public_message(e: &SsoError) -> String {
    match e {
        SsoError::Refused(_) | SsoError::Config(_) | SsoError::Upstream(_) => e.to_string(),
        SsoError::Store(_) | SsoError::Internal(_) => {
            "the sign-in failed on our side; try again later".to_owned()
        }
    }
}

pub(super) fn log_failure(place: &str, e: &SsoError) {
    match e {
        SsoError::Refused(why) => tracing::info!(reason = %why, "{place}: sign-in refused"),
        SsoError::Config(_) | SsoError::Upstream(_) => {
            tracing::warn!(error = %e, "{place}: sign-in failed")
        }
        SsoError::Store(inner) => tracing::error!(error = ?inner, "{place}: store error"),
        SsoError::Internal(detail) => tracing::error!(detail = %detail, "{place}: internal error"),
    }
}

pub(super) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
    )
        .into_response()
}

pub(super) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><title>Not found</title><p>This sign-in method does not exist or is turned off.</p>"),
    )
        .into_response()
}
