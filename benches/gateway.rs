//! End-to-end benchmarks of the gateway, with everything in this process on `127.0.0.1:0`:
//!
//! - `http`: the warm `check` query over HTTP next to a bare async-graphql `{ ping }` served by
//!   a minimal axum + async-graphql-axum router (the same stack, nothing of the gateway), and
//!   `checkMany` of 50 inputs; one load generator for all three;
//! - `teams`: the warm `check` of a member who holds three roles through three teams and two
//!   shares, next to a member who holds the same five bindings directly;
//! - `keys`: the warm `check` of a member with a session next to the same check with the
//!   member's API key; then, in process, how long verifying the key takes on a warm cache;
//! - `propagation`: two instances over one database and one Redis; for each of many
//!   revocations on A, how long after the mutation returned B first answers "deny";
//! - `cold`: single checks whose facts no cache holds (a new principal each time), on
//!   PostgreSQL, timed at the HTTP client;
//! - `stack`: the same requests as `http`, handed to the routers in process one at a time
//!   (no sockets, no load generator): what each costs the server alone.
//!
//! ```text
//! cargo bench --bench gateway -- [http|teams|keys|propagation|cold|stack|all] [--seconds N] [--concurrency N] ...
//! ```
//!
//! `--help` lists the flags. The database is SQLite (in memory, or a temporary file when two
//! instances share it) unless `IAM_BENCH_DATABASE_URL` names a PostgreSQL server: a scratch
//! database is then created next to the one named and dropped at the end; `cold` needs it.
//! Redis is `IAM_BENCH_REDIS_URL`, else `redis://127.0.0.1:6379`.
//!
//! The servers and the load generator run in two tokio runtimes of this process (threads
//! `server*` and `loadgen*`), so that the CPU each used can be told apart; on a small machine
//! they compete for the same cores, and the tables say how much each took. Results and the
//! commands that produced them are in BENCHMARKS.md.

#![allow(clippy::disallowed_methods)]

// Statistics and number formatting shared with `scale.rs` and the casbin-rs peer; this bench
// uses only part of it.
#[allow(dead_code)]
#[path = "casbin-peer/src/report.rs"]
mod report;
// Its synchronous remove is for the tests' Drop.
#[allow(dead_code)]
#[path = "../tests/common/scratch.rs"]
mod scratch;

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use futures::StreamExt;
use iam_gateway::app::{self, AppState};
use iam_gateway::config::Config;
use iam_gateway::domain::{Actor, Email, Name};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use report::{Stats, nanos, t, thousands};
use scratch::ScratchDb;

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

fn fail(message: impl Into<String>) -> BoxError {
    message.into().into()
}

const DEVELOPER: &str = "00000001-0000-4000-8000-000000000002";
const OPERATOR: &str = "00000001-0000-4000-8000-000000000003";
const VIEWER: &str = "00000001-0000-4000-8000-000000000004";
const PASSWORD: &str = "correct horse battery";
const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";
const CHECK_MANY: &str = "query($is: [CheckInput!]!) { checkMany(inputs: $is) { allowed } }";

const USAGE: &str = "\
usage: cargo bench --bench gateway -- [http|teams|keys|audit|propagation|cold|stack|all]... [flags]
  --seconds N       http, teams: measured seconds per target (default 10)
  --warmup N        http: warm-up seconds per target (default 2)
  --rounds N        http: the measured time is cut into N slices, targets alternating (default 2)
  --concurrency N   http: concurrent clients, one keep-alive connection each (default 8)
  --max-requests N  http: most requests per target (default 5000000)
  --batch N         http: inputs per checkMany (default 50)
  --calls N         stack: requests per target (default 200000)
  --only TEXT       http, stack: only the targets whose name contains TEXT (for profiling)
  --revocations N   propagation: revocations to time (default 1000)
  --members N       cold: principals per group, each checked once (default 2000)
  --max-seconds N   propagation, cold: bound on the timed loop (default 120)
