//! OIDC sign-in routes: `GET /auth/oidc/{provider_id}/login` (to the IdP) and
//! `GET /auth/oidc/callback` (back from it).

use axum::Router;

use super::HttpState;

pub fn routes() -> Router<HttpState> {
    Router::new()
}
