//! The casbin-rs peer of `benches/scale.rs`: the same data sets (`workload.rs`) and the same
//! checks, decided in one process by
//!
//! - the gateway's engine: a principal's facts from memory (a hash map holding every
//!   principal's facts, with the compiled roles kept next to them as the L1 does), then
//!   `authz::decide`;
//! - casbin-rs 2.20, RBAC with domains, in two models (see BENCHMARKS.md "casbin-rs peer"):
//!   `path`, one `enforce` per check whose request carries the check's three domains, and
//!   `textbook`, the documented domain model, asked once per domain of the path.
//!
//! The gateway's own cache (moka, with its epochs) is not used here: it loads from a store, and
//! this program has no database; `benches/scale.rs` measures that path on PostgreSQL.
//!
//! Every answer of every engine is compared with the one the workload's formulas give; a
//! mismatch aborts. Run from this directory:
//! `cargo run --release [-- --checks N --seconds S --seed N]` (about 20 s).
//! Results are in BENCHMARKS.md.

mod report;
#[allow(
    dead_code,
    reason = "shared with benches/scale.rs, which uses all of it"
)]
mod workload;

use std::collections::HashMap;
use std::error::Error;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use casbin::{Adapter, CoreApi, DefaultModel, Enforcer, Filter, Model};
use chrono::{DateTime, Utc};
use iam_gateway::authz::{
    BindingFact, Catalog, Check, CompiledRoles, Facts, builtin_policies, decide,
};
use iam_gateway::store::PrincipalFacts;
use uuid::Uuid;

use report::{Stats, machine, mib, nanos, rss, slice_of, t, thousands, timer_overhead, turns};
use workload::{CheckSpec, Expiry, Kind, LARGE, ROLES, Rng, SMALL, Shape};

type Res<T> = Result<T, Box<dyn Error>>;

fn fail(message: impl Into<String>) -> Box<dyn Error> {
    message.into().into()
}

/// One `enforce` per check: the request carries the check's path (organization, workspace,
/// project), and a role bound at any of them counts. Policies are global (the built-in roles
/// are the same in every organization), so `p` has no domain. The permission is compared
/// first, so the role manager is only asked about the few policies that grant it.
const PATH_MODEL: &str = "
[request_definition]
r = sub, org, ws, proj, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && r.act == p.act && (g(r.sub, p.sub, r.org) || g(r.sub, p.sub, r.ws) || g(r.sub, p.sub, r.proj))
";

/// casbin's documented RBAC-with-domains model, global policies written with the domain `*`.
/// It knows no hierarchy: the caller asks at each domain of the path until one allows.
const TEXTBOOK_MODEL: &str = "
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && keyMatch(r.dom, p.dom) && r.obj == p.obj && r.act == p.act
";