environment: IAM_BENCH_DATABASE_URL (postgres://...; cold needs it), IAM_BENCH_REDIS_URL";

fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> Res<()> {
    let Some(args) = Args::parse()? else {
        println!("{USAGE}");
        return Ok(());
    };
    let server = tokio::runtime::Builder::new_multi_thread()
        .thread_name("server")
        .enable_all()
        .build()?;
    let loadgen = tokio::runtime::Builder::new_multi_thread()
        .thread_name("loadgen")
        .enable_all()
        .build()?;
    server.block_on(run(args, loadgen.handle().clone()))
}

async fn run(args: Args, loadgen: Handle) -> Res<()> {
    println!(
        "gateway bench: {} cores, load average {}",
        cores(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if args.http {
        with_db(false, |db| http(db, &args, &loadgen)).await?;
    }
    if args.teams {
        with_db(false, |db| teams(db, &args, &loadgen)).await?;
    }
    if args.keys {
        with_db(false, |db| keys(db, &args, &loadgen)).await?;
    }
    if args.audit {
        with_db(false, |db| audit(db, &args, &loadgen)).await?;
    }
    if args.propagation {
        with_db(true, |db| propagation(db, &args, &loadgen)).await?;
    }
    if args.stack {
        with_db(false, |db| stack(db, &args)).await?;
    }
    if args.cold {
        if bench_database_url().is_none() {
            println!("\n## cold: skipped (set IAM_BENCH_DATABASE_URL=postgres://...)");
        } else {
            with_db(true, |db| cold(db, &args, &loadgen)).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Flags

struct Args {
    http: bool,
    teams: bool,
    keys: bool,
    audit: bool,
    propagation: bool,
    cold: bool,
    stack: bool,
    calls: usize,
    only: Option<String>,
    seconds: f64,
    warmup: f64,
    rounds: u32,
    concurrency: usize,
    max_requests: u64,
    batch: usize,
    revocations: usize,
    members: usize,
    max_seconds: f64,
}

impl Args {
    /// The flags, or `None` when help was asked for.
    fn parse() -> Res<Option<Self>> {
        let mut a = Self {
            http: false,
            teams: false,
            keys: false,
            audit: false,
            propagation: false,
            cold: false,
            stack: false,
            calls: 200_000,
            only: None,
            seconds: 10.0,
            warmup: 2.0,
            rounds: 2,
            concurrency: 8,
            max_requests: 5_000_000,
            batch: 50,
            revocations: 1000,
            members: 2000,
            max_seconds: 120.0,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                // cargo bench passes `--bench` to every bench binary.
                "--bench" => {}
                "http" => a.http = true,
                "teams" => a.teams = true,
                "keys" => a.keys = true,
                "audit" => a.audit = true,
                "propagation" => a.propagation = true,
                "cold" => a.cold = true,
                "stack" => a.stack = true,
                "all" => {
                    (a.http, a.teams, a.keys, a.propagation, a.cold, a.stack) =
                        (true, true, true, true, true, true)
                }
                "--calls" => a.calls = value::<usize>(&mut it, &arg)?.max(100),
                "--only" => a.only = Some(value(&mut it, &arg)?),
                "--seconds" => a.seconds = value(&mut it, &arg)?,
                "--warmup" => a.warmup = value(&mut it, &arg)?,
                "--rounds" => a.rounds = value::<u32>(&mut it, &arg)?.max(1),
                "--concurrency" => a.concurrency = value::<usize>(&mut it, &arg)?.max(1),
                "--max-requests" => a.max_requests = value(&mut it, &arg)?,
                "--batch" => a.batch = value::<usize>(&mut it, &arg)?.clamp(1, 500),
                "--revocations" => a.revocations = value(&mut it, &arg)?,
                "--members" => a.members = value(&mut it, &arg)?,
                "--max-seconds" => a.max_seconds = value(&mut it, &arg)?,
                "--help" | "-h" => return Ok(None),
                other => return Err(fail(format!("unknown argument `{other}`\n{USAGE}"))),
            }
        }
        if !(a.http || a.teams || a.keys || a.audit || a.propagation || a.cold || a.stack) {
            (a.http, a.teams, a.keys, a.propagation, a.cold, a.stack) =
                (true, true, true, true, true, true);
        }
        Ok(Some(a))
    }

    /// Whether `target` is measured (`--only`).
    fn times(&self, target: &Target) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| target.name.contains(only))
    }
}

fn value<T: FromStr>(it: &mut impl Iterator<Item = String>, flag: &str) -> Res<T> {
    it.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| fail(format!("{flag} needs a value")))
}

fn bench_database_url() -> Option<String> {
    std::env::var("IAM_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

fn redis_url() -> String {
    std::env::var("IAM_BENCH_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Databases and servers

/// A fresh database for one measurement, removed afterwards.
enum Db {
    Memory,
    File(PathBuf),
    Postgres(ScratchDb),
}

impl Db {
    /// A scratch PostgreSQL database when `IAM_BENCH_DATABASE_URL` is set; otherwise SQLite in
    /// memory, or a temporary file when several instances must share it.
    async fn fresh(shared: bool) -> Res<Self> {
        if let Some(base) = bench_database_url() {
            return Ok(Self::Postgres(
                ScratchDb::create(&base, "iam_bench").await.map_err(fail)?,
            ));
        }
        if shared {
            let path =
                std::env::temp_dir().join(format!("iam-bench-{}.db", Uuid::new_v4().simple()));
            return Ok(Self::File(path));
        }
        Ok(Self::Memory)
    }

    fn url(&self) -> String {
        match self {
            Self::Memory => "sqlite::memory:".to_owned(),
            Self::File(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres(db) => db.url.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Memory => "SQLite in memory (one connection)".to_owned(),
            Self::File(_) => "SQLite, a temporary file (one connection per instance)".to_owned(),
            Self::Postgres(db) => {
                format!(
                    "PostgreSQL 127.0.0.1, scratch database {} (pool of 10)",
                    db.name
                )
            }
        }
    }

    async fn remove(self) {
        match self {
            Self::Memory => {}
            Self::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Self::Postgres(db) => {
                if let Err(e) = db.remove().await {
                    eprintln!("could not drop the scratch database {}: {e}", db.name);
                }
            }
        }
    }
}

/// Runs `measure` on a fresh database and removes the database whatever the outcome.
async fn with_db<F, Fut>(shared: bool, measure: F) -> Res<()>
where
    F: FnOnce(Arc<Db>) -> Fut,
    Fut: Future<Output = Res<()>>,
{
    let db = Arc::new(Db::fresh(shared).await?);
    let outcome = measure(db.clone()).await;
    match Arc::try_unwrap(db) {
        Ok(db) => db.remove().await,
        Err(_) => eprintln!("the scratch database is still in use; not removed"),
    }
    outcome
}

/// A server on an ephemeral port, stopped by [`Server::stop`].
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: JoinHandle<()>,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.done).await;
    }
}

/// An instance of the gateway: `AppState::init` and `app::serve`, as the binary runs them.
struct Gateway {
    server: Server,
    state: AppState,
}

impl Gateway {
    async fn start(database_url: &str, redis_url: Option<&str>) -> Res<Self> {
        let config = Config {
            database_url: database_url.to_owned(),
            redis_url: redis_url.map(str::to_owned),
            // The bench signs many members up from one address.
            rate_limit_ip_per_minute: 1_000_000,
            rate_limit_ip_burst: 1_000_000,
            ..Config::default()
        };
        let state = AppState::init(config).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = state.clone();
        let done = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = app::serve(listener, serving, shutdown).await {
                eprintln!("gateway: {e}");
            }
        });
        Ok(Self {
            server: Server { addr, stop, done },
            state,
        })
    }

    /// Waits (at most 10 s) until the instance trusts its caches (subscribed to Redis).
    async fn trusted(&self) -> Res<()> {
        let epochs = self.state.services.bus.epochs().clone();
        let start = Instant::now();
        while !epochs.trusted() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(fail("the instance never came to trust its caches"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

/// The baseline: a query that returns a constant.
struct Ping;

#[Object]
impl Ping {
    async fn ping(&self) -> &'static str {
        "pong"
    }
}

type PingSchema = Schema<Ping, EmptyMutation, EmptySubscription>;

async fn ping_handler(
    State(schema): State<PingSchema>,
    request: GraphQLRequest,
) -> GraphQLResponse {
    schema.execute(request.into_inner()).await.into()
}

/// The minimal axum + async-graphql-axum router.
fn noop_router() -> Router {
    let schema = Schema::build(Ping, EmptyMutation, EmptySubscription).finish();
    Router::new()
        .route("/graphql", post(ping_handler))
        .with_state(schema)
}

/// The minimal router, served like the gateway is by `app::serve`.
async fn start_noop() -> Res<Server> {
    let router = noop_router();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            eprintln!("no-op server: {e}");
        }
    });
    Ok(Server { addr, stop, done })
}

// ---------------------------------------------------------------------------------------------
// The API, as a client uses it (setup only; nothing here is timed)

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    fn new(addr: SocketAddr) -> Res<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            url: format!("http://{addr}/graphql"),
        })
    }

    /// Runs an operation; an error when the answer carries errors.
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Res<Value> {
        let mut req = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() || body.get("errors").is_some_and(|e| !e.is_null()) {
            return Err(fail(format!("{query}: HTTP {status}: {body}")));
        }
        Ok(body)
    }

    async fn string(
        &self,
        token: Option<&str>,
        query: &str,
        vars: Value,
        path: &[&str],
    ) -> Res<String> {
        let body = self.gql(token, query, vars).await?;
        let mut v = &body["data"];
        for key in path {
            v = &v[*key];
        }
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail(format!("no string at data.{}: {body}", path.join("."))))
    }

    async fn sign_up(&self, email: &str) -> Res<String> {
        let q = "mutation($e: String!, $p: String!) { signUp(input: {email: $e, password: $p, name: \"Bench\"}) { token } }";
        self.string(
            None,
            q,
            json!({ "e": email, "p": PASSWORD }),
            &["signUp", "token"],
        )
        .await
    }

    async fn user_id(&self, token: &str) -> Res<String> {
        self.string(Some(token), "{ me { id } }", json!({}), &["me", "id"])
            .await
    }

    /// Invites `email` into `org` without roles and has `member` (signed in with that email)
    /// accept.
    async fn join(&self, admin: &str, org: &str, email: &str, member: &str) -> Res<()> {
        // `roles: []`: no role at all (an invitation naming none gives the default role).
        let q = "mutation($o: ID!, $e: String!) { inviteMember(input: {organizationId: $o, email: $e, roles: []}) { token } }";
        let invitation = self
            .string(
                Some(admin),
                q,
                json!({ "o": org, "e": email }),
                &["inviteMember", "token"],
            )
            .await?;
        let q = "mutation($t: String!) { acceptInvitation(input: {token: $t}) { organization { id } } }";
        self.gql(Some(member), q, json!({ "t": invitation }))
            .await?;
        Ok(())
    }

    async fn grant(&self, admin: &str, principal: &str, role: &str, node: &str) -> Res<String> {
        let q = "mutation($p: ID!, $r: ID!, $n: ID!) { grantRole(input: {principalId: $p, roleId: $r, nodeId: $n}) { binding { id } } }";
        let vars = json!({ "p": principal, "r": role, "n": node });
        self.string(Some(admin), q, vars, &["grantRole", "binding", "id"])
            .await
    }

    /// Shares `resource` (type, id) with `principal` through `role` at `node`.
    async fn share(
        &self,
        admin: &str,
        principal: &str,
        role: &str,
        node: &str,
        resource: (&str, &str),
    ) -> Res<String> {
        let q = "mutation($p: ID!, $r: ID!, $n: ID!, $t: String, $i: ID) { grantRole(input: {principalId: $p, roleId: $r, nodeId: $n, resourceType: $t, resourceId: $i}) { binding { id } } }";
        let vars =
            json!({ "p": principal, "r": role, "n": node, "t": resource.0, "i": resource.1 });
        self.string(Some(admin), q, vars, &["grantRole", "binding", "id"])
            .await
    }

    async fn create_team(&self, admin: &str, org: &str, name: &str) -> Res<String> {
        let q = "mutation($o: ID!, $n: String!) { createTeam(input: {organizationId: $o, name: $n}) { team { id } } }";
        self.string(
            Some(admin),
            q,
            json!({ "o": org, "n": name }),
            &["createTeam", "team", "id"],
        )
        .await
    }

    async fn add_team_member(&self, admin: &str, team: &str, principal: &str) -> Res<()> {
        let q = "mutation($t: ID!, $p: [ID!]!) { addTeamMembers(input: {teamId: $t, principalIds: $p}) { changed } }";
        let body = self
            .gql(Some(admin), q, json!({ "t": team, "p": [principal] }))
            .await?;
        if body["data"]["addTeamMembers"]["changed"] != json!([principal]) {
            return Err(fail(format!("addTeamMembers: {body}")));
        }
        Ok(())
    }

    async fn revoke(&self, admin: &str, binding: &str) -> Res<()> {
        let q = "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { revision } }";
        self.gql(Some(admin), q, json!({ "id": binding })).await?;
        Ok(())
    }

    /// Every (resource type, action) of the catalog.
    async fn catalog(&self, token: &str) -> Res<Vec<(String, String)>> {
        let body = self
            .gql(
                Some(token),
                "{ permissionCatalog { resourceType actions } }",
                json!({}),
            )
            .await?;
        let mut pairs = Vec::new();
        for group in body["data"]["permissionCatalog"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let t = group["resourceType"].as_str().unwrap_or_default();
            for a in group["actions"].as_array().into_iter().flatten() {
                pairs.push((t.to_owned(), a.as_str().unwrap_or_default().to_owned()));
            }
        }
        if pairs.is_empty() {
            return Err(fail(format!("empty permission catalog: {body}")));
        }
        Ok(pairs)
    }
}

