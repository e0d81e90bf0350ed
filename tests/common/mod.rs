//! Starts the real application for a test: the same `router()` the server uses, bound to
//! `127.0.0.1:0`, over a fresh database of its own.
//!
//! By default the database is SQLite in memory. With `IAM_TEST_DATABASE_URL` set to a
//! PostgreSQL URL (e.g. `postgres://postgres@127.0.0.1:5432/test`), each test gets a new
//! database created next to that one and dropped when the test ends.

#![allow(dead_code)]

pub mod dns;
pub mod oidc_idp;
pub mod peers;
pub mod pg_proxy;
pub mod saml_idp;
pub mod scratch;
pub mod smtp;

use std::net::SocketAddr;
use std::time::Duration;

use iam_gateway::app::{self, AppState};
use iam_gateway::clock::Clock;
use iam_gateway::config::Config;
use scratch::ScratchDb;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";

/// The bearer token `/metrics` takes in tests (`IAM_METRICS_TOKEN`).
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// The fixed ids of the built-in roles.
pub const ADMIN: &str = "00000001-0000-4000-8000-000000000001";
pub const DEVELOPER: &str = "00000001-0000-4000-8000-000000000002";
pub const OPERATOR: &str = "00000001-0000-4000-8000-000000000003";
pub const VIEWER: &str = "00000001-0000-4000-8000-000000000004";

/// A fresh, empty database for one test; dropped (on PostgreSQL) when this value is dropped.
pub struct TestDb {
    pub url: String,
    scratch: Option<ScratchDb>,
    /// A SQLite file to delete at the end (databases that several instances share).
    file: Option<std::path::PathBuf>,
}

impl TestDb {
    /// A database several app instances can share: the per-test PostgreSQL database, or a
    /// temporary SQLite file.
    pub async fn shared() -> Self {
        let db = Self::new().await;
        if db.is_postgres() {
            return db;
        }
        let path =
            std::env::temp_dir().join(format!("iam-test-{}.db", uuid::Uuid::new_v4().simple()));
        Self {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            scratch: None,
            file: Some(path),
        }
    }

    pub async fn new() -> Self {
        match std::env::var("IAM_TEST_DATABASE_URL") {
            Ok(base) if base.starts_with("postgres") => Self::postgres_on(&base).await,
            _ => Self {
                url: "sqlite::memory:".to_owned(),
                scratch: None,
                file: None,
            },
        }
    }

