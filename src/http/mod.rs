//! HTTP routes: at `/graphql` the GraphQL endpoint (POST), GraphQL over WebSocket (a GET that
//! asks for the upgrade; `graphql-transport-ws`, or the legacy `graphql-ws`) and GraphiQL (any
//! other GET); liveness at `/healthz`, readiness (the database answers) at `/readyz`, metrics
//! at `/metrics` only for a caller with `IAM_METRICS_TOKEN` (or on their own address,
//! `IAM_METRICS_LISTEN`: see [`metrics_routes`]).
//!
//! A WebSocket connection presents its token in its `connection_init` message, and each of
//! its operations is authorized anew, as an HTTP request with that token is (`ws.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::{ErrorExtensions, ServerError};
use async_graphql_axum::GraphQLResponse;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

mod documents;
mod oidc;
mod prepared;
mod saml;
mod sso_landing;
mod ws;

pub use documents::Documents;
use documents::{BadBody, Reading};

use crate::auth::Caller;
use crate::domain::Actor;
use crate::graphql::ApiSchema;
use crate::graphql::context::RequestCtx;
use crate::graphql::error::ApiError;
use crate::services::Services;

/// What the routes share. One `Arc`: axum clones the state for every request.
#[derive(Clone)]
pub struct HttpState(Arc<Shared>);

pub struct Shared {
    pub services: Services,
    pub schema: ApiSchema,
    /// The same schema in fast validation mode, for query texts that passed the full
    /// validation before (see `documents.rs`).
    pub schema_for_validated: ApiSchema,
    pub documents: Documents,
}

impl HttpState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for HttpState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The routes. The body size is limited by the layer the application puts around them
/// (`max_body_bytes`), not by axum's default.
pub fn routes(state: HttpState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(oidc::routes())
        .merge(saml::routes())
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match state.services.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": "ok" })),
        ),
        Err(e) => {
            tracing::warn!(error = ?e, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "database": "unreachable" })),
            )
        }
    }
}

/// `/metrics` on the API's port: for the bearer of `metrics_token` only; nothing when the
/// metrics have their own address or no token is set.
async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let config = &state.services.config;
    let expected = match (&config.metrics_listen, &config.metrics_token) {
        (None, Some(token)) => token,
        (Some(_), _) | (None, None) => {
            return (
                StatusCode::NOT_FOUND,
                "metrics are not served on this address: set IAM_METRICS_LISTEN or IAM_METRICS_TOKEN",
            )
                .into_response();
        }
    };
    let presented = bearer(&headers).ok().flatten().unwrap_or_default();
    let matches: bool =
        subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into();
    if !matches {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "send `Authorization: Bearer <IAM_METRICS_TOKEN>`",
        )
            .into_response();
    }
    metrics_text(&state.services).into_response()
}

fn metrics_text(services: &Services) -> impl IntoResponse + use<> {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        services.metrics.render(),
    )
}

/// The routes of the metrics address (`IAM_METRICS_LISTEN`): `/metrics`, open to whoever
/// reaches that address (keep it on a private interface).
pub fn metrics_routes(services: Services) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(services): State<Services>| async move { metrics_text(&services) }),
        )
        .with_state(services)
}

async fn graphql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reading = match state.documents.read(&body) {
        Ok(reading) => reading,
        Err(why) => return bad_body(why),
    };
    let actor = actor_of(&headers, peer, &state.services);
    let request_ctx = match request_ctx(&state.services, bearer(&headers), actor).await {
        Ok(ctx) => ctx,
        Err(e) => return error_response(e).into_response(),
    };
    let metrics = &state.services.metrics;
    let incoming = match reading {
        Reading::Request(incoming) => *incoming,
        Reading::Check(check) => {
            if let Some(answer) = check.answer(&state.services, &request_ctx).await {
                metrics.validations_prepared.inc();
                return GraphQLResponse::from(answer).into_response();
            }
            match state.documents.request(&body) {
                Ok(incoming) => incoming,
                Err(why) => return bad_body(why),
            }
        }
    };
    let response = if incoming.validated() {
        metrics.validations_remembered.inc();
        let request = incoming.into_request().data(request_ctx);
        state.schema_for_validated.execute(request).await
    } else {
        metrics.validations_full.inc();
        let (request, outcome) = incoming.into_parts();
        let response = state.schema.execute(request.data(request_ctx)).await;
        outcome.ran(&response);
        response
    };
    GraphQLResponse::from(with_codes(response)).into_response()
}