/// An organization with a workspace, two projects, an admin and a member without roles.
#[derive(Clone)]
struct Org {
    admin: String,
    org: String,
    ws: String,
    project: String,
    other_project: String,
    member: String,
    member_id: String,
}

impl Org {
    async fn create(api: &Api) -> Res<Self> {
        let tag = &Uuid::new_v4().simple().to_string()[..8];
        let admin = api.sign_up(&format!("admin-{tag}@example.com")).await?;
        let q = "mutation($s: String!) { createOrganization(input: {slug: $s, name: \"Bench\"}) { organization { id } } }";
        let org = api
            .string(
                Some(&admin),
                q,
                json!({ "s": format!("bench-{tag}") }),
                &["createOrganization", "organization", "id"],
            )
            .await?;
        let q = "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"prod\", name: \"Prod\"}) { workspace { id } } }";
        let ws = api
            .string(
                Some(&admin),
                q,
                json!({ "o": org }),
                &["createWorkspace", "workspace", "id"],
            )
            .await?;
        let q = "mutation($w: ID!, $s: String!) { createProject(input: {workspaceId: $w, slug: $s, name: \"Project\"}) { project { id } } }";
        let path = ["createProject", "project", "id"];
        let project = api
            .string(Some(&admin), q, json!({ "w": ws, "s": "api" }), &path)
            .await?;
        let other_project = api
            .string(Some(&admin), q, json!({ "w": ws, "s": "web" }), &path)
            .await?;
        let email = format!("member-{tag}@example.com");
        let member = api.sign_up(&email).await?;
        api.join(&admin, &org, &email, &member).await?;
        let member_id = api.user_id(&member).await?;
        Ok(Self {
            admin,
            org,
            ws,
            project,
            other_project,
            member,
            member_id,
        })
    }
}

/// A JSON body for the whole run (the load generator sends it without copying).
fn leak(body: &Value) -> &'static [u8] {
    serde_json::to_vec(body).unwrap_or_default().leak()
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// One request the load generator sends over and over, and what a right answer contains.
struct Target {
    name: &'static str,
    url: String,
    token: Option<String>,
    body: &'static [u8],
    /// A right answer holds `expect` exactly `times` times, and no `"errors"`.
    expect: &'static [u8],
    times: usize,
    /// Decisions per request.
    checks: usize,
}

impl Target {
    fn answered(&self, status: reqwest::StatusCode, body: &[u8]) -> bool {
        status.is_success()
            && count(body, self.expect) == self.times
            && count(body, b"\"errors\"") == 0
    }

    /// Sends the request once; an error showing the answer unless it is right.
    async fn probe(&self, client: &reqwest::Client) -> Res<()> {
        let resp = self.request(client).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !self.answered(status, &body) {
            return Err(fail(format!(
                "{}: unexpected answer (HTTP {status}): {}",
                self.name,
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    }

    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let req = client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(self.body);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }
}

/// A keep-alive client with one connection.
fn client() -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// Sends `target` from every client in a loop (each on its own task of the load generator's
/// runtime) until `duration` has passed or `max` requests were sent. Returns the latency of
/// each right answer in nanoseconds, the number of failures and the wall time.
async fn load(
    loadgen: &Handle,
    target: &Arc<Target>,
    clients: &[reqwest::Client],
    duration: Duration,
    max: u64,
) -> Res<(Vec<u64>, u64, Duration)> {
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let (client, target, issued) = (client.clone(), target.clone(), issued.clone());
        tasks.push(loadgen.spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut failures = 0u64;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                let sent = Instant::now();
                let right = match target.request(&client).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(body) => target.answered(status, &body),
                            Err(_) => false,
                        }
                    }
                    Err(_) => false,
                };
                let took = nanos(sent.elapsed());
                if right {
                    latencies.push(took);
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    Ok((latencies, failures, start.elapsed()))
}

// ---------------------------------------------------------------------------------------------
// What the instances and the machine did

/// Counters of one instance (its Prometheus metrics, read in process), named in [`COUNTERS`].
#[derive(Clone, Copy, Default)]
struct Counters([u64; 9]);

const COUNTERS: [&str; 9] = [
    "facts L1 hits",
    "facts L2 hits",
    "facts L2 misses",
    "facts store loads",
    "facts invalidations",
    "lookups bypassing untrusted caches",
    "session hits",
    "session misses",
    "events received",
];

impl Counters {
    fn read(state: &AppState) -> Self {
        let m = &state.services.metrics;
        Self([
            m.cache_hits.l1.get(),
            m.cache_hits.l2.get(),
            m.cache_misses.l2.get(),
            m.store_loads.get(),
            m.invalidations.get(),
            m.cache_bypassed.get(),
            m.cache_hits.session.get(),
            m.cache_misses.session.get(),
            m.events_received.get(),
        ])
    }

    fn since(mut self, before: Self) -> Self {
        for (now, then) in self.0.iter_mut().zip(before.0) {
            *now = now.saturating_sub(then);
        }
        self
    }

    fn add(&mut self, delta: Self) {
        for (sum, d) in self.0.iter_mut().zip(delta.0) {
            *sum += d;
        }
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = COUNTERS
            .iter()
            .zip(self.0)
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        parts.join(", ")
    }
}

/// CPU clock ticks: the whole machine (/proc/stat) and this process's threads by name.
#[derive(Clone, Copy, Default)]
struct Cpu {
    machine_total: u64,
    machine_busy: u64,
    loadgen: u64,
    server: u64,
    sqlite: u64,
    rest: u64,
}

impl Cpu {
    fn now() -> Self {
        let mut cpu = Self::default();
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        if let Some(line) = stat.lines().next() {
            // user nice system idle iowait irq softirq steal (guest time is inside user).
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|x| x.parse().ok())
                .collect();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            cpu.machine_total = v.iter().sum();
            cpu.machine_busy = cpu.machine_total.saturating_sub(idle);
        }
        for entry in std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(s) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
                continue;
            };
            let name = s.get(open + 1..close).unwrap_or_default();
            let fields: Vec<&str> = s
                .get(close + 1..)
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            // Fields 14 and 15 of the stat line (utime, stime), counted from the state field (3).
            let tick = |i: usize| {
                fields
                    .get(i)
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let ticks = tick(11) + tick(12);
            if name.starts_with("loadgen") {
                cpu.loadgen += ticks;
            } else if name.starts_with("server") {
                cpu.server += ticks;
            } else if name.starts_with("sqlx-sqlite") {
                cpu.sqlite += ticks;
            } else {
                cpu.rest += ticks;
            }
        }
        cpu
    }

