//! Subscriptions over GraphQL over WebSocket, driven by an independent client: the reference
//! `graphql-ws` client (graphql-transport-ws) under node, in `tests/ws/client.mjs`. The tests
//! install its npm packages themselves when they are missing.
//!
//! A subscription without `since` starts "from now on", and nothing tells a client when the
//! server has actually subscribed; so tests of live feeds first make harmless probe changes
//! until one shows up ([`until_live`]). From then on every change must arrive.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::{ADMIN, DEVELOPER, TestApp, VIEWER, data_str};

/// The longest wait for any one line from the client.
const WAIT: Duration = Duration::from_secs(20);

const ORG_CHANGES: &str = "subscription($o: ID!, $s: String) { permissionChanges(organizationId: $o, since: $s) { organizationId revision kind principalId nodeId roleId actorId at } }";
const MY_CHANGES: &str = "subscription { myPermissionChanges { organizationId revision kind principalId nodeId roleId actorId at } }";

fn ws_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ws")
}

/// The node client, one operation on one connection; killed when dropped.
struct WsClient {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl WsClient {
    /// Connects with `init` as the connection_init payload and starts `query`.
    fn start(app: &TestApp, init: Value, query: &str, variables: Value) -> Self {
        crate::common::peers::npm_ci("tests/ws");
        let args = json!({
            "url": format!("ws://{}/graphql", app.addr),
            "init": init,
            "query": query,
            "variables": variables,
            "timeoutMs": 60_000,
        });
        let mut child = Command::new("node")
            .arg(ws_dir().join("client.mjs"))
            .arg(args.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node (node 20 must be installed)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// As `start`, signed in with `token` the usual way.
    fn signed_in(app: &TestApp, token: &str, query: &str, variables: Value) -> Self {
        Self::start(
            app,
            json!({ "Authorization": format!("Bearer {token}") }),
            query,
            variables,
        )
    }

    /// The next line the client prints, if one comes within `wait`.
    async fn try_line(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.lines.recv()).await {
            Ok(Some(line)) => Some(serde_json::from_str(&line).expect("the client prints JSON")),
            Ok(None) => panic!("the client ended without a word"),
            Err(_) => None,
        }
    }

    async fn line(&mut self) -> Value {
        self.try_line(WAIT)
            .await
            .expect("the client said nothing in time")
    }

    async fn connected(&mut self) {
        let line = self.line().await;
        assert_eq!(line["event"], "connected", "{line}");
    }

    /// The next change the subscription delivers (the `field` of a `next` without errors).
    async fn change(&mut self, field: &str) -> Value {
        let line = self.line().await;
        change_in(&line, field)
    }

    /// The error that ends the operation: its first error; the operation then completes.
    async fn refusal(&mut self) -> Value {
        let line = self.line().await;
        assert_eq!(line["event"], "next", "{line}");
        let payload = &line["payload"];
        assert!(
            payload["data"].is_null(),
            "a refusal carries no data: {line}"
        );
        let error = payload["errors"][0].clone();
        assert!(error.is_object(), "{line}");
        let done = self.line().await;
        assert_eq!(
            done["event"], "complete",
            "nothing follows a refusal: {done}"
        );
        error
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn change_in(line: &Value, field: &str) -> Value {
    assert_eq!(line["event"], "next", "{line}");
    assert!(
        line["payload"]["errors"].is_null(),
        "unexpected errors: {line}"
    );
    let change = line["payload"]["data"][field].clone();
    assert!(change.is_object(), "{line}");
    change
}

fn code(error: &Value) -> &str {
    error["extensions"]["code"].as_str().unwrap_or_default()
}

/// The revision inside a revision token. The token is opaque to clients; the tests know it is
/// base64 of `org:revision`, to check order and gaps.
fn rev(change: &Value) -> i64 {
    let token = change["revision"].as_str().unwrap();
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
    text.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// A revision token of `org` as of now (a `check`'s token may be older: it names the
/// revision its facts were read at).
async fn revision_now(app: &TestApp, org: &str) -> String {
    let org = uuid::Uuid::parse_str(org).unwrap();
    let revision = app
        .state
        .services
        .store()
        .revision(org)
        .await
        .unwrap()
        .unwrap();
    iam_gateway::graphql::check::revision_token(org, revision)
}

/// Makes probe changes until the subscription delivers one; returns that first change. The
/// changes of the probes made after it follow it on the stream.
async fn until_live(
    client: &mut WsClient,
    field: &str,
    mut probe: impl AsyncFnMut(usize),
) -> Value {
    for i in 0..60 {
        probe(i).await;
        if let Some(line) = client.try_line(Duration::from_millis(250)).await {
            return change_in(&line, field);
        }
    }
    panic!("the subscription never delivered a probe change");
}

/// The next changes, skipping leftover probe changes (of kind `probe_kind`) before the first
/// other one; returns `n` changes.
async fn after_probes(
    client: &mut WsClient,
    field: &str,
    probe_kind: &str,
    n: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let change = client.change(field).await;
        if out.is_empty() && change["kind"] == probe_kind {
            continue;
        }
        out.push(change);
    }
    out
}

async fn create_role(app: &TestApp, token: &str, org: &str, name: &str) -> String {
    let r = app
        .gql(
            Some(token),
            "mutation($o: ID!, $n: String!) { createRole(input: {organizationId: $o, name: $n, policies: [{effect: ALLOW, permission: \"apps:*:read\"}]}) { role { id } } }",
            json!({ "o": org, "n": name }),
        )
        .await;
    data_str(&r, &["createRole", "role", "id"])
}

async fn update_role(app: &TestApp, token: &str, role: &str, description: &str) {
    let r = app
        .gql(
            Some(token),
            "mutation($r: ID!, $d: String!) { updateRole(input: {id: $r, description: $d}) { role { id } } }",
            json!({ "r": role, "d": description }),
        )
        .await;
    data_str(&r, &["updateRole", "role", "id"]);
}

async fn revoke(app: &TestApp, token: &str, binding: &str) {
    let r = app
        .gql(
            Some(token),
            "mutation($b: ID!) { revokeRoleBinding(input: {id: $b}) { binding { id } } }",
            json!({ "b": binding }),
        )
        .await;
    data_str(&r, &["revokeRoleBinding", "binding", "id"]);
}

/// An organization `acme` with workspace `prod`, its admin, and a member `bob` with no role.
struct World {
    app: TestApp,
    admin: String,
    admin_id: String,
    org: String,
    ws: String,
    bob: String,
    bob_id: String,
}

async fn world() -> World {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let admin_id = app.user_id(&admin).await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "prod").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    World {
        app,
        admin,
        admin_id,
        org,
        ws,
        bob,
        bob_id,
    }
}

#[tokio::test]
async fn organization_changes_arrive_live_in_revision_order() {
    let w = world().await;
    let app = &w.app;
    let mut client = WsClient::signed_in(app, &w.admin, ORG_CHANGES, json!({ "o": w.org }));
    client.connected().await;
    let first = until_live(&mut client, "permissionChanges", async |i| {
        create_role(app, &w.admin, &w.org, &format!("probe {i}")).await;
    })
    .await;
    assert_eq!(first["kind"], "role.created");

    let binding = app.grant(&w.admin, &w.bob_id, VIEWER, &w.ws).await;
    revoke(app, &w.admin, &binding).await;
    app.create_workspace(&w.admin, &w.org, "staging").await;
    let changes = after_probes(&mut client, "permissionChanges", "role.created", 3).await;

    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["binding.granted", "binding.revoked", "workspace.created"]
    );
    let granted = &changes[0];
    assert_eq!(granted["organizationId"], w.org.as_str());
    assert_eq!(granted["principalId"], w.bob_id.as_str());
    assert_eq!(granted["nodeId"], w.ws.as_str());
    assert_eq!(granted["roleId"], VIEWER);
    assert_eq!(granted["actorId"], w.admin_id.as_str());
    assert!(granted["at"].is_string());
    // Every change of the organization, in order, none missing, none twice.
    let first_rev = rev(&changes[0]);
    let revs: Vec<i64> = changes.iter().map(rev).collect();
    assert_eq!(revs, [first_rev, first_rev + 1, first_rev + 2]);
    // The last token is the organization's revision now, as `check` reports it.
    assert_eq!(
        changes[2]["revision"],
        revision_now(app, &w.org).await.as_str()
    );
}

#[tokio::test]
async fn since_replays_earlier_changes_then_goes_live_without_duplicates() {
    let w = world().await;
    let app = &w.app;
    let since = revision_now(app, &w.org).await;
    // Before subscribing.
    let binding = app.grant(&w.admin, &w.bob_id, VIEWER, &w.ws).await;
    create_role(app, &w.admin, &w.org, "auditors").await;
    revoke(app, &w.admin, &binding).await;

    let mut client = WsClient::signed_in(
        app,
        &w.admin,
        ORG_CHANGES,
        json!({ "o": w.org, "s": since }),
    );
    client.connected().await;
    let mut changes = Vec::new();
    for _ in 0..3 {
        changes.push(client.change("permissionChanges").await);
    }
    // Replayed (the client has them all, so the server is live now); then live ones.
    app.grant(&w.admin, &w.bob_id, DEVELOPER, &w.ws).await;
    create_role(app, &w.admin, &w.org, "operators").await;
    app.create_workspace(&w.admin, &w.org, "staging").await;
    for _ in 0..3 {
        changes.push(client.change("permissionChanges").await);
    }
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "binding.granted",
            "role.created",
            "binding.revoked",
            "binding.granted",
            "role.created",
            "workspace.created",
        ]
    );
    assert_eq!(changes[0]["roleId"], VIEWER);
    assert_eq!(changes[3]["roleId"], DEVELOPER);
    let start = rev(&changes[0]);
    let revs: Vec<i64> = changes.iter().map(rev).collect();
    assert_eq!(revs, (start..start + 6).collect::<Vec<_>>());
    assert_eq!(
        start - 1,
        rev(&json!({ "revision": since })),
        "the first change after `since`"
    );
    assert!(
        client.try_line(Duration::from_millis(300)).await.is_none(),
        "nothing twice"
    );
}

