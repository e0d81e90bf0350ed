//! Check latency at scale, on PostgreSQL: a small data set (1 organization, 2,000 members,
//! 10,000 bindings) next to a large one (100 organizations, 100,000 users each a member of two,
//! 1,000,000 bindings), measured in the same run, in alternating slices. Since issue 14 every
//! member is also in 3 of their organization's 20 teams, each team holding 2 bindings, so a
//! member's facts hold 5 bindings of their own and 6 through teams (`workload::teams`).
//!
//! ```text
//! IAM_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench scale
//! ```
//!
//! `-- --help` lists the flags. Each data set gets a scratch database created next to the one
//! named (and dropped at the end), migrated by the gateway (`AppState::init`), then filled by
//! a few set-based `INSERT … SELECT … FROM generate_series(…)` statements that follow the
//! formulas of `casbin-peer/src/workload.rs` (shared with the casbin-rs peer). Every row read
//! back is compared with those formulas, and every decision with an answer computed from the
//! formulas and the built-in roles' policy texts alone: a mismatch aborts the bench.
//!
//! What is timed, per check (a project, a pair of the catalog, one member):
//! - cold: `Store::principal_facts` (one statement) + compiling the roles + `decide`: what a
//!   cache miss costs;
//! - warm: the node-path cache + the facts cache (`FactsCache::facts`, an L1 hit) + `decide`:
//!   what a `check` resolver does when everything is cached; the L1 holds 95,000 principals in
//!   the large set and all 2,000 in the small one;
//! - engine: `decide` alone, the facts and the path in hand;
//! - served: the same warm checks as `check` queries, handed to the gateway's router in process
//!   (`tower::ServiceExt::oneshot`, no sockets): the member's own session (a bearer token made
//!   for the bench and cached like any session), the GraphQL request, the caches and the
//!   decision, read back from the JSON answer. This is the check latency a caller sees, less
//!   the network.
//!
//! It also prints how many blocks PostgreSQL read from outside its shared buffers during the
//! cold checks (from `pg_statio_user_tables`, read 11 s after each burst so that the server has
//! published its counts) and the resident memory the filled caches take. A run takes about a
//! minute and a half. Results and the commands that produced them are in BENCHMARKS.md.

#![allow(clippy::disallowed_methods)]

#[path = "casbin-peer/src/report.rs"]
mod report;
#[path = "casbin-peer/src/workload.rs"]
mod workload;
// Its synchronous remove is for the tests' Drop.
#[allow(dead_code)]
#[path = "../tests/common/scratch.rs"]
mod scratch;

use std::error::Error;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use iam_gateway::app::AppState;
use iam_gateway::authz::{
    Catalog, Check, CompiledRoles, Decision, Facts, builtin_policies, decide,
};
use iam_gateway::config::Config;
use iam_gateway::store::{PrincipalFacts, Store, StoreError};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use uuid::Uuid;

use report::{Stats, machine, mib, nanos, rss, slice_of, t, thousands, timer_overhead, turns};
use scratch::ScratchDb;
use workload::{
    BINDINGS_PER_MEMBERSHIP, CheckSpec, Expiry, Kind, LARGE, ROLES, Rng, SMALL, Shape, teams,
};

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

fn fail(message: impl Into<String>) -> BoxError {
    message.into().into()
}

fn store_err(e: StoreError) -> BoxError {
    fail(format!("store: {e:?}"))
}

const USAGE: &str = "\
usage: IAM_BENCH_DATABASE_URL=postgres://... cargo bench --bench scale -- [flags]
  --sample N   principals timed cold, each once, per data set (default 2000)
  --warm N     warm checks per data set (default 20000)
  --fill N     principals the large set's L1 holds during the warm checks (default 95000)
  --seed N     seed of the samples (default 1)";

struct Args {
    sample: usize,
    warm: usize,
    fill: u64,
    seed: u64,
}

impl Args {
    fn parse() -> Res<Option<Self>> {
        let mut a = Self {
            sample: 2000,
            warm: 20_000,
            fill: 95_000,
            seed: 1,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                // cargo bench passes `--bench` to every bench binary.
                "--bench" => {}
                "--sample" => a.sample = value::<usize>(&mut it, &arg)?.max(10),
                "--warm" => a.warm = value::<usize>(&mut it, &arg)?.max(10),
                "--fill" => a.fill = value(&mut it, &arg)?,
                "--seed" => a.seed = value(&mut it, &arg)?,
                "--help" | "-h" => return Ok(None),
                other => return Err(fail(format!("unknown argument `{other}`\n{USAGE}"))),
            }
        }
        Ok(Some(a))
    }
}

fn value<T: FromStr>(it: &mut impl Iterator<Item = String>, flag: &str) -> Res<T> {
    it.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| fail(format!("{flag} needs a number")))
}

fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> Res<()> {
    let Some(args) = Args::parse()? else {
        println!("{USAGE}");
        return Ok(());
    };
    let base = std::env::var("IAM_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .ok_or_else(|| {
            fail(format!(
                "IAM_BENCH_DATABASE_URL must name a PostgreSQL server\n{USAGE}"
            ))
        })?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(base, args))
}