    fn since(self, before: Self) -> Self {
        Self {
            machine_total: self.machine_total.saturating_sub(before.machine_total),
            machine_busy: self.machine_busy.saturating_sub(before.machine_busy),
            loadgen: self.loadgen.saturating_sub(before.loadgen),
            server: self.server.saturating_sub(before.server),
            sqlite: self.sqlite.saturating_sub(before.sqlite),
            rest: self.rest.saturating_sub(before.rest),
        }
    }

    fn add(&mut self, d: Self) {
        self.machine_total += d.machine_total;
        self.machine_busy += d.machine_busy;
        self.loadgen += d.loadgen;
        self.server += d.server;
        self.sqlite += d.sqlite;
        self.rest += d.rest;
    }

    /// Ticks as cores kept busy on average.
    fn cores(&self, ticks: u64) -> String {
        if self.machine_total == 0 {
            return "n/a".to_owned();
        }
        format!(
            "{:.2}",
            ticks as f64 * cores() as f64 / self.machine_total as f64
        )
    }

    fn row(&self, name: &str) -> String {
        let own = self.loadgen + self.server + self.sqlite + self.rest;
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            self.cores(self.machine_busy),
            self.cores(self.loadgen),
            self.cores(self.server),
            self.cores(self.sqlite),
            self.cores(self.rest),
            self.cores(self.machine_busy.saturating_sub(own)),
        )
    }
}

const CPU_HEADER: &str = "| during | machine busy | load generator | servers (runtime) | SQLite worker | rest of process | other processes |\n|---|---|---|---|---|---|---|";

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------------------------------------
// 1. check over HTTP vs a no-op

async fn http(db: Arc<Db>, args: &Args, loadgen: &Handle) -> Res<()> {
    let gateway = Gateway::start(&db.url(), None).await?;
    let noop = start_noop().await?;
    let targets = targets(&gateway, noop.url(), args).await?.map(Arc::new);
    let measured = http_measure(&gateway, &targets, &db, args, loadgen, &http_summary).await;
    noop.stop().await;
    gateway.server.stop().await;
    measured
}

/// The ratios of `http`: `check` against the no-ops, and `checkMany`'s rate.
fn http_summary(rates: &[f64], args: &Args) {
    if let [noop_rate, typename_rate, check_rate, many_rate] = rates[..] {
        println!(
            "\ncheck / bare no-op, requests/s: {:.2} (target >= 0.8)",
            check_rate / noop_rate
        );
        println!(
            "check / no-op on the gateway's own stack, requests/s: {:.2}",
            check_rate / typename_rate
        );
        println!(
            "checkMany: {} checks/s (target >= 50,000)",
            thousands(many_rate * args.batch as f64)
        );
    }
}

/// The four targets of `http` and `stack`: the bare no-op (served at `noop_url`), the no-op on
/// the gateway, `check` and `checkMany`, for a member with three bindings in a fresh
/// organization.
async fn targets(gateway: &Gateway, noop_url: String, args: &Args) -> Res<[Target; 4]> {
    let api = Api::new(gateway.server.addr)?;
    let o = Org::create(&api).await?;
    for (role, node) in [(VIEWER, &o.org), (DEVELOPER, &o.ws), (OPERATOR, &o.project)] {
        api.grant(&o.admin, &o.member_id, role, node).await?;
    }
    let pairs = api.catalog(&o.admin).await?;
    let nodes = [&o.org, &o.ws, &o.project, &o.other_project];
    let inputs: Vec<Value> = (0..args.batch)
        .map(|i| {
            let (t, a) = &pairs[i % pairs.len()];
            let mut input =
                json!({ "resourceType": t, "action": a, "nodeId": nodes[i % nodes.len()] });
            if i % 3 == 0 {
                input["resourceId"] = json!(Uuid::new_v4().to_string());
            }
            input
        })
        .collect();
    let check_input = json!({ "resourceType": "apps", "action": "read", "nodeId": o.project });
    Ok([
        Target {
            name: "no-op `{ ping }`",
            url: noop_url,
            token: None,
            body: leak(&json!({ "query": "{ ping }" })),
            expect: b"\"pong\"",
            times: 1,
            checks: 0,
        },
        Target {
            name: "no-op `{ __typename }` on the gateway",
            url: gateway.server.url(),
            token: Some(o.member.clone()),
            body: leak(&json!({ "query": "{ __typename }" })),
            expect: b"\"Query\"",
            times: 1,
            checks: 0,
        },
        Target {
            name: "`check`",
            url: gateway.server.url(),
            token: Some(o.member.clone()),
            body: leak(&json!({ "query": CHECK, "variables": { "i": check_input } })),
            expect: b"\"allowed\":true",
            times: 1,
            checks: 1,
        },
        Target {
            name: "`checkMany`",
            url: gateway.server.url(),
            token: Some(o.member.clone()),
            body: leak(&json!({ "query": CHECK_MANY, "variables": { "is": inputs } })),
            expect: b"\"allowed\":",
            times: args.batch,
            checks: args.batch,
        },
    ])
}

