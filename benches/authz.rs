//! Benchmarks of the decision engine, uncached: `decide` on compiled roles, and permission
//! parsing. Results and the command that produced them are in BENCHMARKS.md.
//!
//! The facts are those of a busy member: five bindings (the organization, a workspace twice, a
//! project, and a sibling project that is off the checked path) to four roles of about ten
//! policies each (the built-in Developer, Operator and Viewer, and a custom role with scoped
//! allows and denies).

#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::expect_used,
    reason = "a benchmark whose fixture does not build should stop loudly"
)]

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use iam_gateway::authz::{
    BindingFact, BoundResource, Catalog, Check, CompiledRole, Facts, Policy, RoleSet,
    builtin_policies, decide,
};
use uuid::Uuid;

struct Fixture {
    catalog: Catalog,
    roles: RoleSet,
    bindings: Vec<BindingFact>,
    org: Uuid,
    ws: Uuid,
    project: Uuid,
    other_ws: Uuid,
    blocked_secret: String,
    now: DateTime<Utc>,
}

impl Fixture {
    fn new() -> Self {
        let catalog = Catalog::builtin();
        let (org, ws, project, sibling, other_ws) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let blocked_secret = Uuid::new_v4().to_string();
        let mut roles = RoleSet::new();
        let mut role_ids = Vec::new();
        for key in ["viewer", "developer", "operator"] {
            let id = Uuid::now_v7();
            let policies = builtin_policies(key).expect("built-in role");
            roles.insert(CompiledRole::compile(&catalog, id, key, &policies).expect("compiles"));
            role_ids.push(id);
        }
        let custom = [
            Policy::allow(format!("secrets:{ws}:read")),
            Policy::deny(format!("secrets:{blocked_secret}:read")),
            Policy::allow("models:*:manage"),
            Policy::allow("tools:*:manage"),
            Policy::allow("sources:*:delete"),
            Policy::allow("audit:*:export"),
            Policy::allow(format!("roles:{project}:write")),
            Policy::allow("members:*:invite"),
            Policy::deny("apps:*:delete"),
            Policy::deny(format!("*:{other_ws}:*")),
        ];
        let custom_id = Uuid::now_v7();
        roles.insert(
            CompiledRole::compile(&catalog, custom_id, "secret keeper", &custom).expect("compiles"),
        );
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("date");
        let binding = |role_id, node_id, expires_at| BindingFact {
            id: Uuid::now_v7(),
            role_id,
            node_id,
            expires_at,
            team: None,
            resource: None,
        };
        let bindings = vec![
            binding(role_ids[0], org, None),
            binding(role_ids[1], ws, Some(now + Duration::days(30))),
            binding(role_ids[2], project, None),
            binding(custom_id, ws, None),
            binding(role_ids[1], sibling, None),
        ];
        Fixture {
            catalog,
            roles,
            bindings,
            org,
            ws,
            project,
            other_ws,
            blocked_secret,
            now,
        }
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            principal_active: true,
            scopes: None,
            bindings: &self.bindings,
            roles: &self.roles,
        }
    }

    fn check<'a>(
        &'a self,
        type_action: (&str, &str),
        path: &'a [Uuid],
        resource_id: Option<&'a str>,
    ) -> Check<'a> {
        let (resource_type, action) = self
            .catalog
            .resolve(type_action.0, type_action.1)
            .expect("a catalog pair");
        Check {
            resource_type,
            resource_type_name: self.catalog.type_name(resource_type),
            action,
            path,
            resource_id,
            now: self.now,
        }
    }
}