async fn run(base: String, args: Args) -> Res<()> {
    println!("scale bench: {}", machine());
    println!(
        "timing itself costs {} per measurement (Instant::now → elapsed, median)",
        t(timer_overhead())
    );
    let engine = Engine::new()?;
    let small = ScratchDb::create(&base, "iam_bench").await.map_err(fail)?;
    let outcome = match ScratchDb::create(&base, "iam_bench").await {
        Ok(large) => {
            let outcome = measure(&engine, &small, &large, &args).await;
            remove(&large).await;
            outcome
        }
        Err(e) => Err(fail(e)),
    };
    remove(&small).await;
    println!("\nat the end: {}", machine());
    outcome
}

async fn remove(db: &ScratchDb) {
    if let Err(e) = db.remove().await {
        eprintln!("could not drop the scratch database {}: {e}", db.name);
    }
}

// ---------------------------------------------------------------------------------------------
// The engine, driven as the `check` resolver drives it

/// The gateway's catalog and compiled built-in roles (`Authz`), and the expected answers.
struct Engine {
    authz: iam_gateway::authz::Authz,
    /// The catalog's (type, action) pairs by index, by name.
    pairs: Vec<(String, String)>,
    /// `allows[role][pair]`, read from the built-in roles' policy texts (see
    /// `workload::text_allows`), not through the engine.
    allows: Vec<Vec<bool>>,
}

impl Engine {
    fn new() -> Res<Self> {
        let catalog = Catalog::builtin();
        let pairs: Vec<(String, String)> = catalog
            .pairs()
            .into_iter()
            .map(|(t, a)| {
                (
                    catalog.type_name(t).to_owned(),
                    catalog.action_name(a).to_owned(),
                )
            })
            .collect();
        let mut allows = Vec::new();
        for (i, (key, id)) in ROLES.iter().enumerate() {
            // The shared workload names the built-in roles by id: they must be the seeded ones.
            match migration::seed::BUILTIN_ROLES.get(i) {
                Some((seed_id, seed_key, ..)) if seed_id == id && seed_key == key => {}
                _ => return Err(fail(format!("built-in role {i} is not `{key}` = {id}"))),
            }
            let policies = builtin_policies(key).ok_or_else(|| fail(format!("no role {key}")))?;
            let texts: Vec<String> = policies.into_iter().map(|p| p.permission).collect();
            let row = pairs
                .iter()
                .map(|(t, a)| {
                    workload::text_allows(&texts, t, a)
                        .ok_or_else(|| fail(format!("{key} has a policy the oracle cannot read")))
                })
                .collect::<Res<Vec<bool>>>()?;
            allows.push(row);
        }
        Ok(Self {
            authz: iam_gateway::app::authz_for(
                Arc::new(iam_gateway::authz::Profile::mechamental()),
            )
            .map_err(fail)?,
            pairs,
            allows,
        })
    }

    /// The facts' roles compiled, as the `check` resolver has them compiled.
    fn compile(&self, facts: &PrincipalFacts) -> Arc<CompiledRoles> {
        self.authz.compile(facts.custom_roles_to_compile())
    }

