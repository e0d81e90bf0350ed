//! Attacks on GraphQL over WebSocket (issue 12, hole 5): a connection must not outlive its
//! session, and one client must not hold the server with idle or oversized connections.
//!
//! The attacker speaks the protocol directly on a raw WebSocket (tokio-tungstenite), as an
//! attacker would: no reference client to keep it polite. The reference client's behaviour is
//! covered by `subscriptions.rs`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{TestApp, any_redis};

const MY_CHANGES: &str = "subscription { myPermissionChanges { organizationId kind } }";
const ME: &str = "{ me { email } }";

/// Well past what a revocation takes to arrive, and well short of the 30 s safety recheck: an
/// operation that ends within it ended because of the revocation.
const PROMPTLY: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One raw graphql-transport-ws connection.
pub(crate) struct RawWs(Socket);

/// What the socket gave next.
#[derive(Debug)]
pub(crate) enum Got {
    Json(Value),
    Closed(Option<u16>),
    Nothing,
}

impl RawWs {
    pub(crate) async fn connect(app: &TestApp) -> Self {
        let mut request = format!("ws://{}/graphql", app.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the upgrade is accepted");
        Self(socket)
    }

    /// Connects and initialises with `token`.
    pub(crate) async fn signed_in(app: &TestApp, token: &str) -> Self {
        let mut ws = Self::connect(app).await;
        ws.send(json!({
            "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") },
        }))
        .await;
        match ws.got(PROMPTLY).await {
            Got::Json(m) if m["type"] == "connection_ack" => ws,
            other => panic!("no connection_ack: {other:?}"),
        }
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.0
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    pub(crate) async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }))
            .await;
    }

    /// The next protocol message (pings answered and skipped), a close, or nothing in `wait`.
    pub(crate) async fn got(&mut self, wait: Duration) -> Got {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let next = match tokio::time::timeout_at(until, self.0.next()).await {
                Err(_) => return Got::Nothing,
                Ok(next) => next,
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let m: Value = serde_json::from_str(&text).expect("the server sends JSON");
                    if m["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Got::Json(m);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Got::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Got::Closed(None),
            }
        }
    }

    /// The payload of the next `next` message of operation `id`.
    pub(crate) async fn next_of(&mut self, id: &str) -> Value {
        match self.got(PROMPTLY).await {
            Got::Json(m) if m["type"] == "next" && m["id"] == id => m["payload"].clone(),
            other => panic!("expected `next` for {id}, got {other:?}"),
        }
    }

    /// The first error code of the next answer of `id`, which must carry no data.
    pub(crate) async fn refusal_of(&mut self, id: &str) -> String {
        let payload = self.next_of(id).await;
        assert!(
            payload["data"].is_null(),
            "a refusal carries no data: {payload}"
        );
        payload["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {payload}"))
            .to_owned()
    }

    pub(crate) async fn complete_of(&mut self, id: &str) {
        match self.got(PROMPTLY).await {
            Got::Json(m) if m["type"] == "complete" && m["id"] == id => {}
            other => panic!("expected `complete` for {id}, got {other:?}"),
        }
    }

    /// Runs `query` as operation `id` and gives its one answer.
    pub(crate) async fn run(&mut self, id: &str, query: &str) -> Value {
        self.subscribe(id, query).await;
        let payload = self.next_of(id).await;
        self.complete_of(id).await;
        payload
    }
}

async fn sign_out(app: &TestApp, token: &str) {
    let r = app
        .gql(Some(token), "mutation { signOut { signedOut } }", json!({}))
        .await;
    assert_eq!(r["data"]["signOut"]["signedOut"], true, "{r}");
}