/// 400, for a body that is not one GraphQL request.
fn bad_body(BadBody(why): BadBody) -> Response {
    let mut response = error_response(ApiError::bad_input("body", why)).into_response();
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// `GET /graphql`: a WebSocket upgrade becomes a GraphQL-over-WebSocket connection (see
/// `ws.rs`); anything else is shown GraphiQL.
async fn graphql_get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if !wants_websocket(request.headers()) {
        return graphiql().await.into_response();
    }
    let actor = actor_of(request.headers(), peer, &state.services);
    ws::upgrade(state, actor, request).await
}

/// Whether the request asks to switch to the WebSocket protocol.
fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Who is calling, and the actor their changes are recorded under: the one place a bearer
/// token becomes a [`RequestCtx`], for HTTP requests and WebSocket connections alike.
async fn request_ctx(
    services: &Services,
    token: Result<Option<&str>, &'static str>,
    actor: Actor,
) -> Result<RequestCtx, ApiError> {
    let caller = match token {
        Err(why) => Caller::Rejected(why),
        Ok(token) => services
            .auth
            .authenticate(token, &actor)
            .await
            .map_err(|e| ApiError::internal(&e))?,
    };
    let actor = match &caller {
        Caller::User { user, session } => {
            tracing::Span::current().record("user_id", tracing::field::display(user.id));
            Actor {
                user_id: Some(user.id),
                email: Some(user.email.clone()),
                // An impersonation names both people in every event it writes.
                impersonator_id: session.impersonator_id,
                credential_id: session.impersonator_id.map(|_| session.id),
                ..actor
            }
        }
        Caller::Key(key) => {
            let actor = crate::auth::key_actor(key, &actor);
            if let Some(id) = actor.user_id {
                tracing::Span::current().record("user_id", tracing::field::display(id));
            }
            actor
        }
        _ => actor,
    };
    Ok(RequestCtx { caller, actor })
}

/// The audit actor of a request, before we know who is calling.
fn actor_of(headers: &HeaderMap, peer: SocketAddr, services: &Services) -> Actor {
    Actor {
        user_id: None,
        ip: Some(client_ip(headers, peer, services.config.trust_forwarded_for).to_string()),
        user_agent: header_str(headers, header::USER_AGENT.as_str()).map(str::to_owned),
        request_id: header_str(headers, "x-request-id").map(str::to_owned),
        ..Actor::default()
    }
}

/// Errors raised by async-graphql itself (syntax, validation, limits, argument types) are the
/// client's: give them the code every client can rely on.
fn with_codes(mut response: async_graphql::Response) -> async_graphql::Response {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            let coded = ApiError::bad_input("query", error.message.clone());
            let extended = async_graphql::Error::from(coded).extend();
            error.extensions = extended.extensions;
        }
    }
    response
}

fn error_response(e: ApiError) -> GraphQLResponse {
    error_only(e).into()
}

/// A response that carries `e` and no data.
fn error_only(e: ApiError) -> async_graphql::Response {
    let error: async_graphql::Error = e.into();
    async_graphql::Response::from_errors(vec![ServerError {
        message: error.message.clone(),
        source: None,
        locations: Vec::new(),
        path: Vec::new(),
        extensions: error.extensions,
    }])
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The bearer token, `None` when no `Authorization` header was sent.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| BEARER_SHAPE)?;
    bearer_value(value).map(Some)
}

const BEARER_SHAPE: &str = "the Authorization header must be `Bearer <token>`";

/// The token of an `Authorization` value, `Bearer <token>`.
fn bearer_value(value: &str) -> Result<&str, &'static str> {
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(BEARER_SHAPE),
    }
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop behind a trusted proxy.
fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        let forwarded = header_str(headers, "x-forwarded-for")
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}