#[tokio::test]
async fn outsiders_members_without_permission_and_bad_input_are_refused() {
    let w = world().await;
    let app = &w.app;
    let eve = app.sign_up("eve@example.com").await;
    let eve_org = app.create_org(&eve, "evil").await;

    // Another organization's feed: as if it did not exist, exactly like a query.
    let mut client = WsClient::signed_in(app, &eve, ORG_CHANGES, json!({ "o": w.org }));
    client.connected().await;
    let error = client.refusal().await;
    assert_eq!(code(&error), "NOT_FOUND", "{error}");
    assert_eq!(error["message"], "organization not found");
    let query = app
        .gql(
            Some(&eve),
            "query($o: ID!) { roles(organizationId: $o) { id } }",
            json!({ "o": w.org }),
        )
        .await;
    assert_eq!(query["errors"][0]["message"], error["message"]);

    let mut client = WsClient::signed_in(
        app,
        &eve,
        ORG_CHANGES,
        json!({ "o": uuid::Uuid::new_v4().to_string() }),
    );
    client.connected().await;
    assert_eq!(code(&client.refusal().await), "NOT_FOUND");

    // A member without `members:*:read` or `roles:*:read`.
    let mut client = WsClient::signed_in(app, &w.bob, ORG_CHANGES, json!({ "o": w.org }));
    client.connected().await;
    let error = client.refusal().await;
    assert_eq!(code(&error), "FORBIDDEN", "{error}");

    // `since` must be a token of this organization.
    let foreign = revision_now(app, &eve_org).await;
    let org_id = uuid::Uuid::parse_str(&w.org).unwrap();
    let future = iam_gateway::graphql::check::revision_token(org_id, 1_000_000);
    for since in [foreign.as_str(), "not-a-token", future.as_str()] {
        let mut client = WsClient::signed_in(
            app,
            &w.admin,
            ORG_CHANGES,
            json!({ "o": w.org, "s": since }),
        );
        client.connected().await;
        let error = client.refusal().await;
        assert_eq!(code(&error), "BAD_USER_INPUT", "{error}");
        assert_eq!(error["extensions"]["field"], "since");
    }
}