fn code_of(payload: &Value) -> &str {
    payload["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_signed_out_token_runs_nothing_more_on_its_open_connection() {
    let app = TestApp::start().await;
    let alice = app.sign_up("alice@example.com").await;
    let mut ws = RawWs::signed_in(&app, &alice).await;
    let before = ws.run("1", ME).await;
    assert_eq!(
        before["data"]["me"]["email"], "alice@example.com",
        "{before}"
    );

    sign_out(&app, &alice).await;

    let query = ws.run("2", ME).await;
    assert_eq!(code_of(&query), "UNAUTHENTICATED", "{query}");
    let mutation = ws
        .run(
            "3",
            r#"mutation { createOrganization(input: { name: "Taken", slug: "taken" }) { organization { id } } }"#,
        )
        .await;
    assert_eq!(code_of(&mutation), "UNAUTHENTICATED", "{mutation}");
    let orgs = app
        .gql(
            Some(&app.sign_up("bob@example.com").await),
            r#"{ node(path: "taken") { id } }"#,
            json!({}),
        )
        .await;
    assert!(
        orgs["data"]["node"].is_null(),
        "no organization was created: {orgs}"
    );
}

#[tokio::test]
async fn an_expired_session_runs_nothing_more_on_its_open_connection() {
    let app = TestApp::start_with(|c| c.session_ttl = Duration::from_secs(3600)).await;
    let alice = app.sign_up("alice@example.com").await;
    let mut ws = RawWs::signed_in(&app, &alice).await;
    let before = ws.run("1", ME).await;
    assert_eq!(
        before["data"]["me"]["email"], "alice@example.com",
        "{before}"
    );
    app.advance(Duration::from_secs(3601));
    let after = ws.run("2", ME).await;
    assert_eq!(code_of(&after), "UNAUTHENTICATED", "{after}");
}

#[tokio::test]
async fn a_revoked_session_ends_its_live_subscriptions_at_once() {
    let app = TestApp::start().await;
    let alice = app.sign_up("alice@example.com").await;
    let mut ws = RawWs::signed_in(&app, &alice).await;
    ws.subscribe("live", MY_CHANGES).await;
    // Live: a query on the same connection answers, the subscription stays silent.
    let me = ws.run("q", ME).await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");

    sign_out(&app, &alice).await;

    assert_eq!(ws.refusal_of("live").await, "UNAUTHENTICATED");
    ws.complete_of("live").await;
}

#[tokio::test]
async fn a_session_revoked_on_another_instance_ends_subscriptions_here() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    a.wait_trusted().await;
    b.wait_trusted().await;
    let alice = a.sign_up("alice@example.com").await;
    // A second session, to revoke from the first one, on the other instance.
    let signed_in = a
        .gql(
            None,
            r#"mutation { signIn(input: { email: "alice@example.com", password: "correct horse battery" }) { token } }"#,
            json!({}),
        )
        .await;
    let second = signed_in["data"]["signIn"]["token"]
        .as_str()
        .expect("signed in")
        .to_owned();
    let mut ws = RawWs::signed_in(&a, &second).await;
    ws.subscribe("live", MY_CHANGES).await;
    let me = ws.run("q", ME).await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");

    let r = b
        .gql(
            Some(&alice),
            "mutation { revokeOtherSessions { revokedCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["revokeOtherSessions"]["revokedCount"], 1, "{r}");

    assert_eq!(ws.refusal_of("live").await, "UNAUTHENTICATED");
    ws.complete_of("live").await;
    let after = ws.run("q2", ME).await;
    assert_eq!(code_of(&after), "UNAUTHENTICATED", "{after}");
}

#[tokio::test]
async fn a_connection_that_never_initialises_is_closed_with_4408() {
    let app = TestApp::start_with(|c| c.ws_connection_init_timeout = Duration::from_secs(1)).await;
    let mut idle = RawWs::connect(&app).await;
    match idle.got(PROMPTLY).await {
        Got::Closed(Some(code)) => assert_eq!(code, 4408),
        other => panic!("the idle connection was not closed with 4408: {other:?}"),
    }
    // One that initialises in time stays open past the deadline.
    let alice = app.sign_up("alice@example.com").await;
    let mut ws = RawWs::signed_in(&app, &alice).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let me = ws.run("1", ME).await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");
}

#[tokio::test]
async fn one_connection_cannot_hold_unbounded_subscriptions() {
    let app = TestApp::start_with(|c| c.ws_max_subscriptions = 3).await;
    let alice = app.sign_up("alice@example.com").await;
    let mut ws = RawWs::signed_in(&app, &alice).await;
    for id in ["1", "2", "3"] {
        ws.subscribe(id, MY_CHANGES).await;
    }
    ws.subscribe("4", MY_CHANGES).await;
    assert_eq!(ws.refusal_of("4").await, "BAD_USER_INPUT");
    ws.complete_of("4").await;

    // Completing one frees its place.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    // The server may confirm the client's complete; either way the place is free.
    let me = loop {
        ws.subscribe("5", ME).await;
        let payload = match ws.got(PROMPTLY).await {
            Got::Json(m) if m["type"] == "complete" && m["id"] == "1" => continue,
            Got::Json(m) if m["type"] == "next" && m["id"] == "5" => m["payload"].clone(),
            other => panic!("expected an answer for 5, got {other:?}"),
        };
        break payload;
    };
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");
}

#[tokio::test]
async fn a_message_over_the_body_limit_closes_the_connection() {
    let app = TestApp::start_with(|c| c.max_body_bytes = 8 * 1024).await;
    let alice = app.sign_up("alice@example.com").await;
    let mut ws = RawWs::signed_in(&app, &alice).await;
    let small = format!("{{ me {{ email }} }} # {}", "x".repeat(4 * 1024));
    let answer = ws.run("1", &small).await;
    assert_eq!(
        answer["data"]["me"]["email"], "alice@example.com",
        "{answer}"
    );

    let big = format!("{{ me {{ email }} }} # {}", "x".repeat(64 * 1024));
    ws.subscribe("2", &big).await;
    match ws.got(PROMPTLY).await {
        Got::Closed(code) => assert_ne!(code, Some(u16::from(CloseCode::Normal)), "{code:?}"),
        other => panic!("the oversized message was taken: {other:?}"),
    }
}
