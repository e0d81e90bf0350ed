//! GraphQL over WebSocket at `GET /graphql` (`graphql-transport-ws`, or the legacy
//! `graphql-ws`).
//!
//! A connection presents its credential once, in `connection_init` (`{"Authorization": "Bearer
//! <token>"}` or `{"token": "<token>"}`; the upgrade request's `Authorization` header when the
//! payload has neither), but the credential is only remembered: every operation on the
//! connection — query, mutation or subscription — is authorized anew with the session's
//! current state, through the session cache that revocations invalidate (at once on this
//! instance, within the propagation bound on the others). A live operation ends with
//! UNAUTHENTICATED as soon as its session is revoked or expires.
//!
//! Limits: `connection_init` within `ws_connection_init_timeout` (else the socket closes with
//! 4408), at most `ws_max_subscriptions` operations open at once on a connection, and no
//! message larger than the HTTP body limit (`max_body_bytes`).

use std::future::ready;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use async_graphql::{Data, Executor};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tracing::Instrument;
use uuid::Uuid;

use super::{HttpState, bearer, bearer_value, error_only, request_ctx, with_codes};
use crate::auth::Caller;
use crate::domain::Actor;
use crate::events::SessionSignal;
use crate::graphql::ApiSchema;
use crate::graphql::error::ApiError;
use crate::services::Services;

/// How often a live operation looks at its session even when no revocation was heard of (a
/// safety net: revocations and expiry end it sooner).
const SESSION_RECHECK: Duration = Duration::from_secs(30);

/// The close code of `graphql-transport-ws` for a connection that did not initialise in time.
const INIT_TIMEOUT_CODE: u16 = 4408;

/// Upgrades `request` to a GraphQL-over-WebSocket connection; `actor` is who it is recorded as.
pub(super) async fn upgrade(state: HttpState, actor: Actor, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let Some(protocol) = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        })
    else {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the `graphql-transport-ws` (or legacy `graphql-ws`) subprotocol",
        )
            .into_response();
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let config = &state.services.config;
    let span = tracing::info_span!(
        "graphql_ws",
        request_id = actor.request_id.as_deref().unwrap_or_default(),
        user_id = tracing::field::Empty,
        org_id = tracing::field::Empty,
    );
    let connection = Arc::new(Connection {
        services: state.services.clone(),
        actor,
        // A client that cannot put a token into connection_init may send the header instead.
        header_token: bearer(&parts.headers).map(|t| t.map(str::to_owned)),
        token: OnceLock::new(),
        init_arrived: AtomicBool::new(false),
        open: AtomicUsize::new(0),
        max_open: config.ws_max_subscriptions,
    });
    let executor = ConnectionExecutor {
        schema: state.schema.clone(),
        connection: connection.clone(),
    };
    let init_timeout = config.ws_connection_init_timeout;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(config.max_body_bytes)
        .max_frame_size(config.max_body_bytes)
        .on_upgrade(move |socket| {
            serve(socket, executor, protocol, connection, init_timeout).instrument(span)
        })
}

/// One connection, from the upgrade to the close.
struct Connection {
    services: Services,
    actor: Actor,
    header_token: Result<Option<String>, &'static str>,
    /// The credential of `connection_init` (or of the upgrade request), once it arrived.
    token: OnceLock<Result<Option<String>, &'static str>>,
    init_arrived: AtomicBool,
    /// Operations running now.
    open: AtomicUsize,
    max_open: usize,
}

impl Connection {
    /// Remembers the credential `connection_init` carries; authorization comes per operation.
    fn init(&self, payload: &serde_json::Value) {
        self.init_arrived.store(true, Ordering::SeqCst);
        let token = match init_token(payload) {
            InitToken::Given(token) => token,
            InitToken::Absent => self.header_token.clone(),
        };
        let _ = self.token.set(token);
    }

    fn token(&self) -> Result<Option<&str>, &'static str> {
        match self.token.get() {
            Some(Ok(token)) => Ok(token.as_deref()),
            Some(Err(why)) => Err(why),
            None => Ok(None),
        }
    }
}

/// One open operation of a connection; the count goes down when it is dropped.
struct Slot(Arc<Connection>);

