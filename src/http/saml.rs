//! SAML sign-in routes: `GET /auth/saml/{provider_id}/login` (SP-initiated, HTTP-Redirect),
//! `POST /auth/saml/{provider_id}/acs` (the assertion consumer service, SP- or IdP-initiated)
//! and `GET /auth/saml/{provider_id}/metadata` (the SP metadata XML).

use axum::Router;

use super::HttpState;

pub fn routes() -> Router<HttpState> {
    Router::new()
}