fn decisions(c: &mut Criterion) {
    let f = Fixture::new();
    let facts = f.facts();
    let project_path = [f.org, f.ws, f.project];

    let allow = f.check(("apps", "read"), &project_path, None);
    assert!(decide(&facts, &allow).allowed);
    c.bench_function("decide/allow", |b| {
        b.iter(|| decide(black_box(&facts), black_box(&allow)))
    });

    let deny = f.check(
        ("secrets", "read"),
        &project_path,
        Some(f.blocked_secret.as_str()),
    );
    assert!(!decide(&facts, &deny).allowed);
    c.bench_function("decide/deny_wins", |b| {
        b.iter(|| decide(black_box(&facts), black_box(&deny)))
    });

    let none = f.check(("sso", "manage"), &project_path, None);
    assert!(!decide(&facts, &none).allowed);
    c.bench_function("decide/no_match", |b| {
        b.iter(|| decide(black_box(&facts), black_box(&none)))
    });

    // checkMany(50): one principal's facts, 50 checks over every pair and three depths.
    let org_path = [f.org];
    let ws_path = [f.org, f.ws];
    let other_path = [f.org, f.other_ws];
    let paths: [&[Uuid]; 4] = [&org_path, &ws_path, &project_path, &other_path];
    let pairs = f.catalog.pairs();
    let checks: Vec<Check<'_>> = (0..50)
        .map(|i| Check {
            resource_type: pairs[i % pairs.len()].0,
            resource_type_name: f.catalog.type_name(pairs[i % pairs.len()].0),
            action: pairs[i % pairs.len()].1,
            path: paths[i % paths.len()],
            resource_id: (i % 3 == 0).then_some(f.blocked_secret.as_str()),
            now: f.now,
        })
        .collect();
    let allowed = checks.iter().filter(|c| decide(&facts, c).allowed).count();
    assert!(allowed > 0 && allowed < checks.len());
    c.bench_function("decide/check_many_50", |b| {
        b.iter(|| {
            let facts = black_box(&facts);
            black_box(&checks)
                .iter()
                .filter(|check| decide(facts, check).allowed)
                .count()
        })
    });
}

/// A member holding three roles through three teams and two shares, against one holding the
/// same five bindings directly: the engine reads both alike (a team binding is a binding; a
/// share adds one comparison of the resource), so the two must cost about the same.
fn teams_and_shares(c: &mut Criterion) {
    let f = Fixture::new();
    let viewer = f.bindings[0].role_id;
    let developer = f.bindings[1].role_id;
    let operator = f.bindings[2].role_id;
    let binding =
        |role_id, node_id, team: Option<Uuid>, resource: Option<(&str, &str)>| BindingFact {
            id: Uuid::now_v7(),
            role_id,
            node_id,
            expires_at: None,
            team,
            resource: resource.map(|(t, id)| BoundResource {
                resource_type: t.to_owned(),
                id: id.to_owned(),
            }),
        };
    let shares = |team_of: &dyn Fn(usize) -> Option<Uuid>| {
        vec![
            binding(viewer, f.org, team_of(0), None),
            binding(developer, f.ws, team_of(1), None),
            binding(operator, f.project, team_of(2), None),
            binding(developer, f.ws, None, Some(("augmentations", "aug-42"))),
            binding(operator, f.project, None, Some(("endpoints", "ep-7"))),
        ]
    };
    let teams = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let direct = shares(&|_| None);
    let through_teams = shares(&|i| Some(teams[i]));
    let project_path = [f.org, f.ws, f.project];
    let on_node = f.check(("apps", "read"), &project_path, None);
    let on_share = f.check(("endpoints", "trigger"), &project_path, Some("ep-7"));
    for (name, bindings) in [("direct", &direct), ("teams", &through_teams)] {
        let facts = Facts {
            principal_active: true,
            scopes: None,
            bindings,
            roles: &f.roles,
        };
        for (what, check) in [("node", &on_node), ("shared_resource", &on_share)] {
            assert!(decide(&facts, check).allowed);
            c.bench_function(&format!("decide/{name}/{what}"), |b| {
                b.iter(|| decide(black_box(&facts), black_box(check)))
            });
        }
    }
}

fn parsing(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let scoped = format!("endpoints:{}:trigger", Uuid::now_v7());
    assert!(catalog.parse_permission(&scoped).is_ok());
    c.bench_function("parse_permission/wildcard_scope", |b| {
        b.iter(|| catalog.parse_permission(black_box("apps:*:read")))
    });
    c.bench_function("parse_permission/uuid_scope", |b| {
        b.iter(|| catalog.parse_permission(black_box(&scoped)))
    });
}

criterion_group!(benches, decisions, teams_and_shares, parsing);
criterion_main!(benches);