impl Slot {
    fn take(connection: &Arc<Connection>) -> Option<Self> {
        let before = connection.open.fetch_add(1, Ordering::SeqCst);
        if before >= connection.max_open {
            connection.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Self(connection.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Relays between the socket and the protocol, and closes a connection that does not
/// initialise in time.
async fn serve(
    socket: WebSocket,
    executor: ConnectionExecutor,
    protocol: WebSocketProtocols,
    connection: Arc<Connection>,
    init_timeout: Duration,
) {
    let (mut sink, incoming) = socket.split();
    // A read error (a message over the size limit included) ends the connection.
    let incoming = incoming
        .take_while(|message| ready(message.is_ok()))
        .filter_map(|message| {
            ready(match message {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(message.into_data()),
                _ => None,
            })
        });
    let init = connection.clone();
    let outgoing = async_graphql::http::WebSocket::new(executor, incoming, protocol)
        .on_connection_init(move |payload| {
            init.init(&payload);
            ready(Ok(Data::default()))
        })
        .map(|message| match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        });
    futures_util::pin_mut!(outgoing);
    let deadline = tokio::time::sleep(init_timeout);
    tokio::pin!(deadline);
    loop {
        let initialised = connection.init_arrived.load(Ordering::SeqCst);
        let message = tokio::select! {
            message = outgoing.next() => message,
            () = &mut deadline, if !initialised => {
                if connection.init_arrived.load(Ordering::SeqCst) {
                    continue;
                }
                Some(Message::Close(Some(CloseFrame {
                    code: INIT_TIMEOUT_CODE,
                    reason: "Connection initialisation timeout".into(),
                })))
            }
        };
        let Some(message) = message else { break };
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            break;
        }
    }
}

/// The schema as one connection runs it: each operation authorized anew, with the same limits
/// and error codes as over HTTP.
#[derive(Clone)]
struct ConnectionExecutor {
    schema: ApiSchema,
    connection: Arc<Connection>,
}

impl Executor for ConnectionExecutor {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        // The protocol runs every operation as a stream; this path serves no connection.
        let mut operation = self.execute_stream(request, None);
        operation
            .next()
            .await
            .unwrap_or_else(|| error_only(ApiError::internal(&"an operation gave no answer")))
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let Some(slot) = Slot::take(&self.connection) else {
            let refusal = ApiError::bad_input(
                "operation",
                format!(
                    "this connection already runs {} operations, the most it may: complete one first",
                    self.connection.max_open
                ),
            );
            return stream::once(ready(error_only(refusal))).boxed();
        };
        let schema = self.schema.clone();
        let connection = self.connection.clone();
        stream::once(async move {
            let services = &connection.services;
            // Subscribed before the session is read: a revocation after the read is heard.
            let signals = services.bus.subscribe_sessions();
            let ctx =
                match request_ctx(services, connection.token(), connection.actor.clone()).await {
                    Ok(ctx) => ctx,
                    Err(e) => return stream::once(ready(error_only(e))).boxed(),
                };
            let guard = match &ctx.caller {
                Caller::User { user, session } => Some(SessionGuard::new(
                    connection.clone(),
                    user.id,
                    session.expires_at - services.clock().now(),
                    signals,
                )),
                // A key's operation ends when the key stops working (checked like a session).
                Caller::Key(key) => Some(SessionGuard::new(
                    connection.clone(),
                    key.key.id,
                    key.key.expires_at - services.clock().now(),
                    signals,
                )),
                _ => None,
            };
            let operation = schema
                .execute_stream(request.data(ctx), session_data)
                .map(with_codes)
                .boxed();
            guarded(operation, guard, slot)
        })
        .flatten()
        .boxed()
    }
}

/// `operation`'s answers until its session ends, then UNAUTHENTICATED and nothing more.
fn guarded(
    operation: BoxStream<'static, async_graphql::Response>,
    guard: Option<SessionGuard>,
    slot: Slot,
) -> BoxStream<'static, async_graphql::Response> {
    stream::unfold(Some((operation, guard, slot)), |state| async move {
        let (mut operation, mut guard, slot) = state?;
        let next = match guard.as_mut() {
            None => operation.next().await,
            Some(guard) => tokio::select! {
                next = operation.next() => next,
                ended = guard.ended() => return Some((error_only(ended), None)),
            },
        };
        next.map(|answer| (answer, Some((operation, guard, slot))))
    })
    .boxed()
}