    /// One check as the resolver makes it: the pair resolved from its names, now.
    fn decide(
        &self,
        facts: &PrincipalFacts,
        compiled: &CompiledRoles,
        path: &[Uuid],
        pair: usize,
    ) -> Res<Decision> {
        let (t, a) = self
            .pairs
            .get(pair)
            .ok_or_else(|| fail(format!("no pair {pair}")))?;
        let (resource_type, action) = self
            .authz
            .catalog
            .resolve(t, a)
            .map_err(|e| fail(e.to_string()))?;
        Ok(decide(
            &Facts {
                principal_active: facts.active && !compiled.broken,
                scopes: None,
                bindings: &facts.bindings,
                roles: &compiled.roles,
            },
            &Check {
                resource_type,
                resource_type_name: self.authz.catalog.type_name(resource_type),
                action,
                path,
                resource_id: None,
                now: Utc::now(),
            },
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Data sets

/// How long after a burst of queries the server's statistics include it (PostgreSQL 15
/// flushes a backend's pending counts within 10 s of it going idle).
const STATS_DELAY: Duration = Duration::from_secs(11);

/// One data set in its scratch database, with a gateway's services over it.
struct Set {
    shape: Shape,
    state: AppState,
    /// One connection for the bench's own SQL (seeding, counts, buffer statistics).
    sql: DatabaseConnection,
    seeded: Duration,
    vacuumed: Duration,
    bindings_bytes: i64,
    database_bytes: i64,
    shared_buffers: String,
}

impl Set {
    async fn open(shape: Shape, db: &ScratchDb) -> Res<Self> {
        if !shape.valid() {
            return Err(fail(format!("data set {} is not valid", shape.name)));
        }
        let state = AppState::init(Config {
            database_url: db.url.clone(),
            ..Config::default()
        })
        .await?;
        let mut options = ConnectOptions::new(db.url.clone());
        options.max_connections(1).sqlx_logging(false);
        let sql = Database::connect(options).await?;
        let started = Instant::now();
        for (table, statement) in seed_statements(&shape) {
            sql.execute_unprepared(&statement)
                .await
                .map_err(|e| fail(format!("seeding {table}: {e}")))?;
        }
        let seeded = started.elapsed();
        let started = Instant::now();
        // As autovacuum would have done on a database in service: statistics for the planner,
        // hint bits and the visibility map set.
        sql.execute_unprepared("VACUUM (ANALYZE)").await?;
        let vacuumed = started.elapsed();
        let (bindings_bytes, database_bytes, shared_buffers) = check_counts(&sql, &shape).await?;
        Ok(Self {
            shape,
            state,
            sql,
            seeded,
            vacuumed,
            bindings_bytes,
            database_bytes,
            shared_buffers,
        })
    }

    fn store(&self) -> &Store {
        self.state.services.store()
    }

    /// Blocks of this database's tables and indexes found in PostgreSQL's shared buffers, and
    /// read from outside them (the OS page cache or the disk), so far. A backend publishes its
    /// counts within 10 s of going idle: call after [`STATS_DELAY`].
    async fn blocks(&self) -> Res<(i64, i64)> {
        let row = self
            .sql
            .query_one_raw(Statement::from_string(
                self.sql.get_database_backend(),
                "SELECT (sum(heap_blks_hit) + sum(coalesce(idx_blks_hit, 0)))::bigint AS hit, \
                        (sum(heap_blks_read) + sum(coalesce(idx_blks_read, 0)))::bigint AS read \
                 FROM pg_statio_user_tables",
            ))
            .await?
            .ok_or_else(|| fail("no buffer statistics"))?;
        Ok((row.try_get("", "hit")?, row.try_get("", "read")?))
    }

    fn principal(&self, s: u64) -> (Uuid, Uuid) {
        let shape = &self.shape;
        (
            shape.org_id(shape.org_of(s)),
            shape.user_id(shape.user_of(s)),
        )
    }
}

/// The SQL of `Shape::binding` (in `workload.rs`), for membership `s` (with `h` its mix and `o`
/// its organization) and binding `j`.
fn binding_columns(shape: &Shape) -> String {
    let (w, p, m) = (shape.workspaces, shape.projects, shape.orgs_per_user);
    let ws = format!("o * {w} + (h + 7 * j) % {w}");
    let role_ids: String = ROLES
        .iter()
        .enumerate()
        .map(|(i, (_, id))| format!(" WHEN {i} THEN '{id}'::uuid"))
        .collect();
    format!(
        "{binding}, {org}, CASE WHEN j >= 1 THEN {workspace} END, \
         CASE WHEN j >= 3 THEN {project} END, 'user', {user}, \
         CASE (CASE WHEN j = 0 THEN 1 + (h / 100) % 3 ELSE (h / 100 + j) % 4 END){role_ids} END, \
         NULL, now(), \
         CASE WHEN j = 4 AND (h / 1000) % 5 = 0 THEN now() - interval '1 day' \
              WHEN j = 2 AND (h / 1000) % 5 = 1 THEN now() + interval '30 days' END, 'manual'",
        binding = Kind::Binding.sql(&format!("s * {BINDINGS_PER_MEMBERSHIP} + j")),
        org = Kind::Org.sql("o"),
        workspace = Kind::Workspace.sql(&ws),
        project = Kind::Project.sql(&format!("({ws}) * {p} + (h / {w} + 3 * j) % {p}")),
        user = Kind::User.sql(&format!("s / {m}")),
    )
}

/// A handful of set-based statements that write the whole data set.
fn seed_statements(shape: &Shape) -> Vec<(&'static str, String)> {
    let (o, w, p, m) = (
        shape.orgs,
        shape.workspaces,
        shape.projects,
        shape.orgs_per_user,
    );
    let org_of_s = format!("((s / {m}) + (s % {m}) * {}) % {o}", workload::ORG_STRIDE);
    let series = |name: &str, n: u64| format!("generate_series(0::bigint, {}) AS {name}", n - 1);
    vec![
        (
            "organizations",
            format!(
                "INSERT INTO organizations (id, slug, name, revision, created_by, created_at, updated_at) \
                 SELECT {}, 'org-' || o, 'Organization ' || o, 1, NULL, now(), now() FROM {}",
                Kind::Org.sql("o"),
                series("o", o)
            ),
        ),
        (
            "workspaces",
            format!(
                "INSERT INTO workspaces (id, organization_id, slug, name, created_at, updated_at) \
                 SELECT {}, {}, 'ws-' || w, 'Workspace ' || w, now(), now() FROM {}, {}",
                Kind::Workspace.sql(&format!("o * {w} + w")),
                Kind::Org.sql("o"),
                series("o", o),
                series("w", w)
            ),
        ),
        (
            "projects",
            format!(
                "INSERT INTO projects (id, organization_id, workspace_id, slug, name, created_at, updated_at) \
                 SELECT {}, {}, {}, 'project-' || p, 'Project ' || p, now(), now() FROM {}, {}, {}",
                Kind::Project.sql(&format!("(o * {w} + w) * {p} + p")),
                Kind::Org.sql("o"),
                Kind::Workspace.sql(&format!("o * {w} + w")),
                series("o", o),
                series("w", w),
                series("p", p)
            ),
        ),
        (
            "users",
            format!(
                "INSERT INTO users (id, email, name, failed_sign_ins, locked_until, deleted_at, created_at, updated_at) \
                 SELECT {}, 'user' || u || '@scale.example.com', 'User ' || u, 0, NULL, NULL, now(), now() FROM {}",
                Kind::User.sql("u"),
                series("u", shape.users)
            ),
        ),
        (
            "memberships",
            format!(
                "INSERT INTO memberships (id, organization_id, user_id, status, created_at, updated_at) \
                 SELECT {}, {}, {}, 'active', now(), now() FROM {}",
                Kind::Membership.sql("s"),
                Kind::Org.sql(&org_of_s),
                Kind::User.sql(&format!("s / {m}")),
                series("s", shape.memberships())
            ),
        ),
        (
            "role_bindings",
            // Written binding by binding across all members (`ORDER BY j, s`), so that one
            // member's five rows sit on five different pages, as bindings granted over time do.
            format!(
                "INSERT INTO role_bindings (id, organization_id, workspace_id, project_id, principal_type, \
                 principal_id, role_id, granted_by, granted_at, expires_at, source) \
                 SELECT {} FROM (SELECT s, {org_of_s} AS o, s * {} % {} AS h FROM {}) AS m, {} ORDER BY j, s",
                binding_columns(shape),
                workload::MIX_FACTOR,
                workload::MIX_MODULUS,
                series("s", shape.memberships()),
                series("j", BINDINGS_PER_MEMBERSHIP)
            ),
        ),
        // The formulas of `workload::teams`.
        (
            "teams",
            format!(
                "INSERT INTO teams (id, organization_id, name, name_key, description, created_at, updated_at) \
                 SELECT {}, {}, 'Team ' || t, 'team ' || t, NULL, now(), now() FROM {}, {}",
                Kind::Team.sql(&format!("o * {} + t", teams::PER_ORG)),
                Kind::Org.sql("o"),
                series("o", o),
                series("t", teams::PER_ORG)
            ),
        ),
        (
            "team_members",
            format!(
                "INSERT INTO team_members (id, team_id, organization_id, principal_type, principal_id, source, \
                 sso_provider_id, added_by, added_at) \
                 SELECT {}, {}, {}, 'user', {}, 'manual', NULL, NULL, now() \
                 FROM (SELECT s, {org_of_s} AS o, s * {} % {} AS h FROM {}) AS m, {}",
                Kind::TeamMember.sql(&format!("s * {} + k", teams::PER_MEMBER)),
                Kind::Team.sql(&format!(
                    "o * {n} + (h / 7 + 7 * k) % {n}",
                    n = teams::PER_ORG
                )),
                Kind::Org.sql("o"),
                Kind::User.sql(&format!("s / {m}")),
                workload::MIX_FACTOR,
                workload::MIX_MODULUS,
                series("s", shape.memberships()),
                series("k", teams::PER_MEMBER)
            ),
        ),
        (
            "role_bindings (teams)",
            format!(
                "INSERT INTO role_bindings (id, organization_id, workspace_id, project_id, principal_type, \
                 principal_id, role_id, granted_by, granted_at, expires_at, source) \
                 SELECT {id}, {org}, {ws}, CASE WHEN b = 1 THEN {project} END, 'team', {team}, \
                 CASE 1 + (t + b) % 3{role_ids} END, NULL, now(), NULL, 'manual' FROM {}, {}, {}",
                series("o", o),
                series("t", teams::PER_ORG),
                series("b", teams::BINDINGS),
                id = Kind::TeamBinding.sql(&format!(
                    "(o * {} + t) * {} + b",
                    teams::PER_ORG,
                    teams::BINDINGS
                )),
                org = Kind::Org.sql("o"),
                ws = Kind::Workspace.sql(&format!(
                    "o * {w} + CASE WHEN b = 0 THEN t % {w} ELSE (t * 3) % {w} END"
                )),
                project = Kind::Project.sql(&format!("(o * {w} + (t * 3) % {w}) * {p} + t % {p}")),
                team = Kind::Team.sql(&format!("o * {} + t", teams::PER_ORG)),
                role_ids = ROLES
                    .iter()
                    .enumerate()
                    .map(|(i, (_, id))| format!(" WHEN {i} THEN '{id}'::uuid"))
                    .collect::<String>(),
            ),
        ),
    ]
}

/// Checks the row counts; returns the size of `role_bindings` (table and indexes), of the
/// database, and the server's `shared_buffers`.
async fn check_counts(sql: &DatabaseConnection, shape: &Shape) -> Res<(i64, i64, String)> {
    let row = sql
        .query_one_raw(Statement::from_string(
            sql.get_database_backend(),
            "SELECT (SELECT count(*) FROM organizations) AS orgs, \
                    (SELECT count(*) FROM workspaces) AS workspaces, \
                    (SELECT count(*) FROM projects) AS projects, \
                    (SELECT count(*) FROM users) AS users, \
                    (SELECT count(*) FROM memberships WHERE status = 'active') AS memberships, \
                    (SELECT count(*) FROM role_bindings) AS bindings, \
                    (SELECT count(*) FROM team_members) AS team_members, \
                    pg_total_relation_size('role_bindings') AS bindings_bytes, \
                    pg_database_size(current_database()) AS database_bytes, \
                    current_setting('shared_buffers') AS shared_buffers",
        ))
        .await?
        .ok_or_else(|| fail("no counts"))?;
    let want = [
        ("orgs", shape.orgs),
        ("workspaces", shape.all_workspaces()),
        ("projects", shape.all_projects()),
        ("users", shape.users),
        ("memberships", shape.memberships()),
        ("bindings", shape.bindings() + teams::count(shape)),
        ("team_members", shape.memberships() * teams::PER_MEMBER),
    ];
    for (column, n) in want {
        let got: i64 = row.try_get("", column)?;
        if u64::try_from(got).ok() != Some(n) {
            return Err(fail(format!(
                "{}: {got} {column}, expected {n}",
                shape.name
            )));
        }
    }
    Ok((
        row.try_get("", "bindings_bytes")?,
        row.try_get("", "database_bytes")?,
        row.try_get("", "shared_buffers")?,
    ))
}

/// The facts read back must be exactly the formulas' (`workload.rs`).
fn verify_facts(shape: &Shape, s: u64, facts: &PrincipalFacts) -> Res<()> {
    let now = Utc::now();
    // Own bindings, then the teams' (their ids sort after): the order the facts statement
    // reads them in.
    let expected: Vec<_> = shape
        .bindings_of(s)
        .map(|b| (Kind::Binding, b, None))
        .chain(
            teams::bindings_of(shape, s)
                .into_iter()
                .map(|b| (Kind::TeamBinding, b, Some(b.index / teams::BINDINGS))),
        )
        .collect();
    let mut want_teams: Vec<Uuid> = (0..teams::PER_MEMBER)
        .map(|k| Kind::Team.id(teams::team_of(shape, s, k)))
        .collect();
    want_teams.sort_unstable();
    let fits = facts.teams == want_teams
        && facts.active
        && facts.member
        && facts.custom_roles.is_empty()
        && facts.revision == 1
        && facts.organization_id == shape.org_id(shape.org_of(s))
        && facts.principal_id == shape.user_id(shape.user_of(s))
        && facts.bindings.len() == expected.len()
        && facts
            .bindings
            .iter()
            .zip(&expected)
            .all(|(got, (kind, want, team))| {
                let expiry = match got.expires_at {
                    None => Expiry::Never,
                    Some(at) if at <= now => Expiry::Past,
                    Some(_) => Expiry::Future,
                };
                got.id == kind.id(want.index)
                    && got.team == (*team).map(|g| Kind::Team.id(g))
                    && ROLES
                        .get(want.role)
                        .is_some_and(|(_, id)| *id == got.role_id)
                    && got.node_id == shape.node_id(want)
                    && expiry == want.expiry
            });
    if fits {
        Ok(())
    } else {
        Err(fail(format!(
            "{}: the facts of membership {s} are not the seeded ones: {facts:?}",
            shape.name
        )))
    }
}

/// A decision must be the one the formulas give.
fn verify_decision(engine: &Engine, shape: &Shape, c: &CheckSpec, allowed: bool) -> Res<()> {
    let want = shape.expected(c, &engine.allows)
        || teams::bindings_of(shape, c.membership)
            .iter()
            .any(|b| Shape::allows(b, c, &engine.allows));
    if allowed == want {
        Ok(())
    } else {
        Err(fail(format!(
            "{}: wrong answer for {c:?} ({:?}): {allowed}, expected {want}",
            shape.name,
            engine.pairs.get(c.pair)
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// The measurement

/// The paths timed, in the order of the tables.
const PATHS: [&str; 4] = [
    "cold: `principal_facts` (PostgreSQL) + compile + decide",
    "warm: node path L1 + facts L1 + decide",
    "engine: decide, facts in hand",
    "served: the `check` query through the router (session, GraphQL, caches, decide)",
];

/// Per path: each check's latency, and how many were allowed.
#[derive(Default)]
struct Timings {
    latency: [Vec<u64>; 4],
    allowed: [usize; 4],
}

impl Timings {
    fn record(&mut self, path: usize, took: Duration, allowed: bool) {
        if let (Some(v), Some(n)) = (self.latency.get_mut(path), self.allowed.get_mut(path)) {
            v.push(nanos(took));
            *n += usize::from(allowed);
        }
    }
}

async fn measure(
    engine: &Engine,
    small_db: &ScratchDb,
    large_db: &ScratchDb,
    args: &Args,
) -> Res<()> {
    let small = Set::open(SMALL, small_db).await?;
    let large = Set::open(LARGE, large_db).await?;
    let sets = [&small, &large];
    print_sets(&sets);
    let mut rng = Rng::new(args.seed);
    let mut timings = [Timings::default(), Timings::default()];
    cold(engine, &sets, args, &mut rng, &mut timings).await?;
    let checks = warm(engine, &sets, args, &mut rng, &mut timings).await?;
    engine_alone(engine, &sets, &checks, &mut timings).await?;
    served(engine, &sets, &checks, &mut timings).await?;
    print_results(&timings);
    Ok(())
}

/// Cold: each sampled principal once, straight from the store. The pools and the prepared
/// statement are warmed first with 200 principals (untimed).
async fn cold(
    engine: &Engine,
    sets: &[&Set; 2],
    args: &Args,
    rng: &mut Rng,
    timings: &mut [Timings; 2],
) -> Res<()> {
    let samples: Vec<Vec<CheckSpec>> = sets
        .iter()
        .map(|set| {
            workload::sample(&set.shape, args.sample, rng)
                .into_iter()
                .map(|s| set.shape.check(s, engine.pairs.len(), rng))
                .collect()
        })
        .collect();
    for set in sets {
        for s in workload::sample(&set.shape, 200, rng) {
            let (org, user) = set.principal(s);
            set.store()
                .principal_facts(org, user)
                .await
                .map_err(store_err)?;
        }
    }
    tokio::time::sleep(STATS_DELAY).await;
    let mut blocks = Vec::new();
    for set in sets {
        blocks.push(set.blocks().await?);
    }
    let (started, slices) = (Instant::now(), 4);
    for (slice, i) in turns(slices) {
        let set = sets[i];
        for c in slice_of(&samples[i], slice, slices) {
            let (org, user) = set.principal(c.membership);
            let path = set.shape.path(c);
            let began = Instant::now();
            let facts = set
                .store()
                .principal_facts(org, user)
                .await
                .map_err(store_err)?
                .ok_or_else(|| fail("no such organization"))?;
            let compiled = engine.compile(&facts);
            let allowed = engine.decide(&facts, &compiled, &path, c.pair)?.allowed;
            timings[i].record(0, began.elapsed(), allowed);
            verify_facts(&set.shape, c.membership, &facts)?;
            verify_decision(engine, &set.shape, c, allowed)?;
        }
    }
    println!(
        "\n(cold: {} principals per data set in {:.1} s)",
        args.sample,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(STATS_DELAY).await;
    for (set, (hit, read)) in sets.iter().zip(blocks) {
        let (hit_now, read_now) = set.blocks().await?;
        let (hit, read) = (hit_now - hit, read_now - read);
        println!(
            "({}: during the cold checks, {} blocks found in shared_buffers, {} read from outside them: {:.1} per check, {:.0}% of block accesses)",
            set.shape.name,
            thousands(hit as f64),
            thousands(read as f64),
            read as f64 / args.sample.max(1) as f64,
            100.0 * read as f64 / (hit + read).max(1) as f64
        );
    }
    Ok(())
}

/// Warm: fills each set's L1 and node cache, then checks random principals of those filled.
/// The L1 keeps an entry 300 s at most, so the fill comes right before the checks; a check
/// that missed a cache aborts the measurement. Returns the checks, for `engine_alone`.
async fn warm(
    engine: &Engine,
    sets: &[&Set; 2],
    args: &Args,
    rng: &mut Rng,
    timings: &mut [Timings; 2],
) -> Res<Vec<Vec<CheckSpec>>> {
    let mut checks = Vec::new();
    for set in sets {
        let n = usize::try_from(args.fill.min(set.shape.memberships())).unwrap_or(usize::MAX);
        let members = workload::sample(&set.shape, n, rng);
        let started = Instant::now();
        let memory = fill(engine, set, &members).await?;
        println!(
            "({}: L1 filled with {} principals' facts and node cache with {} projects in {:.1} s; resident memory {} → {} after the facts → {} after compiling their roles)",
            set.shape.name,
            thousands(members.len() as f64),
            thousands(set.shape.all_projects() as f64),
            started.elapsed().as_secs_f64(),
            mib(memory[0]),
            mib(memory[1]),
            mib(memory[2]),
        );
        let set_checks: Vec<CheckSpec> = (0..args.warm)
            .map(|_| {
                let pick = rng.below(members.len() as u64) as usize;
                let s = members.get(pick).copied().unwrap_or(0);
                set.shape.check(s, engine.pairs.len(), rng)
            })
            .collect();
        checks.push(set_checks);
    }
    let before: Vec<Counters> = sets.iter().map(|s| Counters::read(&s.state)).collect();
    let slices = 10;
    for (slice, i) in turns(slices) {
        let set = sets[i];
        for c in slice_of(&checks[i], slice, slices) {
            let began = Instant::now();
            let allowed = warm_check(engine, set, c).await?;
            timings[i].record(1, began.elapsed(), allowed);
            verify_decision(engine, &set.shape, c, allowed)?;
        }
    }
    all_hits(sets, &before, "warm checks (rerun with a smaller --fill)")?;
    // Where the warm time goes: the node path and the facts lookups timed apart, in a second
    // pass over the same checks (all hits again).
    let mut parts: [[Vec<u64>; 2]; 2] = Default::default();
    for (slice, i) in turns(slices) {
        let set = sets[i];
        let services = &set.state.services;
        for c in slice_of(&checks[i], slice, slices) {
            let project = set.shape.project_id(c.org, c.workspace, c.project);
            let began = Instant::now();
            services
                .nodes
                .path(services.store(), project)
                .await
                .map_err(store_err)?;
            parts[i][0].push(nanos(began.elapsed()));
            let began = Instant::now();
            cached_facts(engine, set, c.membership).await?;
            parts[i][1].push(nanos(began.elapsed()));
        }
    }
    println!("\n(warm, in parts)\n");
    println!(
        "| lookup | data set | n | p50 | p90 | p99 | max | mean |\n|---|---|---|---|---|---|---|---|"
    );
    for (part, name) in ["node path L1 (moka)", "facts L1 (moka) + epochs"]
        .iter()
        .enumerate()
    {
        for (set, timings) in sets.iter().zip(&parts) {
            let stats = Stats::of(&timings[part]);
            println!(
                "| {name} | {} | {} | {} |",
                set.shape.name,
                stats.n,
                stats.cells()
            );
        }
    }
    Ok(checks)
}

const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";

/// The bearer token the bench gives `user`.
fn token_of(user: Uuid) -> String {
    format!("scale-bench-{user}")
}

/// The warm checks again, as `check` queries through the router, each by the member it is
/// about. Sessions are made in the database for those members first, and each is used once
/// (with the query) before the timing, so that the session cache and the parsed-query cache
/// hold them, as they would for callers already at work.
async fn served(
    engine: &Engine,
    sets: &[&Set; 2],
    checks: &[Vec<CheckSpec>],
    timings: &mut [Timings; 2],
) -> Res<()> {
    let mut requests = Vec::new();
    for (set, checks) in sets.iter().zip(checks) {
        let mut users: Vec<Uuid> = checks
            .iter()
            .map(|c| set.principal(c.membership).1)
            .collect();
        users.sort_unstable();
        users.dedup();
        for chunk in users.chunks(1000) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|u| {
                    format!(
                        "('{}', '{u}', '{}', 'password', now(), now(), now() + interval '1 day')",
                        Uuid::new_v4(),
                        iam_gateway::auth::token::hash(&token_of(*u))
                    )
                })
                .collect();
            set.sql
                .execute_unprepared(&format!(
                    "INSERT INTO sessions (id, user_id, token_hash, method, created_at, last_active_at, expires_at) VALUES {}",
                    rows.join(", ")
                ))
                .await?;
        }
        let router = iam_gateway::app::router(set.state.clone());
        let set_requests = checks
            .iter()
            .map(|c| {
                let (t, a) = engine
                    .pairs
                    .get(c.pair)
                    .ok_or_else(|| fail(format!("no pair {}", c.pair)))?;
                let node = set.shape.project_id(c.org, c.workspace, c.project);
                let body = serde_json::json!({
                    "query": CHECK,
                    "variables": { "i": { "resourceType": t, "action": a, "nodeId": node } },
                });
                let token = token_of(set.principal(c.membership).1);
                Ok((*c, token, serde_json::to_vec(&body)?))
            })
            .collect::<Res<Vec<_>>>()?;
        // Each member's first request: the session is read from the store and cached.
        let mut first = std::collections::HashSet::new();
        for (c, token, body) in &set_requests {
            if first.insert(token.clone()) {
                serve_check(&router, token, body, engine, &set.shape, c).await?;
            }
        }
        requests.push((router, set_requests));
    }
    let before: Vec<Counters> = sets.iter().map(|s| Counters::read(&s.state)).collect();
    let slices = 10;
    for (slice, i) in turns(slices) {
        let (router, set_requests) = &requests[i];
        for (c, token, body) in slice_of(set_requests, slice, slices) {
            let began = Instant::now();
            let allowed = serve_check(router, token, body, engine, &sets[i].shape, c).await?;
            timings[i].record(3, began.elapsed(), allowed);
        }
    }
    all_hits(sets, &before, "served checks")
}

/// One `check` request through `router`; its decision, verified against the formulas.
async fn serve_check(
    router: &axum::Router,
    token: &str,
    body: &[u8],
    engine: &Engine,
    shape: &Shape,
    c: &CheckSpec,
) -> Res<bool> {
    use tower::ServiceExt;
    let mut request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from(body.to_vec()))?;
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            50_000,
        ))));
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let answer = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    let allowed = match (status.is_success(), answer.as_ref()) {
        (true, br#"{"data":{"check":{"allowed":true}}}"#) => true,
        (true, br#"{"data":{"check":{"allowed":false}}}"#) => false,
        _ => {
            return Err(fail(format!(
                "{}: unexpected answer to {c:?} (HTTP {status}): {}",
                shape.name,
                String::from_utf8_lossy(&answer)
            )));
        }
    };
    verify_decision(engine, shape, c, allowed)?;
    Ok(allowed)
}

/// The engine alone, on the warm checks, facts and path in hand.
async fn engine_alone(
    engine: &Engine,
    sets: &[&Set; 2],
    checks: &[Vec<CheckSpec>],
    timings: &mut [Timings; 2],
) -> Res<()> {
    let mut inputs = Vec::new();
    for (set, checks) in sets.iter().zip(checks) {
        let mut set_inputs = Vec::with_capacity(checks.len());
        for c in checks {
            let (facts, compiled) = cached_facts(engine, set, c.membership).await?;
            set_inputs.push((*c, facts, compiled, set.shape.path(c)));
        }
        inputs.push(set_inputs);
    }
    let slices = 10;
    for (slice, i) in turns(slices) {
        let shape = &sets[i].shape;
        for (c, facts, compiled, path) in slice_of(&inputs[i], slice, slices) {
            let began = Instant::now();
            let allowed = engine.decide(facts, compiled, path, c.pair)?.allowed;
            timings[i].record(2, began.elapsed(), allowed);
            verify_decision(engine, shape, c, allowed)?;
        }
    }
    Ok(())
}

fn print_sets(sets: &[&Set; 2]) {
    println!("\n## Data sets\n");
    println!(
        "| data set | organizations | workspaces | projects | users | memberships | bindings | seeded in | VACUUM ANALYZE | role_bindings (table + indexes) | database |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for set in sets {
        let s = &set.shape;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} s | {:.1} s | {} | {} |",
            s.name,
            thousands(s.orgs as f64),
            thousands(s.all_workspaces() as f64),
            thousands(s.all_projects() as f64),
            thousands(s.users as f64),
            thousands(s.memberships() as f64),
            thousands((s.bindings() + teams::count(s)) as f64),
            set.seeded.as_secs_f64(),
            set.vacuumed.as_secs_f64(),
            mib(u64::try_from(set.bindings_bytes).unwrap_or(0)),
            mib(u64::try_from(set.database_bytes).unwrap_or(0)),
        );
    }
    println!(
        "\nPostgreSQL shared_buffers: {}; {}",
        sets[0].shared_buffers,
        machine()
    );
}

/// What a warm `check` does once the request is parsed: the node's path, the facts, the
/// compiled roles (made by the first check of these facts), the decision.
async fn warm_check(engine: &Engine, set: &Set, c: &CheckSpec) -> Res<bool> {
    let services = &set.state.services;
    let shape = &set.shape;
    let project = shape.project_id(c.org, c.workspace, c.project);
    let path = services
        .nodes
        .path(services.store(), project)
        .await
        .map_err(store_err)?
        .ok_or_else(|| fail("no such project"))?;
    let (facts, compiled) = cached_facts(engine, set, c.membership).await?;
    Ok(engine.decide(&facts, &compiled, &path, c.pair)?.allowed)
}

/// Membership `s`'s facts through the facts cache, and their roles compiled (once per facts,
/// as the `check` resolver has them).
async fn cached_facts(
    engine: &Engine,
    set: &Set,
    s: u64,
) -> Res<(Arc<PrincipalFacts>, Arc<CompiledRoles>)> {
    let services = &set.state.services;
    let (org, user) = set.principal(s);
    let facts = services
        .cache
        .facts(services.store(), org, user, 0)
        .await
        .map_err(store_err)?
        .ok_or_else(|| fail("no such organization"))?;
    let compiled = facts
        .compiled
        .get_or_init(|| engine.compile(&facts))
        .clone();
    Ok((facts, compiled))
}

/// Loads `members`' facts through the cache (eight at a time), then compiles their roles (as
/// their first check would), and loads every project's path through the node cache. Returns
/// the resident memory before, after the facts and after the compiled roles.
async fn fill(engine: &Engine, set: &Set, members: &[u64]) -> Res<[u64; 3]> {
    let services = &set.state.services;
    let before = rss();
    let loads = futures::stream::iter(members.iter().copied())
        .map(|s| async move {
            let (org, user) = set.principal(s);
            let facts = services
                .cache
                .facts(services.store(), org, user, 0)
                .await
                .map_err(store_err)?
                .ok_or_else(|| fail("no such organization"))?;
            verify_facts(&set.shape, s, &facts)
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    loads.into_iter().collect::<Res<Vec<()>>>()?;
    let loaded = rss();
    for &s in members {
        cached_facts(engine, set, s).await?;
    }
    let compiled = rss();
    let shape = &set.shape;
    let projects = (0..shape.orgs).flat_map(|o| {
        (0..shape.workspaces)
            .flat_map(move |w| (0..shape.projects).map(move |p| shape.project_id(o, w, p)))
    });
    let paths = futures::stream::iter(projects)
        .map(|id| async move {
            services
                .nodes
                .path(services.store(), id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| fail("no such project"))
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    paths.into_iter().collect::<Res<Vec<_>>>()?;
    Ok([before, loaded, compiled])
}

/// An error unless every lookup since `before` was a cache hit: the checks timed were not on
/// the warm path otherwise.
fn all_hits(sets: &[&Set; 2], before: &[Counters], what: &str) -> Res<()> {
    for (set, before) in sets.iter().zip(before) {
        let after = Counters::read(&set.state);
        if after.misses != before.misses || after.loads != before.loads {
            return Err(fail(format!(
                "{}: the {what} missed the caches ({} misses, {} store loads)",
                set.shape.name,
                after.misses - before.misses,
                after.loads - before.loads
            )));
        }
    }
    Ok(())
}

/// The cache counters that show whether a check was served from the caches.
struct Counters {
    misses: u64,
    loads: u64,
}

impl Counters {
    fn read(state: &AppState) -> Self {
        let m = &state.services.metrics;
        Self {
            misses: m.cache_misses.l1.get()
                + m.cache_misses.node.get()
                + m.cache_misses.session.get(),
            loads: m.store_loads.get(),
        }
    }
}

fn print_results(timings: &[Timings; 2]) {
    println!("\n## Latency per check\n");
    println!("| path | data set | n | allowed | p50 | p90 | p99 | max | mean |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, name) in PATHS.iter().enumerate() {
        for (set, tm) in ["small", "large"].iter().zip(timings) {
            let s = Stats::of(&tm.latency[i]);
            println!(
                "| {name} | {set} | {} | {} | {} |",
                thousands(s.n as f64),
                thousands(tm.allowed[i] as f64),
                s.cells()
            );
        }
    }
    println!("\n## large / small (target ≤ 1.5×)\n");
    println!("| path | p50 | p90 | p99 | mean |");
    println!("|---|---|---|---|---|");
    for (i, name) in PATHS.iter().enumerate() {
        let small = Stats::of(&timings[0].latency[i]);
        let large = Stats::of(&timings[1].latency[i]);
        println!("| {name} | {} |", large.ratios(&small));
    }
}