/// Measures `targets` in alternating slices and prints a table; `summary` gets the rates
/// (requests/s) of the measured targets, in order, for the ratios the mode is about.
async fn http_measure(
    gateway: &Gateway,
    targets: &[Arc<Target>],
    db: &Db,
    args: &Args,
    loadgen: &Handle,
    summary: &dyn Fn(&[f64], &Args),
) -> Res<()> {
    let targets: Vec<&Arc<Target>> = targets.iter().filter(|t| args.times(t)).collect();
    let slice = Duration::from_secs_f64(args.seconds / f64::from(args.rounds));
    let mut clients = Vec::new();
    for target in &targets {
        let mine: Vec<reqwest::Client> = (0..args.concurrency)
            .map(|_| client())
            .collect::<Res<_>>()?;
        let first = mine.first().ok_or_else(|| fail("no client"))?;
        target.probe(first).await?;
        clients.push(mine);
    }
    for (target, mine) in targets.iter().zip(&clients) {
        load(
            loadgen,
            target,
            mine,
            Duration::from_secs_f64(args.warmup),
            args.max_requests,
        )
        .await?;
    }
    let mut results: Vec<(Vec<u64>, u64, Duration, Counters, Cpu)> =
        targets.iter().map(|_| Default::default()).collect();
    for _ in 0..args.rounds {
        for ((target, mine), result) in targets.iter().zip(&clients).zip(&mut results) {
            let left = args
                .max_requests
                .saturating_sub(result.0.len() as u64 + result.1);
            let (counters, cpu) = (Counters::read(&gateway.state), Cpu::now());
            let (latencies, failures, took) = load(loadgen, target, mine, slice, left).await?;
            result.3.add(Counters::read(&gateway.state).since(counters));
            result.4.add(Cpu::now().since(cpu));
            result.0.extend(latencies);
            result.1 += failures;
            result.2 += took;
        }
    }
    drop(clients);

    println!(
        "\n## http: {} concurrent clients (one keep-alive connection each), {} s per target in {} alternating slices after {} s of warm-up\n",
        args.concurrency, args.seconds, args.rounds, args.warmup
    );
    println!(
        "gateway database: {}; no Redis (in-process cache only)\n",
        db.describe()
    );
    println!(
        "| target | requests | failed | requests/s | checks/s | p50 | p90 | p99 | max | mean |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    for (target, (latencies, failures, took, _, _)) in targets.iter().zip(&results) {
        let rate = latencies.len() as f64 / took.as_secs_f64();
        rates.push(rate);
        let name = match target.checks {
            n if n > 1 => format!("{} ({n} inputs)", target.name),
            _ => target.name.to_owned(),
        };
        let checks = match target.checks {
            0 => "–".to_owned(),
            n => thousands(rate * n as f64),
        };
        let stats = Stats::of(latencies);
        println!(
            "| {name} | {} | {failures} | {} | {checks} | {} |",
            stats.n,
            thousands(rate),
            stats.cells()
        );
    }
    summary(&rates, args);
    println!();
    for (target, result) in targets.iter().zip(&results).filter(|(t, _)| t.checks > 0) {
        println!("gateway during {}: {}", target.name, result.3.describe());
    }
    println!(
        "\nCPU, in cores kept busy on average ({} cores):\n\n{CPU_HEADER}",
        cores()
    );
    for (target, result) in targets.iter().zip(&results) {
        println!("{}", result.4.row(target.name));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1a. teams: roles held through teams and shares against the same roles bound directly

/// Two members of one organization with the same five bindings: Viewer at the organization,
/// Developer at the workspace and Operator at a project, plus two shares (Developer on one
/// augmentation at the workspace, Operator on one endpoint at the project). One holds them
/// directly; the other holds the three node-wide roles through three teams, and the shares
/// directly. Each asks `check` about itself, on a node and on a shared resource.
async fn teams(db: Arc<Db>, args: &Args, loadgen: &Handle) -> Res<()> {
    let gateway = Gateway::start(&db.url(), None).await?;
    let api = Api::new(gateway.server.addr)?;
    let o = Org::create(&api).await?;
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let email = format!("teamed-{tag}@example.com");
    let teamed = api.sign_up(&email).await?;
    api.join(&o.admin, &o.org, &email, &teamed).await?;
    let teamed_id = api.user_id(&teamed).await?;
    let roles = [(VIEWER, &o.org), (DEVELOPER, &o.ws), (OPERATOR, &o.project)];
    for (i, (role, node)) in roles.iter().enumerate() {
        api.grant(&o.admin, &o.member_id, role, node).await?;
        let team = api
            .create_team(&o.admin, &o.org, &format!("team-{i}"))
            .await?;
        api.grant(&o.admin, &team, role, node).await?;
        api.add_team_member(&o.admin, &team, &teamed_id).await?;
    }
    for principal in [&o.member_id, &teamed_id] {
        api.share(
            &o.admin,
            principal,
            DEVELOPER,
            &o.ws,
            ("augmentations", "aug-42"),
        )
        .await?;
        api.share(
            &o.admin,
            principal,
            OPERATOR,
            &o.project,
            ("endpoints", "ep-7"),
        )
        .await?;
    }
    let on_node = json!({ "resourceType": "apps", "action": "read", "nodeId": o.project });
    let on_share = json!({ "resourceType": "endpoints", "action": "trigger", "nodeId": o.project, "resourceId": "ep-7" });
    let target = |name: &'static str, token: &str, input: &Value| Target {
        name,
        url: gateway.server.url(),
        token: Some(token.to_owned()),
        body: leak(&json!({ "query": CHECK, "variables": { "i": input } })),
        expect: b"\"allowed\":true",
        times: 1,
        checks: 1,
    };
    let targets = [
        target("direct: `check` on a node", &o.member, &on_node),
        target("teams: `check` on a node", &teamed, &on_node),
        target("direct: `check` of a shared resource", &o.member, &on_share),
        target("teams: `check` of a shared resource", &teamed, &on_share),
    ]
    .map(Arc::new);
    let measured = http_measure(&gateway, &targets, &db, args, loadgen, &|rates, _| {
        if let [direct, teams, direct_share, teams_share] = rates[..] {
            println!(
                "\ndirect / teams, requests/s: on a node {:.2}, on a shared resource {:.2} (target <= 1.2)",
                direct / teams,
                direct_share / teams_share
            );
        }
    })
    .await;
    gateway.server.stop().await;
    measured
}

/// `keys`: the same warm `check` with a session and with an API key of the same member (a
/// personal key without scopes, so the answers agree), over HTTP; then the key's verification
/// alone, in process, on a warm cache (`Auth::authenticate`: checksum, hash, cached entry,
/// its epochs, its networks, the use noted for the next batch).
/// `audit`: what an audited mutation costs, each writing one event (the chain's work
/// included): an admin's `updateWorkspace` (an event of the organization) and a member's
/// `updateMe` (an account event, written to the member's organization). Compare trees (with
/// and without a change to the audit path) in one run of each.
async fn audit(db: Arc<Db>, args: &Args, loadgen: &Handle) -> Res<()> {
    let gateway = Gateway::start(&db.url(), None).await?;
    let api = Api::new(gateway.server.addr)?;
    let o = Org::create(&api).await?;
    let mutation =
        |name: &'static str, token: &str, query: &str, variables: Value, expect| Target {
            name,
            url: gateway.server.url(),
            token: Some(token.to_owned()),
            body: leak(&json!({ "query": query, "variables": variables })),
            expect,
            times: 1,
            checks: 0,
        };
    let targets = [
        mutation(
            "`updateWorkspace` (an organization's event)",
            &o.admin,
            "mutation($id: ID!) { updateWorkspace(input: {id: $id, name: \"Prod\"}) { workspace { id } } }",
            json!({ "id": o.ws }),
            b"\"workspace\"",
        ),
        mutation(
            "`updateMe` (an account event)",
            &o.member,
            "mutation { updateMe(input: {name: \"Bench\"}) { user { name } } }",
            json!({}),
            b"\"Bench\"",
        ),
    ]
    .map(Arc::new);
    http_measure(&gateway, &targets, &db, args, loadgen, &|rates, _| {
        if let [ws, me] = rates[..] {
            println!("\nmutations/s: updateWorkspace {ws:.0}, updateMe {me:.0}");
        }
    })
    .await?;
    gateway.server.stop().await;
    Ok(())
}