/// What ends an operation with its session: expiry, a revocation, or a failed recheck.
struct SessionGuard {
    connection: Arc<Connection>,
    /// The session's user, or the API key's id.
    user: Uuid,
    expiry: Pin<Box<Sleep>>,
    signals: broadcast::Receiver<SessionSignal>,
    recheck: Interval,
    /// A recheck was due and has not completed (it is run first on the next wait).
    due: bool,
}

impl SessionGuard {
    fn new(
        connection: Arc<Connection>,
        user: Uuid,
        // How long the session has left (by the instance's clock).
        left: chrono::Duration,
        signals: broadcast::Receiver<SessionSignal>,
    ) -> Self {
        let left = left.to_std().unwrap_or(Duration::ZERO);
        let mut recheck =
            tokio::time::interval_at(Instant::now() + SESSION_RECHECK, SESSION_RECHECK);
        recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            connection,
            user,
            expiry: Box::pin(tokio::time::sleep(left)),
            signals,
            recheck,
            due: false,
        }
    }

    /// Waits until the session no longer holds; the error says why. Cancel-safe: a recheck
    /// interrupted by an answer of the operation is run again on the next call.
    async fn ended(&mut self) -> ApiError {
        loop {
            if self.due {
                if let Err(why) = self.check().await {
                    return why;
                }
                self.due = false;
            }
            tokio::select! {
                () = &mut self.expiry => {
                    return ApiError::unauthenticated("the session has expired; sign in again");
                }
                signal = self.signals.recv() => {
                    self.due = match signal {
                        Ok(SessionSignal::Revoked(user)) => user == self.user,
                        Ok(SessionSignal::AllSuspect) | Err(broadcast::error::RecvError::Lagged(_)) => true,
                        // The bus lives as long as the instance: it is shutting down.
                        Err(broadcast::error::RecvError::Closed) => {
                            return ApiError::unauthenticated("the server is shutting down; connect again");
                        }
                    };
                }
                _ = self.recheck.tick() => self.due = true,
            }
        }
    }

    /// The session's current state, read through the session cache.
    async fn check(&self) -> Result<(), ApiError> {
        let token = self.connection.token().ok().flatten();
        let services = &self.connection.services;
        match services
            .auth
            .authenticate(token, &self.connection.actor)
            .await
        {
            Ok(Caller::User { user, .. }) if user.id == self.user => Ok(()),
            Ok(Caller::Key(key)) if key.key.id == self.user => Ok(()),
            Ok(Caller::Rejected(why)) => Err(ApiError::unauthenticated(why)),
            Ok(_) => Err(ApiError::unauthenticated(
                "the session has ended; sign in again",
            )),
            Err(e) => {
                tracing::warn!(error = ?e, "websocket: the session could not be checked");
                Err(ApiError::unauthenticated(
                    "the session could not be checked; subscribe again",
                ))
            }
        }
    }
}

/// The credential a connection_init payload carries.
enum InitToken {
    /// A token, or why what was sent is not one.
    Given(Result<Option<String>, &'static str>),
    /// Nothing that looks like a credential.
    Absent,
}

/// Reads `{"Authorization": "Bearer <token>"}` (any case of the key) or `{"token": "<token>"}`.
fn init_token(payload: &serde_json::Value) -> InitToken {
    const MALFORMED: &str = "connection_init must carry `{\"Authorization\": \"Bearer <token>\"}` or `{\"token\": \"<token>\"}`";
    let Some(fields) = payload.as_object() else {
        return InitToken::Absent;
    };
    for (key, value) in fields {
        if key.eq_ignore_ascii_case("authorization") {
            return InitToken::Given(match value.as_str() {
                Some(v) => bearer_value(v).map(|t| Some(t.to_owned())),
                None => Err(MALFORMED),
            });
        }
    }
    match fields.get("token") {
        Some(serde_json::Value::String(t)) if !t.trim().is_empty() => {
            InitToken::Given(Ok(Some(t.trim().to_owned())))
        }
        Some(_) => InitToken::Given(Err(MALFORMED)),
        None => InitToken::Absent,
    }
}