#[tokio::test]
async fn connections_without_a_valid_token_get_unauthenticated() {
    let w = world().await;
    let app = &w.app;
    let inits = [
        json!(null),
        json!({}),
        json!({ "Authorization": "Bearer iam_s_not_a_session" }),
        json!({ "Authorization": format!("Basic {}", w.admin) }),
        json!({ "token": "iam_s_not_a_session" }),
    ];
    for init in inits {
        for (query, vars) in [
            (ORG_CHANGES, json!({ "o": w.org })),
            (MY_CHANGES, json!({})),
        ] {
            let mut client = WsClient::start(app, init.clone(), query, vars);
            client.connected().await;
            let error = client.refusal().await;
            assert_eq!(
                code(&error),
                "UNAUTHENTICATED",
                "init {init}, {query}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn my_permission_changes_show_my_grants_and_not_others() {
    let w = world().await;
    let app = &w.app;
    let probe_role = create_role(app, &w.admin, &w.org, "probe").await;
    let dave = app.sign_up("dave@example.com").await;
    let dave_id = app.join(&w.admin, &w.org, "dave@example.com", &dave).await;
    // Another organization, with a member of its own.
    let carol = app.sign_up("carol@example.com").await;
    let other = app.create_org(&carol, "other").await;
    let frank = app.sign_up("frank@example.com").await;
    let frank_id = app.join(&carol, &other, "frank@example.com", &frank).await;

    // Bob, with the `{"token": ...}` form of connection_init.
    let mut client = WsClient::start(app, json!({ "token": w.bob }), MY_CHANGES, json!({}));
    client.connected().await;
    let first = until_live(&mut client, "myPermissionChanges", async |i| {
        update_role(app, &w.admin, &probe_role, &format!("probe {i}")).await;
    })
    .await;
    assert_eq!(first["kind"], "role.updated");
    assert_eq!(first["roleId"], probe_role.as_str());

    // None of these can change Bob's permissions...
    app.grant(&carol, &frank_id, ADMIN, &other).await;
    app.grant(&w.admin, &dave_id, VIEWER, &w.ws).await;
    app.create_workspace(&w.admin, &w.org, "staging").await;
    // ...this does. The bus is in order, so the others were looked at (and left) before it.
    app.grant(&w.admin, &w.bob_id, VIEWER, &w.ws).await;
    let mine = after_probes(&mut client, "myPermissionChanges", "role.updated", 1).await;
    assert_eq!(mine[0]["kind"], "binding.granted");
    assert_eq!(mine[0]["principalId"], w.bob_id.as_str());
    assert_eq!(mine[0]["organizationId"], w.org.as_str());

    // Bob joins the other organization: that is his change, and from then on its changes of
    // his permissions come too; others' still do not.
    app.join(&carol, &other, "bob@example.com", &w.bob).await;
    let joined = client.change("myPermissionChanges").await;
    assert_eq!(joined["kind"], "membership.added");
    assert_eq!(joined["organizationId"], other.as_str());
    app.grant(&carol, &frank_id, VIEWER, &other).await;
    app.grant(&carol, &w.bob_id, VIEWER, &other).await;
    let granted = client.change("myPermissionChanges").await;
    assert_eq!(granted["kind"], "binding.granted");
    assert_eq!(granted["organizationId"], other.as_str());
    assert_eq!(granted["principalId"], w.bob_id.as_str());
    assert!(client.try_line(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_member_who_loses_access_is_cut_off_at_that_change() {
    let w = world().await;
    let app = &w.app;
    let binding = app.grant(&w.admin, &w.bob_id, DEVELOPER, &w.org).await;
    // Developer holds `members:*:read` and `roles:*:read` at the organization.
    let since = revision_now(app, &w.org).await;
    let mut client =
        WsClient::signed_in(app, &w.bob, ORG_CHANGES, json!({ "o": w.org, "s": since }));
    client.connected().await;
    app.create_workspace(&w.admin, &w.org, "staging").await;
    let change = client.change("permissionChanges").await;
    assert_eq!(change["kind"], "workspace.created");
    revoke(app, &w.admin, &binding).await;
    let error = client.refusal().await;
    assert_eq!(code(&error), "FORBIDDEN", "{error}");
}

#[tokio::test]
async fn a_subscription_ends_when_its_session_expires() {
    let app = TestApp::start_with(|c| c.session_ttl = Duration::from_secs(3)).await;
    let admin = app.sign_up("admin@example.com").await;
    let mut client = WsClient::signed_in(&app, &admin, MY_CHANGES, json!({}));
    client.connected().await;
    let error = client.refusal().await;
    assert_eq!(code(&error), "UNAUTHENTICATED", "{error}");
}

#[tokio::test]
async fn queries_over_the_socket_use_the_same_caller_and_limits() {
    let app = TestApp::start_with(|c| c.graphql_max_depth = 3).await;
    let admin = app.sign_up("admin@example.com").await;
    // The lowercase key is accepted too.
    let init = json!({ "authorization": format!("Bearer {admin}") });
    let mut client = WsClient::start(&app, init.clone(), "{ me { email } }", json!({}));
    client.connected().await;
    let line = client.line().await;
    assert_eq!(
        line["payload"]["data"]["me"]["email"], "admin@example.com",
        "{line}"
    );

    // Over plain HTTP a subscription is refused, with a code.
    let r = app.gql(Some(&admin), MY_CHANGES, json!({})).await;
    assert_eq!(code(&r["errors"][0]), "BAD_USER_INPUT", "{r}");

    let deep = "{ me { organizations { workspaces { projects { id } } } } }";
    let mut client = WsClient::start(&app, init, deep, json!({}));
    client.connected().await;
    let line = client.line().await;
    assert_eq!(
        code(&line["payload"]["errors"][0]),
        "BAD_USER_INPUT",
        "{line}"
    );
}