    /// A PostgreSQL database whatever the suite runs on, for tests about PostgreSQL's wire:
    /// next to `IAM_TEST_DATABASE_URL` when it names one, else next to the machine's own
    /// (`postgres://postgres@127.0.0.1:5432/test`, started by `.ci/setup` when it is down).
    pub async fn postgres() -> Self {
        let base = std::env::var("IAM_TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        Self::postgres_on(&base).await
    }

    async fn postgres_on(base: &str) -> Self {
        let scratch = ScratchDb::create(base, "iam_test")
            .await
            .unwrap_or_else(|e| panic!("a test database: {e}"));
        Self {
            url: scratch.url.clone(),
            scratch: Some(scratch),
            file: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.scratch.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(path) = self.file.take() {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        if let Some(scratch) = self.scratch.take() {
            // Best effort: a database left behind is only clutter on the test server.
            let _ = scratch.remove_blocking();
        }
    }
}

/// The defaults, with the credential rate limits out of the way: the suite signs many accounts
/// up and in from 127.0.0.1 in one process. Tests of the limits set their own
/// (tests/api/attack_credentials.rs).
pub fn test_config() -> Config {
    Config {
        rate_limit_ip_per_minute: 1_000_000,
        rate_limit_ip_burst: 1_000_000,
        rate_limit_account_per_minute: 1_000_000,
        rate_limit_account_burst: 1_000_000,
        metrics_token: Some(METRICS_TOKEN.to_owned()),
        // The test IdPs listen on 127.0.0.1; tests/api/attack_ssrf.rs turns this off.
        sso_allow_private_networks: true,
        ..Config::default()
    }
}

/// A running application and an HTTP client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    // Declared last: dropped after the server has been told to stop. Siblings share the
    // first instance's database and own none.
    pub db: Option<TestDb>,
}

/// The Redis the suite runs against when told to (`IAM_TEST_REDIS_URL`).
pub fn suite_redis() -> Option<String> {
    std::env::var("IAM_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A Redis for tests that need one whatever the suite runs on: `IAM_TEST_REDIS_URL`, or the
/// machine's own at 127.0.0.1:6379.
pub fn any_redis() -> String {
    suite_redis().unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

impl TestApp {
    /// The application with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The application with settings changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new().await;
        let url = db.url.clone();
        Self::start_on(Some(db), &url, suite_redis(), tweak).await
    }

    /// The application on a port bound before it starts: `tweak` also gets the address it will
    /// answer at, for settings that name the app's own URL (`public_url`, SSO redirects).
    pub async fn start_bound(tweak: impl FnOnce(&mut Config, SocketAddr)) -> Self {
        let db = TestDb::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local addr");
        let mut config = Config {
            database_url: db.url.clone(),
            redis_url: suite_redis(),
            ..test_config()
        };
        tweak(&mut config, addr);
        let state = AppState::init_with_clock(config, Clock::adjustable())
            .await
            .expect("start the app");
        let (tx, rx) = oneshot::channel::<()>();
        let serving = state.clone();
        tokio::spawn(async move {
            let _ = app::serve(listener, serving, async {
                let _ = rx.await;
            })
            .await;
        });
        Self {
            addr,
            state,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            shutdown: Some(tx),
            db: Some(db),
        }
    }

    /// Two instances over one database and one Redis, as in a scaled-out deployment.
    pub async fn pair(redis_url: &str) -> (Self, Self) {
        let db = TestDb::shared().await;
        let url = db.url.clone();
        let a = Self::start_on(Some(db), &url, Some(redis_url.to_owned()), |_| {}).await;
        let b = a.sibling(redis_url).await;
        (a, b)
    }

    /// Another instance over this one's database, using `redis_url`.
    pub async fn sibling(&self, redis_url: &str) -> Self {
        let url = self.state.services.config.database_url.clone();
        Self::start_on(None, &url, Some(redis_url.to_owned()), |_| {}).await
    }

    /// Moves this instance's clock forward by `by`: what expires in that time has expired
    /// (instead of the test sleeping until it does).
    pub fn advance(&self, by: Duration) {
        assert!(
            self.state.services.clock().advance(by),
            "a test app's clock is adjustable"
        );
    }

    /// Waits (at most 10 s) until the instance trusts its caches: subscribed to Redis and
    /// caught up with the change log.
    pub async fn wait_trusted(&self) {
        let epochs = self.state.services.bus.epochs().clone();
        for _ in 0..1000 {
            if epochs.trusted() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the instance never came to trust its caches");
    }

    /// An instance over `database_url` (which `db`, when given, owns: it is dropped with the
    /// instance) and `redis_url`.
    pub async fn start_on(
        db: Option<TestDb>,
        database_url: &str,
        redis_url: Option<String>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config {
            database_url: database_url.to_owned(),
            redis_url,
            ..test_config()
        };
        tweak(&mut config);
        let state = AppState::init_with_clock(config, Clock::adjustable())
            .await
            .expect("start the app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let serving = state.clone();
        tokio::spawn(async move {
            let _ = app::serve(listener, serving, async {
                let _ = rx.await;
            })
            .await;
        });
        Self {
            addr,
            state,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            shutdown: Some(tx),
            db,
        }
    }

    /// The value of one metric of this instance, from `/metrics`: summed over its labels, or
    /// of one series when `name` gives them (`name{label="value"}`).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                let series = if name.contains('{') {
                    l.split(' ').next()
                } else {
                    l.split(['{', ' ']).next()
                };
                series == Some(name)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Posts a GraphQL request, with a bearer token when given; returns the JSON response.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .header("user-agent", "iam-gateway-tests/1.0")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("send");
        assert!(
            resp.status().is_success(),
            "GraphQL over HTTP answers 200, got {}",
            resp.status()
        );
        resp.json().await.expect("json body")
    }

    /// Signs up `email` (password [`PASSWORD`]) and returns its session token.
    pub async fn sign_up(&self, email: &str) -> String {
        let r = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { signUp(input: {email: $e, password: $p, name: \"Test User\"}) { token } }",
                json!({ "e": email, "p": PASSWORD }),
            )
            .await;
        r["data"]["signUp"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("sign-up of {email} failed: {r}"))
            .to_owned()
    }

    /// Creates an organization as `token`; returns its id.
    pub async fn create_org(&self, token: &str, slug: &str) -> String {
        let r = self
            .gql(
                Some(token),
                "mutation($s: String!) { createOrganization(input: {slug: $s, name: \"Org\"}) { organization { id } } }",
                json!({ "s": slug }),
            )
            .await;
        data_str(&r, &["createOrganization", "organization", "id"])
    }

    /// Creates a workspace in `org`; returns its id.
    pub async fn create_workspace(&self, token: &str, org: &str, slug: &str) -> String {
        let r = self
            .gql(
                Some(token),
                "mutation($o: ID!, $s: String!) { createWorkspace(input: {organizationId: $o, slug: $s, name: \"Workspace\"}) { workspace { id } } }",
                json!({ "o": org, "s": slug }),
            )
            .await;
        data_str(&r, &["createWorkspace", "workspace", "id"])
    }

    /// Creates a project in workspace `ws`; returns its id.
    pub async fn create_project(&self, token: &str, ws: &str, slug: &str) -> String {
        let r = self
            .gql(
                Some(token),
                "mutation($w: ID!, $s: String!) { createProject(input: {workspaceId: $w, slug: $s, name: \"Project\"}) { project { id } } }",
                json!({ "w": ws, "s": slug }),
            )
            .await;
        data_str(&r, &["createProject", "project", "id"])
    }

    /// Invites `email` into `org` with no role (`roles: []`); returns the accept token.
    pub async fn invite(&self, token: &str, org: &str, email: &str) -> String {
        let r = self
            .gql(
                Some(token),
                "mutation($o: ID!, $e: String!) { inviteMember(input: {organizationId: $o, email: $e, roles: []}) { token } }",
                json!({ "o": org, "e": email }),
            )
            .await;
        data_str(&r, &["inviteMember", "token"])
    }

    /// The id of the built-in role with `key` (the profile's) in `org`, as `token` sees it.
    pub async fn role_id(&self, token: &str, org: &str, key: &str) -> String {
        let r = self
            .gql(
                Some(token),
                "query($o: ID!) { roles(organizationId: $o) { id key } }",
                json!({ "o": org }),
            )
            .await;
        r["data"]["roles"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .find(|x| x["key"] == key)
            .unwrap_or_else(|| panic!("no role {key}: {r}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The id of the user signed in with `token`.
    pub async fn user_id(&self, token: &str) -> String {
        let r = self.gql(Some(token), "{ me { id } }", json!({})).await;
        data_str(&r, &["me", "id"])
    }

    /// Invites `email` into `org` as `admin` and has `member` (signed in with that email)
    /// accept; returns the member's user id.
    pub async fn join(&self, admin: &str, org: &str, email: &str, member: &str) -> String {
        let token = self.invite(admin, org, email).await;
        let r = self
            .gql(
                Some(member),
                "mutation($t: String!) { acceptInvitation(input: {token: $t}) { organization { id } } }",
                json!({ "t": token }),
            )
            .await;
        data_str(&r, &["acceptInvitation", "organization", "id"]);
        self.user_id(member).await
    }

    /// A member-status mutation (`suspendMember`, `deactivateMember`, ...) of `user` in `org`
    /// as `token`; returns the raw response (selecting `status` and `revision`).
    pub async fn member_call(&self, token: &str, mutation: &str, org: &str, user: &str) -> Value {
        let q = format!(
            "mutation($o: ID!, $u: ID!) {{ {mutation}(input: {{organizationId: $o, userId: $u}}) {{ status revision }} }}"
        );
        self.gql(Some(token), &q, json!({ "o": org, "u": user }))
            .await
    }

    /// Grants `role` to `principal` at `node` as `token`; returns the raw response.
    pub async fn grant_raw(
        &self,
        token: &str,
        principal: &str,
        role: &str,
        node: &str,
        expires_at: Option<&str>,
    ) -> Value {
        self.gql(
            Some(token),
            "mutation($p: ID!, $r: ID!, $n: ID!, $e: DateTime) { grantRole(input: {principalId: $p, roleId: $r, nodeId: $n, expiresAt: $e}) { binding { id roleName nodeKind expired } revision } }",
            json!({ "p": principal, "r": role, "n": node, "e": expires_at }),
        )
        .await
    }

    /// Grants `role` to `principal` at `node` as `token`; returns the binding id.
    pub async fn grant(&self, token: &str, principal: &str, role: &str, node: &str) -> String {
        let r = self.grant_raw(token, principal, role, node, None).await;
        data_str(&r, &["grantRole", "binding", "id"])
    }

    /// `check` of `type:action` at `node` with `token`: `Some(allowed)`, or `None` when
    /// refused with an error (a credential that opens nothing or reaches nothing there).
    pub async fn check(&self, token: &str, type_action: &str, node: &str) -> Option<bool> {
        let (t, a) = type_action.split_once(':').expect("type:action");
        let r = self
            .gql(
                Some(token),
                "query($i: CheckInput!) { check(input: $i) { allowed } }",
                json!({ "i": { "resourceType": t, "action": a, "nodeId": node } }),
            )
            .await;
        r["data"]["check"]["allowed"].as_bool()
    }

    /// Creates a custom role of `org` as `token` with these permissions (allowed; `!` first:
    /// denied); returns its id.
    pub async fn custom_role(
        &self,
        token: &str,
        org: &str,
        name: &str,
        policies: &[&str],
    ) -> String {
        let policies: Vec<Value> = policies
            .iter()
            .map(|p| match p.strip_prefix('!') {
                Some(denied) => json!({ "effect": "DENY", "permission": denied }),
                None => json!({ "effect": "ALLOW", "permission": p }),
            })
            .collect();
        let r = self
            .gql(
                Some(token),
                "mutation($o: ID!, $n: String!, $p: [PolicyInput!]!) { createRole(input: {organizationId: $o, name: $n, policies: $p}) { role { id } } }",
                json!({ "o": org, "n": name, "p": policies }),
            )
            .await;
        data_str(&r, &["createRole", "role", "id"])
    }

    /// Every audit event so far (all organizations), newest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        self.state
            .services
            .store()
            .audit_events(None, 10_000)
            .await
            .expect("read audit events")
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The string at `path` under `data`, or a panic that shows the whole response.
pub fn data_str(response: &Value, path: &[&str]) -> String {
    let mut v = &response["data"];
    for key in path {
        v = &v[*key];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("no string at data.{}: {response}", path.join(".")))
        .to_owned()
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(response: &Value) -> Option<String> {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// Asserts that the response failed with `code` and revealed no data.
pub fn assert_error(response: &Value, code: &str) {
    assert_eq!(
        error_code(response).as_deref(),
        Some(code),
        "expected {code}: {response}"
    );
    let data = &response["data"];
    assert!(
        data.is_null()
            || data
                .as_object()
                .is_some_and(|o| o.values().all(Value::is_null)),
        "an error response must carry no data: {response}"
    );
}

/// A TCP proxy in front of a server, whose connections a test can cut and restore: a Redis
/// "failure" that affects one instance only.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                k.lock().expect("conns").push(task);
            }
        });
        Self {
            addr,
            cut,
            conns,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.conns.lock().expect("conns").drain(..) {
            t.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self
            .conns
            .lock()
            .map(|mut c| c.drain(..).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            t.abort();
        }
    }
}
