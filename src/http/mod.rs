//! HTTP routes: the GraphQL endpoint (POST) and GraphiQL (GET) at `/graphql`, liveness at
//! `/healthz` and readiness (the database answers) at `/readyz`.

use std::net::{IpAddr, SocketAddr};

use async_graphql::http::GraphiQLSource;
use async_graphql::{ErrorExtensions, ServerError};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::Services;
use crate::auth::Caller;
use crate::domain::Actor;
use crate::graphql::ApiSchema;
use crate::graphql::context::RequestCtx;
use crate::graphql::error::ApiError;

#[derive(Clone)]
pub struct HttpState {
    pub services: Services,
    pub schema: ApiSchema,
}

pub fn routes(state: HttpState) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match state.services.store.ping().await {
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

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.services.metrics.render(),
    )
}

async fn graphql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let actor = Actor {
        user_id: None,
        ip: Some(client_ip(&headers, peer, state.services.config.trust_forwarded_for).to_string()),
        user_agent: header_str(&headers, header::USER_AGENT.as_str()).map(str::to_owned),
        request_id: header_str(&headers, "x-request-id").map(str::to_owned),
    };
    let caller = match bearer(&headers) {
        Err(why) => Caller::Rejected(why),
        Ok(token) => match state.services.auth.authenticate(token).await {
            Ok(caller) => caller,
            Err(e) => return error_response(ApiError::internal(&e)),
        },
    };
    let actor = match &caller {
        Caller::User { user, .. } => {
            tracing::Span::current().record("user_id", tracing::field::display(user.id));
            Actor {
                user_id: Some(user.id),
                ..actor
            }
        }
        _ => actor,
    };
    let request = request.into_inner().data(RequestCtx { caller, actor });
    let mut response = state.schema.execute(request).await;
    // Errors raised by async-graphql itself (syntax, validation, limits, argument types) are
    // the client's: give them the code every client can rely on.
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
    response.into()
}

fn error_response(e: ApiError) -> GraphQLResponse {
    let error: async_graphql::Error = e.into();
    async_graphql::Response::from_errors(vec![ServerError {
        message: error.message.clone(),
        source: None,
        locations: Vec::new(),
        path: Vec::new(),
        extensions: error.extensions,
    }])
    .into()
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The bearer token, `None` when no `Authorization` header was sent.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header must be `Bearer <token>`")?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err("the Authorization header must be `Bearer <token>`"),
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
