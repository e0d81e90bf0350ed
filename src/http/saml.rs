//! SAML sign-in routes: `GET /auth/saml/{provider_id}/login` (SP-initiated, HTTP-Redirect),
//! `POST /auth/saml/{provider_id}/acs` (the assertion consumer service, SP- or IdP-initiated)
//! and `GET /auth/saml/{provider_id}/metadata` (the SP metadata XML).
//!
//! Login and ACS answer 404 when the provider is unknown, turned off or not a SAML provider;
//! the metadata is served for a provider that is turned off too (it is what the IdP is set up
//! with before the provider is turned on). The ACS ends, like the OIDC callback, in a 303 to the
//! sign-in landing page (`sso_redirect_url`, else `{public_url}/`) with the outcome in the URL
//! fragment: `#token=…&expires_at=…` (RFC 3339), plus `&return_to=…` when there is one; or
//! `#error=…`, a message for the person signing in. Internal detail is logged, never shown.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;

use super::sso_landing::{
    landing, landing_error, log_failure, not_found, outcome_fragment, see_other,
};
use super::{HttpState, actor_of};
use crate::domain::Actor;
use crate::services::Services;
use crate::sso::{self, Provider, ProviderSettings, SsoError, saml};

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/auth/saml/{provider_id}/metadata", get(metadata))
        .route("/auth/saml/{provider_id}/login", get(login))
        .route("/auth/saml/{provider_id}/acs", post(acs))
}

#[derive(Deserialize)]
struct LoginParams {
    return_to: Option<String>,
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// Which providers a route serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Enabled,
    EvenDisabled,
}

/// The SAML provider named in the path, or the response to give instead (404, or the landing
/// page with an error when it cannot be read).
async fn saml_provider(
    services: &Services,
    raw_id: &str,
    wanted: Wanted,
) -> Result<Provider, Response> {
    let Ok(id) = Uuid::parse_str(raw_id) else {
        return Err(not_found());
    };
    match services.store().provider(id).await {
        Ok(Some(p))
            if matches!(p.settings, ProviderSettings::Saml(_))
                && (p.enabled || wanted == Wanted::EvenDisabled) =>
        {
            Ok(p)
        }
        Ok(_) => Err(not_found()),
        Err(e) => {
            let e = SsoError::Store(e);
            log_failure("saml", &e);
            Err(landing_error(services, &e))
        }
    }
}

/// `GET /auth/saml/{provider_id}/metadata`: the SP metadata to give the IdP.
async fn metadata(State(state): State<HttpState>, Path(provider_id): Path<String>) -> Response {
    match saml_provider(&state.services, &provider_id, Wanted::EvenDisabled).await {
        Ok(provider) => (
            [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
            saml::sp_metadata(&state.services.sso, &provider),
        )
            .into_response(),
        Err(response) => response,
    }
}

/// `GET /auth/saml/{provider_id}/login?return_to=…`: sends the browser to the IdP with an
/// AuthnRequest. A `return_to` that is not a path on this site is left out.
async fn login(
    State(state): State<HttpState>,
    Path(provider_id): Path<String>,
    params: Result<Query<LoginParams>, QueryRejection>,
) -> Response {
    let services = &state.services;
    let provider = match saml_provider(services, &provider_id, Wanted::Enabled).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let return_to = params
        .ok()
        .and_then(|Query(p)| p.return_to)
        .and_then(|r| sso::safe_return_to(&r));
    match saml::start(&services.sso, &provider, return_to, None).await {
        Ok(url) => see_other(url.as_str()),
        Err(e) => {
            log_failure("saml login", &e);
            landing_error(services, &e)
        }
    }
}

/// `POST /auth/saml/{provider_id}/acs` (form: `SAMLResponse`, `RelayState`): verifies the
/// response, signs the person in and sends them to the landing page.
async fn acs(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(provider_id): Path<String>,
    form: Result<Form<AcsForm>, FormRejection>,
) -> Response {
    let services = &state.services;
    let provider = match saml_provider(services, &provider_id, Wanted::Enabled).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let actor = actor_of(&headers, peer, services);
    match sign_in(services, &provider, form, &actor).await {
        Ok(fragment) => see_other(&landing(services, &fragment)),
        Err(e) => {
            log_failure("saml acs", &e);
            landing_error(services, &e)
        }
    }
}

/// The ACS's work: the fragment for the landing page on success.
async fn sign_in(
    services: &Services,
    provider: &Provider,
    form: Result<Form<AcsForm>, FormRejection>,
    actor: &Actor,
) -> Result<String, SsoError> {
    let Ok(Form(form)) = form else {
        return Err(SsoError::Refused(
            "the identity provider's answer could not be read".to_owned(),
        ));
    };
    let response = form
        .saml_response
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            SsoError::Refused("the identity provider sent no SAML response".to_owned())
        })?;
    let finished = saml::finish(
        &services.sso,
        provider,
        &response,
        form.relay_state.as_deref(),
    )
    .await?;
    let done = sso::complete(
        &services.sso,
        provider,
        finished.identity,
        finished.link_user_id,
        actor,
    )
    .await?;
    Ok(outcome_fragment(&done, finished.return_to.as_deref()))
}