async fn keys(db: Arc<Db>, args: &Args, loadgen: &Handle) -> Res<()> {
    let gateway = Gateway::start(&db.url(), None).await?;
    let api = Api::new(gateway.server.addr)?;
    let o = Org::create(&api).await?;
    api.grant(&o.admin, &o.member_id, DEVELOPER, &o.ws).await?;
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let key = api
        .string(
            Some(&o.member),
            "mutation($o: ID!, $e: DateTime!) { createApiKey(input: {organizationId: $o, name: \"bench\", expiresAt: $e}) { secret } }",
            json!({ "o": o.org, "e": expires }),
            &["createApiKey", "secret"],
        )
        .await?;
    // A backend's key: the admin's, narrowed to asking about members.
    let backend = api
        .string(
            Some(&o.admin),
            "mutation($o: ID!, $e: DateTime!) { createApiKey(input: {organizationId: $o, name: \"backend\", expiresAt: $e, scopes: [\"members:*:read\"]}) { secret } }",
            json!({ "o": o.org, "e": expires }),
            &["createApiKey", "secret"],
        )
        .await?;
    let noop = start_noop().await?;
    let input = json!({ "resourceType": "apps", "action": "write", "nodeId": o.project });
    let about = json!({ "principalId": o.member_id, "resourceType": "apps", "action": "write", "nodeId": o.project });
    let many: Vec<Value> = (0..args.batch)
        .map(|i| {
            let node = if i % 2 == 0 { &o.project } else { &o.ws };
            json!({ "principalId": o.member_id, "resourceType": "apps", "action": "write", "nodeId": node })
        })
        .collect();
    let target = |name: &'static str, token: &str, input: &Value| Target {
        name,
        url: gateway.server.url(),
        token: Some(token.to_owned()),
        body: leak(&json!({ "query": CHECK, "variables": { "i": input } })),
        expect: b"\"allowed\":true",
        times: 1,
        checks: 1,
    };
    let many_target = |name: &'static str, token: &str| Target {
        name,
        url: gateway.server.url(),
        token: Some(token.to_owned()),
        body: leak(&json!({ "query": CHECK_MANY, "variables": { "is": many } })),
        expect: b"\"allowed\":",
        times: args.batch,
        checks: args.batch,
    };
    let targets = [
        Target {
            name: "no-op `{ ping }`",
            url: noop.url(),
            token: None,
            body: leak(&json!({ "query": "{ ping }" })),
            expect: b"\"pong\"",
            times: 1,
            checks: 0,
        },
        target("session: `check` on a node", &o.member, &input),
        target("API key: `check` on a node", &key, &input),
        target("session: `check` about another principal", &o.admin, &about),
        target("API key: `check` about another principal", &backend, &about),
        many_target("session: `checkMany(50)` about another principal", &o.admin),
        many_target("API key: `checkMany(50)` about another principal", &backend),
    ]
    .map(Arc::new);
    let measured = http_measure(&gateway, &targets, &db, args, loadgen, &|rates, _| {
        if let [noop, session, key, about_s, about_k, many_s, many_k] = rates[..] {
            println!(
                "\nAPI key / session, requests/s: own check {:.2}, about another {:.2}, checkMany about another {:.2} (target >= 0.95)",
                key / session,
                about_k / about_s,
                many_k / many_s
            );
            println!(
                "÷ bare no-op, requests/s: own check {:.2} / {:.2} (session / key); about another {:.2} / {:.2} (target >= 0.8); checkMany(50) about another {:.2} / {:.2} (target >= 0.6)",
                session / noop,
                key / noop,
                about_s / noop,
                about_k / noop,
                many_s / noop,
                many_k / noop
            );
        }
    })
    .await;
    noop.stop().await;
    let auth = &gateway.state.services.auth;
    let actor = Actor {
        ip: Some("127.0.0.1".to_owned()),
        ..Actor::default()
    };
    let mut took = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let began = Instant::now();
        let caller = auth
            .authenticate(Some(&key), &actor)
            .await
            .map_err(|e| fail(format!("{e:?}")))?;
        took.push(u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX));
        if !matches!(caller, iam_gateway::auth::Caller::Key(_)) {
            return Err(fail(format!("the key was refused: {caller:?}")));
        }
    }
    let stats = report::Stats::of(&took);
    println!(
        "\n| key verification, warm cache, in process | n | p50 | p90 | p99 | max | mean |\n|---|---|---|---|---|---|---|\n| `Auth::authenticate` | {} | {} |",
        stats.n,
        stats.cells()
    );
    gateway.server.stop().await;
    measured
}

// ---------------------------------------------------------------------------------------------
// 1b. the same requests in process: what each costs the server

/// Hands the `http` targets' requests to the routers themselves (`tower::ServiceExt::oneshot`,
/// with the peer address a real connection would add), one at a time in this task, and times
/// each from the call to the last byte of the answer. No sockets, no load generator: the time
/// is the server's own work per request (middleware, session lookup, GraphQL, resolver).
async fn stack(db: Arc<Db>, args: &Args) -> Res<()> {
    let gateway = Gateway::start(&db.url(), None).await?;
    let targets = targets(&gateway, String::new(), args).await?;
    let routers = [noop_router(), app::router(gateway.state.clone())];
    let router_of = |i: usize| &routers[usize::from(i > 0)];
    let timed = |target: &Target| args.times(target);
    for (i, target) in targets.iter().enumerate().filter(|(_, t)| timed(t)) {
        for _ in 0..args.calls / 10 {
            call(router_of(i), target).await?;
        }
    }
    let slices = 10;
    let mut latencies: Vec<Vec<u64>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..slices {
        for (i, target) in targets.iter().enumerate().filter(|(_, t)| timed(t)) {
            for _ in 0..args.calls / slices {
                latencies[i].push(call(router_of(i), target).await?);
            }
        }
    }
    gateway.server.stop().await;

    println!(
        "\n## stack: each request handed to the router in process, one at a time ({} per target, in {slices} alternating slices after {} of warm-up)\n",
        thousands(args.calls as f64),
        thousands((args.calls / 10) as f64)
    );
    println!("| target | p50 | p90 | p99 | max | mean | requests/s on one core (1 / mean) |");
    println!("|---|---|---|---|---|---|---|");
    let mut means = Vec::new();
    for (target, v) in targets.iter().zip(latencies).filter(|(t, _)| timed(t)) {
        let stats = Stats::of(&v);
        means.push(stats.mean as f64);
        println!(
            "| {} | {} | {} |",
            target.name,
            stats.cells(),
            thousands(1e9 / (stats.mean.max(1) as f64))
        );
    }
    if let [noop, typename, check, _] = means[..] {
        println!(
            "\nserver time of a bare no-op / of a check: {:.2}; of the gateway's no-op / of a check: {:.2}",
            noop / check,
            typename / check
        );
    }
    Ok(())
}