fn main() -> std::process::ExitCode {
    let run = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| fail(e.to_string()))
        .and_then(|rt| rt.block_on(run()));
    match run {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("casbin peer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Args {
    checks: usize,
    seconds: f64,
    seed: u64,
}

fn args() -> Res<Args> {
    let mut a = Args {
        checks: 10_000,
        seconds: 1.0,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || {
            it.next()
                .ok_or_else(|| fail(format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--checks" => a.checks = number()?.parse()?,
            "--seconds" => a.seconds = f64::from_str(&number()?)?,
            "--seed" => a.seed = number()?.parse()?,
            _ => {
                return Err(fail(
                    "usage: cargo run --release -- [--checks N (10000)] [--seconds S per throughput run (1)] [--seed N]",
                ));
            }
        }
    }
    Ok(a)
}

/// One data set loaded into every engine, with its checks.
struct Loaded {
    shape: Shape,
    gateway: Gateway,
    casbin: Vec<(Variant, Enforcer)>,
    checks: Vec<Request>,
}

impl Loaded {
    /// Engine `k`'s answer: 0 is the gateway, then the casbin variants.
    fn answer(&self, k: usize, r: &Request, oracle: &Oracle) -> Res<bool> {
        match k.checked_sub(1) {
            None => self.gateway.check(r, oracle),
            Some(c) => {
                let (variant, e) = self.casbin.get(c).ok_or_else(|| fail("no such engine"))?;
                variant.check(e, r)
            }
        }
    }
}

const ENGINES: [&str; 3] = ["gateway", "casbin, path model", "casbin, textbook model"];

async fn run() -> Res<()> {
    let args = args()?;
    println!("casbin peer: {}", machine());
    println!(
        "timing itself costs {} per measurement (Instant::now → elapsed, median)",
        t(timer_overhead())
    );
    let oracle = Oracle::new()?;
    let now = Utc::now();
    let mut rng = Rng::new(args.seed);

    println!("\n## Loading\n");
    println!("| data set | engine | rules / facts | loaded in | resident memory added |");
    println!("|---|---|---|---|---|");
    let mut sets = Vec::new();
    for shape in [SMALL, LARGE] {
        sets.push(load(shape, &oracle, now, &args, &mut rng).await?);
    }

    // Every engine must give the formulas' answer to every check.
    let mut allowed = Vec::new();
    for set in &sets {
        let mut n = 0;
        for r in &set.checks {
            let want = set.shape.expected(&r.spec, &oracle.allows);
            for (k, engine) in ENGINES.iter().enumerate() {
                let got = set.answer(k, r, &oracle)?;
                if got != want {
                    return Err(fail(format!(
                        "{}: {engine} answered {got} to {:?}, expected {want}",
                        set.shape.name, r.spec
                    )));
                }
            }
            n += usize::from(want);
        }
        allowed.push(format!(
            "{} {} of {}",
            set.shape.name,
            thousands(n as f64),
            thousands(set.checks.len() as f64)
        ));
    }
    println!(
        "\nevery engine gave the expected answer to every check; allowed: {}",
        allowed.join(", ")
    );

    // Latency: each check timed alone. One engine at a time; the two sets take turns.
    let mut latency: HashMap<(usize, usize), Vec<u64>> = HashMap::new();
    let slices = 10;
    for k in 0..ENGINES.len() {
        for (slice, i) in turns(slices) {
            let set = &sets[i];
            for r in slice_of(&set.checks, slice, slices) {
                let began = Instant::now();
                black_box(set.answer(k, black_box(r), &oracle)?);
                latency
                    .entry((i, k))
                    .or_default()
                    .push(nanos(began.elapsed()));
            }
        }
    }

    // Throughput: the checks in a loop, not timed one by one, for at least `seconds`.
    let mut rate: HashMap<(usize, usize), f64> = HashMap::new();
    let budget = Duration::from_secs_f64(args.seconds);
    for k in 0..ENGINES.len() {
        for (i, set) in sets.iter().enumerate() {
            let (mut done, began) = (0usize, Instant::now());
            while began.elapsed() < budget {
                for r in &set.checks {
                    black_box(set.answer(k, black_box(r), &oracle)?);
                }
                done += set.checks.len();
            }
            rate.insert((i, k), done as f64 / began.elapsed().as_secs_f64());
        }
    }

    let stats = |i: usize, k: usize| Stats::of(latency.get(&(i, k)).map_or(&[][..], Vec::as_slice));
    let rate = |i: usize, k: usize| rate.get(&(i, k)).copied().unwrap_or(0.0);
    println!("\n## Per check, one thread\n");
    println!("| engine | data set | n | p50 | p90 | p99 | max | mean | checks/s (loop) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (k, engine) in ENGINES.iter().enumerate() {
        for (i, set) in sets.iter().enumerate() {
            let s = stats(i, k);
            println!(
                "| {engine} | {} | {} | {} | {} |",
                set.shape.name,
                thousands(s.n as f64),
                s.cells(),
                thousands(rate(i, k))
            );
        }
    }
    println!("\n## large / small\n");
    println!("| engine | p50 | p90 | p99 | mean | checks/s |");
    println!("|---|---|---|---|---|---|");
    for (k, engine) in ENGINES.iter().enumerate() {
        println!(
            "| {engine} | {} | {:.2}× |",
            stats(1, k).ratios(&stats(0, k)),
            rate(1, k) / rate(0, k).max(1e-9)
        );
    }
    println!("\n## casbin / gateway\n");
    println!("| engine | data set | p50 | p99 | checks/s |");
    println!("|---|---|---|---|---|");
    for (k, engine) in ENGINES.iter().enumerate().skip(1) {
        for (i, set) in sets.iter().enumerate() {
            let (c, g) = (stats(i, k), stats(i, 0));
            println!(
                "| {engine} | {} | {:.0}× | {:.0}× | {:.3}× |",
                set.shape.name,
                c.p50 as f64 / g.p50.max(1) as f64,
                c.p99 as f64 / g.p99.max(1) as f64,
                rate(i, k) / rate(i, 0).max(1e-9)
            );
        }
    }
    println!(
        "\nat the end: {}, resident memory {}",
        machine(),
        mib(rss())
    );
    Ok(())
}

/// Loads a data set into every engine, printing what each took, and draws its checks.
async fn load(
    shape: Shape,
    oracle: &Oracle,
    now: DateTime<Utc>,
    args: &Args,
    rng: &mut Rng,
) -> Res<Loaded> {
    if !shape.valid() {
        return Err(fail(format!("data set {} is not valid", shape.name)));
    }
    let (gateway, took, grown) = measured(|| async { Gateway::new(&shape, now) }).await?;
    println!(
        "| {} | gateway: every principal's facts in a hash map | {} principals, {} bindings | {:.2} s | {} |",
        shape.name,
        thousands(shape.memberships() as f64),
        thousands(shape.bindings() as f64),
        took.as_secs_f64(),
        mib(grown)
    );
    let ((), took, grown) = measured(|| async {
        gateway.compile_all();
        Ok(())
    })
    .await?;
    println!(
        "| {} | gateway: + every principal's compiled roles, as the L1 keeps them | {} role sets | {:.2} s | {} |",
        shape.name,
        thousands(shape.memberships() as f64),
        took.as_secs_f64(),
        mib(grown)
    );
    let mut casbin = Vec::new();
    for variant in [Variant::Path, Variant::Textbook] {
        let (enforcer, took, grown) = measured(|| enforcer(&shape, oracle, variant)).await?;
        let rules = |sec: &str| {
            enforcer
                .get_model()
                .get_model()
                .get(sec)
                .and_then(|m| m.get(sec))
                .map_or(0, |a| a.get_policy().len())
        };
        println!(
            "| {} | {} | {} p + {} g rules | {:.2} s | {} |",
            shape.name,
            variant.name(),
            thousands(rules("p") as f64),
            thousands(rules("g") as f64),
            took.as_secs_f64(),
            mib(grown)
        );
        casbin.push((variant, enforcer));
    }
    let checks = (0..args.checks)
        .map(|_| {
            let s = rng.below(shape.memberships());
            Request::new(&shape, shape.check(s, oracle.pairs.len(), rng), oracle)
        })
        .collect();
    Ok(Loaded {
        shape,
        gateway,
        casbin,
        checks,
    })
}

/// Runs `build`, returning what it made, how long it took and how much resident memory grew.
async fn measured<T, F, Fut>(build: F) -> Res<(T, Duration, u64)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Res<T>>,
{
    let before = rss();
    let began = Instant::now();
    let made = build().await?;
    let took = began.elapsed();
    Ok((made, took, rss().saturating_sub(before)))
}

// ---------------------------------------------------------------------------------------------
// The expected answers and the checks

/// The catalog's pairs and what each built-in role allows, from the policies' text.
struct Oracle {
    catalog: Catalog,
    pairs: Vec<(String, String)>,
    allows: Vec<Vec<bool>>,
}

impl Oracle {
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
        for (key, _) in ROLES {
            let texts: Vec<String> = builtin_policies(key)
                .ok_or_else(|| fail(format!("no role {key}")))?
                .into_iter()
                .map(|p| p.permission)
                .collect();
            allows.push(
                pairs
                    .iter()
                    .map(|(t, a)| {
                        workload::text_allows(&texts, t, a)
                            .ok_or_else(|| fail(format!("{key}: a policy the oracle cannot read")))
                    })
                    .collect::<Res<Vec<bool>>>()?,
            );
        }
        Ok(Self {
            catalog,
            pairs,
            allows,
        })
    }
}

/// A check as both engines receive it: ids for the gateway, strings for casbin.
struct Request {
    spec: CheckSpec,
    org: Uuid,
    user: Uuid,
    path: [Uuid; 3],
    type_name: String,
    action: String,
    /// user, organization, workspace, project
    strings: [String; 4],
}

impl Request {
    fn new(shape: &Shape, spec: CheckSpec, oracle: &Oracle) -> Self {
        let path = shape.path(&spec);
        let user = shape.user_id(shape.user_of(spec.membership));
        let (type_name, action) = oracle.pairs.get(spec.pair).cloned().unwrap_or_default();
        Self {
            spec,
            org: path[0],
            user,
            path,
            type_name,
            action,
            strings: [
                user.to_string(),
                path[0].to_string(),
                path[1].to_string(),
                path[2].to_string(),
            ],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway's engine

/// Every principal's facts, as the store would return them, and the gateway's catalog with its
/// compiled built-in roles (`Authz`).
struct Gateway {
    facts: HashMap<(Uuid, Uuid), Arc<PrincipalFacts>>,
    authz: iam_gateway::authz::Authz,
}

impl Gateway {
    fn new(shape: &Shape, now: DateTime<Utc>) -> Res<Self> {
        let authz = iam_gateway::app::authz_for(Arc::new(iam_gateway::authz::Profile::mechamental()))
            .map_err(fail)?;
        let mut facts = HashMap::with_capacity(shape.memberships() as usize);
        for s in 0..shape.memberships() {
            let (org, user) = (
                shape.org_id(shape.org_of(s)),
                shape.user_id(shape.user_of(s)),
            );
            let bindings = shape
                .bindings_of(s)
                .map(|b| BindingFact {
                    id: Kind::Binding.id(b.index),
                    role_id: ROLES.get(b.role).map_or(Uuid::nil(), |r| r.1),
                    node_id: shape.node_id(&b),
                    expires_at: match b.expiry {
                        Expiry::Never => None,
                        Expiry::Past => Some(now - chrono::Duration::days(1)),
                        Expiry::Future => Some(now + chrono::Duration::days(30)),
                    },
                    team: None,
                    resource: None,
                })
                .collect();
            let f = PrincipalFacts {
                organization_id: org,
                principal_id: user,
                revision: 1,
                active: true,
                member: true,
                bindings,
                teams: Vec::new(),
                custom_roles: Vec::new(),
                compiled: OnceLock::new(),
            };
            facts.insert((org, user), Arc::new(f));
        }
        Ok(Self { facts, authz })
    }

    /// The facts' roles compiled, by the gateway's own `Authz::compile` (facts without custom
    /// roles, as here, share one compiled set of the built-in roles).
    fn compile(&self, facts: &PrincipalFacts) -> Arc<CompiledRoles> {
        self.authz.compile(facts.custom_roles_to_compile())
    }

    /// Compiles every principal's roles, as the L1 keeps them once each has been checked.
    fn compile_all(&self) {
        for facts in self.facts.values() {
            facts.compiled.get_or_init(|| self.compile(facts));
        }
    }

    /// As `OrgView::load` + `OrgView::decide`: the facts, their compiled roles (made by the
    /// first check), the pair resolved from its names, the decision.
    fn check(&self, r: &Request, oracle: &Oracle) -> Res<bool> {
        let facts = self
            .facts
            .get(&(r.org, r.user))
            .ok_or_else(|| fail("no facts"))?;
        let compiled = facts.compiled.get_or_init(|| self.compile(facts));
        let (resource_type, action) = oracle
            .catalog
            .resolve(&r.type_name, &r.action)
            .map_err(|e| fail(e.to_string()))?;
        let decision = decide(
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
                path: &r.path,
                resource_id: None,
                now: Utc::now(),
            },
        );
        Ok(decision.allowed)
    }
}

// ---------------------------------------------------------------------------------------------
// casbin-rs

#[derive(Debug, Clone, Copy)]
enum Variant {
    Path,
    Textbook,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Path => "casbin, path model",
            Self::Textbook => "casbin, textbook model",
        }
    }

    fn check(self, e: &Enforcer, r: &Request) -> Res<bool> {
        let [user, org, ws, project] = &r.strings;
        let (obj, act) = (r.type_name.as_str(), r.action.as_str());
        match self {
            Self::Path => Ok(e.enforce((
                user.as_str(),
                org.as_str(),
                ws.as_str(),
                project.as_str(),
                obj,
                act,
            ))?),
            Self::Textbook => {
                for dom in [org, ws, project] {
                    if e.enforce((user.as_str(), dom.as_str(), obj, act))? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// An enforcer loaded with the data set: a policy per (built-in role, pair it allows), and a
/// grouping rule `g, user, role, node` per binding that has not expired (casbin has no
/// expiry: a deployment would delete the rule when it expires).
async fn enforcer(shape: &Shape, oracle: &Oracle, variant: Variant) -> Res<Enforcer> {
    let mut policies = Vec::new();
    for ((key, _), allows) in ROLES.iter().zip(&oracle.allows) {
        for ((t, a), allowed) in oracle.pairs.iter().zip(allows) {
            if *allowed {
                policies.push(match variant {
                    Variant::Path => vec![(*key).to_owned(), t.clone(), a.clone()],
                    Variant::Textbook => {
                        vec![(*key).to_owned(), "*".to_owned(), t.clone(), a.clone()]
                    }
                });
            }
        }
    }
    let text = match variant {
        Variant::Path => PATH_MODEL,
        Variant::Textbook => TEXTBOOK_MODEL,
    };
    let model = DefaultModel::from_str(text).await?;
    let adapter = Generated {
        shape: *shape,
        policies,
    };
    Ok(Enforcer::new(model, adapter).await?)
}

/// Hands casbin the rules as a database adapter would, row by row, keeping no copy.
struct Generated {
    shape: Shape,
    policies: Vec<Vec<String>>,
}

#[async_trait]
impl Adapter for Generated {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        for rule in std::mem::take(&mut self.policies) {
            m.add_policy("p", "p", rule);
        }
        let shape = self.shape;
        for s in 0..shape.memberships() {
            let user = shape.user_id(shape.user_of(s)).to_string();
            for b in shape.bindings_of(s) {
                let expired = match b.expiry {
                    Expiry::Past => true,
                    Expiry::Never | Expiry::Future => false,
                };
                let Some((role, _)) = ROLES.get(b.role) else {
                    continue;
                };
                if !expired {
                    let node = shape.node_id(&b).to_string();
                    m.add_policy("g", "g", vec![user.clone(), (*role).to_owned(), node]);
                }
            }
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        _f: Filter<'a>,
    ) -> casbin::Result<()> {
        self.load_policy(m).await
    }

    async fn save_policy(&mut self, _m: &mut dyn Model) -> casbin::Result<()> {
        Ok(())
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        Ok(())
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(&mut self, _: &str, _: &str, _: Vec<String>) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn add_policies(
        &mut self,
        _: &str,
        _: &str,
        _: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn remove_policy(&mut self, _: &str, _: &str, _: Vec<String>) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn remove_policies(
        &mut self,
        _: &str,
        _: &str,
        _: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn remove_filtered_policy(
        &mut self,
        _: &str,
        _: &str,
        _: usize,
        _: Vec<String>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }
}