/// One request of `target` through `router`; its latency in nanoseconds, an error unless the
/// answer is right.
async fn call(router: &Router, target: &Target) -> Res<u64> {
    use tower::ServiceExt;
    let mut request =
        axum::http::Request::post("/graphql").header(CONTENT_TYPE.as_str(), "application/json");
    if let Some(token) = &target.token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut request = request.body(axum::body::Body::from(target.body))?;
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((
            [127, 0, 0, 1],
            50_000,
        ))));
    let began = Instant::now();
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    let took = began.elapsed();
    if !target.answered(status, &body) {
        return Err(fail(format!(
            "{}: unexpected answer (HTTP {status}): {}",
            target.name,
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(nanos(took))
}

// ---------------------------------------------------------------------------------------------
// 2. propagation of a revocation between two instances

/// Checks `apps:read` at one node as one caller, over its own keep-alive connection.
struct Probe {
    client: reqwest::Client,
    url: String,
    token: String,
    body: &'static [u8],
}

impl Probe {
    fn new(url: String, token: &str, node: &str) -> Res<Self> {
        let input = json!({ "resourceType": "apps", "action": "read", "nodeId": node });
        Ok(Self {
            client: client()?,
            url,
            token: token.to_owned(),
            body: leak(&json!({ "query": CHECK, "variables": { "i": input } })),
        })
    }

    /// One check; the answer's body.
    async fn send(&self) -> Res<Vec<u8>> {
        let resp = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .bearer_auth(&self.token)
            .body(self.body)
            .send()
            .await?;
        Ok(resp.bytes().await?.to_vec())
    }

    async fn allowed(&self) -> Res<bool> {
        let body = self.send().await?;
        if count(&body, b"\"allowed\":true") == 1 {
            Ok(true)
        } else if count(&body, b"\"allowed\":false") == 1 {
            Ok(false)
        } else {
            Err(fail(format!(
                "check failed: {}",
                String::from_utf8_lossy(&body)
            )))
        }
    }

    /// Whether the credential is refused (UNAUTHENTICATED) rather than answered.
    async fn refused(&self) -> Res<bool> {
        let body = self.send().await?;
        Ok(count(&body, b"\"UNAUTHENTICATED\"") == 1)
    }

    /// Checks in a tight loop until the answer is `want`: when it came and how many checks it
    /// took; `None` after 5 s.
    async fn until(&self, want: bool) -> Res<Option<(Instant, u32)>> {
        let start = Instant::now();
        let mut checks = 0;
        while start.elapsed() < Duration::from_secs(5) {
            let answer = self.allowed().await?;
            checks += 1;
            if answer == want {
                return Ok(Some((Instant::now(), checks)));
            }
        }
        Ok(None)
    }
}

#[derive(Default)]
struct Propagation {
    from_return: Vec<u64>,
    from_send: Vec<u64>,
    checks: Vec<u64>,
    grant_seen: Vec<u64>,
    first_check: usize,
    timeouts: usize,
    took: Duration,
}

async fn propagation(db: Arc<Db>, args: &Args, loadgen: &Handle) -> Res<()> {
    let redis = redis_url();
    let a = Gateway::start(&db.url(), Some(&redis)).await?;
    let b = Gateway::start(&db.url(), Some(&redis)).await?;
    let o = Org::create(&Api::new(a.server.addr)?).await?;
    let org = o.clone();
    a.trusted().await?;
    b.trusted().await?;
    let (counters, cpu) = (Counters::read(&b.state), Cpu::now());
    let lag = &b.state.services.metrics.propagation_lag;
    let (lag_sum, lag_count) = (lag.get_sample_sum(), lag.get_sample_count());
    let (a_addr, b_url) = (a.server.addr, b.server.url());
    let (n, bound) = (args.revocations, Duration::from_secs_f64(args.max_seconds));
    // The loop runs on the load generator's runtime, as a client of both instances.
    let p = loadgen
        .spawn(async move {
            let api = Api::new(a_addr)?;
            let on_b = Probe::new(b_url, &o.member, &o.ws)?;
            let mut p = Propagation::default();
            let start = Instant::now();
            while p.from_return.len() + p.timeouts < n && start.elapsed() < bound {
                let granted = Instant::now();
                let binding = api.grant(&o.admin, &o.member_id, VIEWER, &o.ws).await?;
                // B caches an allow: its answer comes from facts it loaded after the grant.
                match on_b.until(true).await? {
                    Some((at, _)) => p.grant_seen.push(nanos(at - granted)),
                    None => return Err(fail("B never allowed after a grant")),
                }
                // ...and answers the next check from its cache (counted as an L1 hit).
                if !on_b.allowed().await? {
                    return Err(fail("B denied right after allowing"));
                }
                let sent = Instant::now();
                api.revoke(&o.admin, &binding).await?;
                let returned = Instant::now();
                match on_b.until(false).await? {
                    Some((denied, checks)) => {
                        p.from_return.push(nanos(denied - returned));
                        p.from_send.push(nanos(denied - sent));
                        p.checks.push(u64::from(checks));
                        p.first_check += usize::from(checks == 1);
                    }
                    None => p.timeouts += 1,
                }
            }
            p.took = start.elapsed();
            Ok::<_, BoxError>(p)
        })
        .await??;
    let counters = Counters::read(&b.state).since(counters);
    let cpu = Cpu::now().since(cpu);
    let lag_n = lag.get_sample_count().saturating_sub(lag_count);
    let lag_mean = (lag.get_sample_sum() - lag_sum) / (lag_n.max(1) as f64);

    println!(
        "\n## propagation: {} revocations in {:.1} s ({} timed out after 5 s)\n",
        p.from_return.len(),
        p.took.as_secs_f64(),
        p.timeouts
    );
    println!(
        "two instances over {}; Redis {redis}; each round: grant on A, check on B until it allows and once more (from its cache), revoke on A, check on B in a tight loop until it denies\n",
        db.describe()
    );
    println!("| interval | n | p50 | p90 | p99 | max | mean |\n|---|---|---|---|---|---|---|");
    let rows = [
        ("revoke returned on A → first deny on B", &p.from_return),
        ("revoke sent to A → first deny on B", &p.from_send),
        ("grant sent to A → first allow on B", &p.grant_seen),
    ];
    for (name, v) in rows {
        let s = Stats::of(v);
        println!("| {name} | {} | {} |", s.n, s.cells());
    }
    let checks = Stats::of(&p.checks);
    println!(
        "\nchecks on B until the deny: p50 {}, p99 {}, max {}; the first check after the revoke returned already denied in {} of {}",
        checks.p50,
        checks.p99,
        checks.max,
        p.first_check,
        p.from_return.len()
    );
    println!(
        "B during the run: {}; commit on A → event on B (iam_propagation_lag_seconds): mean {} over {lag_n} events",
        counters.describe(),
        t(nanos(Duration::from_secs_f64(lag_mean.max(0.0))))
    );
    println!("\n{CPU_HEADER}\n{}", cpu.row("propagation"));
    key_revocations(&org, a.server.addr, b.server.url(), args, loadgen).await?;
    a.server.stop().await;
    b.server.stop().await;
    Ok(())
}

/// API keys revoked on A, each used on B first (B caches it): how long after `revokeApiKey`
/// returned B first refuses the key.
async fn key_revocations(
    o: &Org,
    a_addr: SocketAddr,
    b_url: String,
    args: &Args,
    loadgen: &Handle,
) -> Res<()> {
    let n = (args.revocations / 5).max(20);
    let (member, org, ws) = (o.member.clone(), o.org.clone(), o.ws.clone());
    let (from_return, timeouts) = loadgen
        .spawn(async move {
            let api = Api::new(a_addr)?;
            let expires = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
            let (mut from_return, mut timeouts) = (Vec::with_capacity(n), 0usize);
            for _ in 0..n {
                let created = api
                    .gql(
                        Some(&member),
                        "mutation($o: ID!, $e: DateTime!) { createApiKey(input: {organizationId: $o, name: \"p\", expiresAt: $e}) { secret apiKey { id } } }",
                        json!({ "o": org, "e": expires }),
                    )
                    .await?;
                let secret = created["data"]["createApiKey"]["secret"].as_str().unwrap_or_default();
                let id = created["data"]["createApiKey"]["apiKey"]["id"].as_str().unwrap_or_default();
                let probe = Probe::new(b_url.clone(), secret, &ws)?;
                if probe.refused().await? {
                    return Err(fail("B refused a new key"));
                }
                api.gql(
                    Some(&member),
                    "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { state } } }",
                    json!({ "id": id }),
                )
                .await?;
                let returned = Instant::now();
                loop {
                    if probe.refused().await? {
                        from_return.push(nanos(returned.elapsed()));
                        break;
                    }
                    if returned.elapsed() > Duration::from_secs(5) {
                        timeouts += 1;
                        break;
                    }
                }
            }
            Ok::<_, BoxError>((from_return, timeouts))
        })
        .await??;
    println!(
        "\n### API keys: {} revoked on A, each used on B first ({timeouts} not refused within 5 s)\n",
        from_return.len()
    );
    println!("| interval | n | p50 | p90 | p99 | max | mean |\n|---|---|---|---|---|---|---|");
    let s = Stats::of(&from_return);
    println!(
        "| `revokeApiKey` returned on A → first refusal on B | {} | {} |",
        s.n,
        s.cells()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. cold checks on PostgreSQL

/// A member of the organization with one binding (Developer at the workspace).
struct Member {
    token: String,
}

/// Creates a member: the account and its session through the library (one password hash
/// for all, instead of an argon2 hash per sign-up), the invitation, its acceptance and the
/// grant through the API.
/// Member `i` of the `cold` run: holds Developer at the workspace; every other pair of members
/// (`i / 2` odd) is also in each of `teams`.
async fn member(
    gateway: &Gateway,
    api: &Api,
    o: &Org,
    phc: &str,
    i: usize,
    teams: &[String],
) -> Res<Member> {
    let services = &gateway.state.services;
    let email = Email::parse("email", &format!("m{i}@{}.example.com", &o.org[..8]))
        .map_err(|e| fail(e.message))?;
    let name = Name::parse("name", "Member").map_err(|e| fail(e.message))?;
    let user = services
        .store()
        .create_user(&email, &name, phc.to_owned(), None, &Actor::default())
        .await
        .map_err(|e| fail(format!("{e:?}")))?;
    let user_id = user.id.to_string();
    let signed_in = services
        .auth
        .open_session(user, "password", "auth.sign_in", &Actor::default())
        .await
        .map_err(|e| fail(format!("{e:?}")))?;
    api.join(&o.admin, &o.org, email.as_str(), &signed_in.token)
        .await?;
    api.grant(&o.admin, &user_id, DEVELOPER, &o.ws).await?;
    if (i / 2) % 2 == 1 {
        for team in teams {
            api.add_team_member(&o.admin, team, &user_id).await?;
        }
    }
    Ok(Member {
        token: signed_in.token,
    })
}

#[derive(Default)]
/// Per group: instance with Redis / without, member without teams / in three teams.
struct Cold {
    cold: [Vec<u64>; 4],
    warm: [Vec<u64>; 4],
    took: Duration,
}

async fn cold(db: Arc<Db>, args: &Args, loadgen: &Handle) -> Res<()> {
    const WARMUP: usize = 200;
    let redis = redis_url();
    let with_redis = Gateway::start(&db.url(), Some(&redis)).await?;
    let without = Gateway::start(&db.url(), None).await?;
    with_redis.trusted().await?;
    let api = Api::new(with_redis.server.addr)?;
    let o = Org::create(&api).await?;
    let phc = iam_gateway::auth::password::hash(PASSWORD.to_owned())
        .await
        .map_err(|e| fail(e.to_string()))?;
    // Three teams, each holding a role at a node: half the members are in all three.
    let mut teams = Vec::new();
    for (i, (role, node)) in [(VIEWER, &o.org), (OPERATOR, &o.ws), (VIEWER, &o.project)]
        .into_iter()
        .enumerate()
    {
        let team = api
            .create_team(&o.admin, &o.org, &format!("team-{i}"))
            .await?;
        api.grant(&o.admin, &team, role, node).await?;
        teams.push(team);
    }
    let total = WARMUP + 4 * args.members;
    let made = Instant::now();
    let results: Vec<Res<Member>> = futures::stream::iter(0..total)
        .map(|i| member(&with_redis, &api, &o, &phc, i, &teams))
        .buffered(4)
        .collect()
        .await;
    let members: Vec<Member> = results.into_iter().collect::<Res<_>>()?;
    println!(
        "\n(cold: {total} members made in {:.1} s)",
        made.elapsed().as_secs_f64()
    );

    let instances = [&with_redis, &without];
    let before = instances.map(|g| Counters::read(&g.state));
    let cpu = Cpu::now();
    let urls = instances.map(|g| g.server.url());
    let (project, bound) = (o.project.clone(), Duration::from_secs_f64(args.max_seconds));
    // One request at a time, from the load generator's runtime: each member's first check (cold)
    // and, at once, their second (warm), alternating between the two instances. The first
    // WARMUP members are not counted: they warm the pools and the prepared statements.
    let c = loadgen
        .spawn(async move {
            let mut c = Cold::default();
            let probes = urls.map(|url| Probe::new(url, "", &project));
            let [Ok(r), Ok(n)] = probes else {
                return Err(fail("no client"));
            };
            let mut probes = [r, n];
            let me = leak(&json!({ "query": "{ me { id } }" }));
            let start = Instant::now();
            for (i, m) in members.iter().enumerate() {
                if start.elapsed() > bound {
                    break;
                }
                let which = i % 2;
                let probe = &mut probes[which];
                probe.token.clone_from(&m.token);
                // The session is loaded (not timed): only the facts are cold below.
                let resp = probe
                    .client
                    .post(&probe.url)
                    .header(CONTENT_TYPE, "application/json")
                    .bearer_auth(&probe.token)
                    .body(me)
                    .send()
                    .await?;
                resp.bytes().await?;
                let sent = Instant::now();
                let cold_allowed = probe.allowed().await?;
                let cold = nanos(sent.elapsed());
                let sent = Instant::now();
                let warm_allowed = probe.allowed().await?;
                let warm = nanos(sent.elapsed());
                if !(cold_allowed && warm_allowed) {
                    return Err(fail("a member with Developer at the workspace was denied"));
                }
                if i >= WARMUP {
                    let group = which + 2 * ((i / 2) % 2);
                    c.cold[group].push(cold);
                    c.warm[group].push(warm);
                }
            }
            c.took = start.elapsed();
            Ok::<_, BoxError>(c)
        })
        .await??;
    let cpu = Cpu::now().since(cpu);

    println!(
        "\n## cold: {} principals per instance and group, each checked once cold and once at once after (warm), one request at a time, in {:.1} s\n",
        c.cold[0].len(),
        c.took.as_secs_f64()
    );
    println!(
        "{}; latency measured at the HTTP client (request sent → whole answer read); `check` of `apps:read` at a project, the member holding Developer at its workspace; the member's session was loaded by an untimed `{{ me {{ id }} }}` just before\n",
        db.describe()
    );
    println!("| check | n | p50 | p90 | p99 | max | mean |\n|---|---|---|---|---|---|---|");
    let rows = [
        (
            "cold, Redis configured (L2 miss → PostgreSQL → L2 write)",
            &c.cold[0],
        ),
        ("cold, no Redis (L1 miss → PostgreSQL)", &c.cold[1]),
        ("cold, Redis configured, member in 3 teams", &c.cold[2]),
        ("cold, no Redis, member in 3 teams", &c.cold[3]),
        ("warm repeat, Redis configured (L1 hit)", &c.warm[0]),
        ("warm repeat, no Redis (L1 hit)", &c.warm[1]),
        (
            "warm repeat, Redis configured, member in 3 teams",
            &c.warm[2],
        ),
        ("warm repeat, no Redis, member in 3 teams", &c.warm[3]),
    ];
    for (name, v) in rows {
        let s = Stats::of(v);
        println!("| {name} | {} | {} |", s.n, s.cells());
    }
    let median = |v: &Vec<u64>| Stats::of(v).p50 as f64;
    println!(
        "\ncold, in 3 teams ÷ without, p50: {:.2} with Redis, {:.2} without",
        median(&c.cold[2]) / median(&c.cold[0]).max(1.0),
        median(&c.cold[3]) / median(&c.cold[1]).max(1.0)
    );
    println!();
    for (name, (g, before)) in ["with Redis", "without Redis"]
        .iter()
        .zip(instances.iter().zip(before))
    {
        println!(
            "instance {name} (warm-up members included): {}",
            Counters::read(&g.state).since(before).describe()
        );
    }
    println!("\n{CPU_HEADER}\n{}", cpu.row("cold checks"));
    with_redis.server.stop().await;
    without.server.stop().await;
    Ok(())
}
