//! Property test: on random hierarchies, roles, bindings (to the principal, to teams it is or
//! is not in, to someone else; on nodes or on one resource) and checks, `decide` agrees with
//! the naive string evaluator of `reference.rs` (allowed and the multiset of reasons), and
//! `explain` agrees with `decide`. Failing inputs are saved next to this file
//! (`property.proptest-regressions`) and replayed first on the next run.

use std::collections::HashMap;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

use super::reference::{RefBinding, RefCheck, RefReason, RefWorld};
use super::*;

#[derive(Debug, Clone)]
enum ScopeGen {
    Any,
    /// A node of either organization.
    Node(Index),
    /// One of the resource ids checks use.
    Resource(Index),
    /// An id nothing has.
    Stray(u128),
}

#[derive(Debug, Clone)]
struct PolicyGen {
    deny: bool,
    /// `None` = `*`.
    resource: Option<Index>,
    /// `None` = `*`.
    action: Option<Index>,
    scope: ScopeGen,
}

#[derive(Debug, Clone)]
enum RoleGen {
    Random(Vec<PolicyGen>),
    Builtin(Index),
}

#[derive(Debug, Clone)]
struct BindingGen {
    /// Over the roles plus one unknown role.
    role: Index,
    /// Over every node of both organizations; `None` is the checked organization itself
    /// (weighted, so that bindings apply often enough).
    node: Option<Index>,
    /// 0: never, 1: an hour ago, 2: exactly now, 3: in an hour.
    expiry: u8,
    /// On one resource: a type of the catalog and an id of the resource pool.
    resource: Option<(Index, Index)>,
    /// 0: the checked principal; 1–3: one of three teams; 4: another principal.
    holder: u8,
}

#[derive(Debug, Clone)]
enum PairGen {
    /// Any (type, action) pair of the catalog.
    Any(Index),
    /// A pair that the type and action of one of the generated policies cover (so that
    /// checks meet policies often enough for allows and denies to be common).
    Like { policy: Index, pair: Index },
}

#[derive(Debug, Clone)]
struct CheckGen {
    pair: PairGen,
    /// Over the nodes of the checked organization.
    node: Index,
    /// Over the resource pool plus one fresh id.
    resource: Option<Index>,
}

#[derive(Debug, Clone)]
struct Scenario {
    salt: u64,
    /// Projects per workspace.
    workspaces: Vec<usize>,
    roles: Vec<RoleGen>,
    bindings: Vec<BindingGen>,
    /// Which of the three teams the checked principal belongs to.
    member_of: [bool; 3],
    active: bool,
    /// The check is made with an API key of the principal that has these scopes (allows).
    key_scopes: Option<Vec<PolicyGen>>,
    checks: Vec<CheckGen>,
}

fn scope_gen() -> impl Strategy<Value = ScopeGen> {
    prop_oneof![
        5 => Just(ScopeGen::Any),
        3 => any::<Index>().prop_map(ScopeGen::Node),
        2 => any::<Index>().prop_map(ScopeGen::Resource),
        1 => any::<u128>().prop_map(ScopeGen::Stray),
    ]
}

fn policy_gen() -> impl Strategy<Value = PolicyGen> {
    (
        prop::bool::weighted(0.25),
        prop::option::weighted(0.7, any::<Index>()),
        prop::option::weighted(0.7, any::<Index>()),
        scope_gen(),
    )
        .prop_map(|(deny, resource, action, scope)| PolicyGen {
            deny,
            resource,
            action,
            scope,
        })
}

fn role_gen() -> impl Strategy<Value = RoleGen> {
    prop_oneof![
        4 => vec(policy_gen(), 0..=6).prop_map(RoleGen::Random),
        1 => any::<Index>().prop_map(RoleGen::Builtin),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let expiry = prop_oneof![4 => Just(0u8), 1 => Just(1), 1 => Just(2), 2 => Just(3)];
    let binding = (
        any::<Index>(),
        prop::option::weighted(0.7, any::<Index>()),
        expiry,
        prop::option::weighted(0.3, (any::<Index>(), any::<Index>())),
        prop_oneof![4 => Just(0u8), 4 => 1u8..=3, 1 => Just(4u8)],
    )
        .prop_map(|(role, node, expiry, resource, holder)| BindingGen {
            role,
            node,
            expiry,
            resource,
            holder,
        });
    let pair = prop_oneof![
        1 => any::<Index>().prop_map(PairGen::Any),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(policy, pair)| PairGen::Like { policy, pair }),
    ];
    let check = (pair, any::<Index>(), prop::option::of(any::<Index>())).prop_map(
        |(pair, node, resource)| CheckGen {
            pair,
            node,
            resource,
        },
    );
    (
        any::<u64>(),
        vec(0usize..=3, 1..=3),
        vec(role_gen(), 1..=5),
        vec(binding, 1..=7),
        any::<[bool; 3]>(),
        prop::bool::weighted(0.85),
        prop::option::weighted(0.4, vec(policy_gen(), 0..=3)),
        vec(check, 1..=8),
    )
        .prop_map(
            |(salt, workspaces, roles, bindings, member_of, active, key_scopes, checks)| Scenario {
                salt,
                workspaces,
                roles,
                bindings,
                member_of,
                active,
                key_scopes,
                checks,
            },
        )
}

/// The concrete world a scenario describes.
struct World {
    catalog: Catalog,
    /// The checked organization's nodes, each with its path (root first).
    nodes: Vec<Vec<Uuid>>,
    /// Every node of both organizations (the second one is never checked).
    all_nodes: Vec<Uuid>,
    parent: HashMap<Uuid, Uuid>,
    resources: Vec<String>,
    /// Per role: id and stored policies.
    roles: Vec<(Uuid, Vec<Policy>)>,
    /// The checked principal, the three teams and the teams it belongs to.
    principal: Uuid,
    teams: Vec<Uuid>,
    member_of: Vec<Uuid>,
    /// Every binding of the organization, each with whom it is bound to.
    bindings: Vec<(Uuid, BindingFact)>,
    /// The scopes of the API key the checks are made with, if any.
    key_scopes: Option<Vec<String>>,
}

impl World {
    /// The facts the store gives the engine: the principal's own bindings and those of its
    /// teams (marked with the team), as `store::facts` reads them.
    fn facts_bindings(&self) -> Vec<BindingFact> {
        self.bindings
            .iter()
            .filter(|(holder, _)| *holder == self.principal || self.member_of.contains(holder))
            .map(|(holder, b)| BindingFact {
                team: (*holder != self.principal).then_some(*holder),
                ..b.clone()
            })
            .collect()
    }
}

fn build(s: &Scenario) -> World {
    let catalog = Catalog::builtin();
    let mut counter = 0u128;
    let mut fresh = || {
        counter += 1;
        Uuid::from_u128((u128::from(s.salt) << 64) | counter)
    };
    let org = fresh();
    let mut nodes = vec![vec![org]];
    let mut parent = HashMap::new();
    for projects in &s.workspaces {
        let ws = fresh();
        parent.insert(ws, org);
        nodes.push(vec![org, ws]);
        for _ in 0..*projects {
            let p = fresh();
            parent.insert(p, ws);
            nodes.push(vec![org, ws, p]);
        }
    }
    let (other_org, other_ws) = (fresh(), fresh());
    parent.insert(other_ws, other_org);
    let mut all_nodes: Vec<Uuid> = nodes.iter().filter_map(|p| p.last().copied()).collect();
    all_nodes.extend([other_org, other_ws]);
    // A UUID and two ids in an application's own words.
    let resources = vec![
        fresh().to_string(),
        "chain-42".to_owned(),
        "OPENAI_API_KEY".to_owned(),
    ];

    let types = catalog.types();
    let type_names: Vec<&str> = types.iter().map(|(t, _)| *t).collect();
    let mut global_actions: Vec<&str> = types.iter().flat_map(|(_, a)| a.clone()).collect();
    global_actions.sort_unstable();
    global_actions.dedup();
    let policy_text = |p: &PolicyGen| -> String {
        let (resource, actions) = match &p.resource {
            None => ("*", global_actions.clone()),
            Some(ix) => {
                let (name, actions) = ix.get(&types);
                (*name, actions.clone())
            }
        };
        let action = p.action.as_ref().map_or("*", |ix| *ix.get(&actions));
        let scope = match &p.scope {
            ScopeGen::Any => "*".to_owned(),
            ScopeGen::Node(ix) => ix.get(&all_nodes).to_string(),
            ScopeGen::Resource(ix) => ix.get(&resources).clone(),
            ScopeGen::Stray(n) => Uuid::from_u128(*n).to_string(),
        };
        format!("{resource}:{scope}:{action}")
    };
    let key_scopes: Option<Vec<String>> = s
        .key_scopes
        .as_ref()
        .map(|scopes| scopes.iter().map(policy_text).collect());
    let roles: Vec<(Uuid, Vec<Policy>)> = s
        .roles
        .iter()
        .map(|role| {
            let policies = match role {
                RoleGen::Builtin(ix) => {
                    let key: &&str = ix.get(&BUILTIN_ROLE_KEYS[..]);
                    builtin_policies(key).unwrap()
                }
                RoleGen::Random(policies) => policies
                    .iter()
                    .map(|p| {
                        let text = policy_text(p);
                        if p.deny {
                            Policy::deny(text)
                        } else {
                            Policy::allow(text)
                        }
                    })
                    .collect(),
            };
            (fresh(), policies)
        })
        .collect();
    let unknown_role = fresh();
    let role_ids: Vec<Uuid> = roles
        .iter()
        .map(|(id, _)| *id)
        .chain([unknown_role])
        .collect();
    let principal = fresh();
    let teams = vec![fresh(), fresh(), fresh()];
    let stranger = fresh();
    let member_of: Vec<Uuid> = teams
        .iter()
        .zip(s.member_of)
        .filter(|(_, member)| *member)
        .map(|(t, _)| *t)
        .collect();
    let bindings = s
        .bindings
        .iter()
        .map(|b| {
            let holder = match b.holder {
                0 => principal,
                1..=3 => teams[usize::from(b.holder - 1)],
                _ => stranger,
            };
            (holder, b)
        })
        .map(|(holder, b)| {
            (
                holder,
                BindingFact {
                    id: fresh(),
                    role_id: *b.role.get(&role_ids),
                    node_id: b.node.as_ref().map_or(org, |ix| *ix.get(&all_nodes)),
                    expires_at: match b.expiry {
                        0 => None,
                        1 => Some(now() - hours(1)),
                        2 => Some(now()),
                        _ => Some(now() + hours(1)),
                    },
                    team: None,
                    resource: b.resource.as_ref().map(|(t, r)| BoundResource {
                        resource_type: (*t.get(&type_names)).to_owned(),
                        id: r.get(&resources).clone(),
                    }),
                },
            )
        })
        .collect();
    World {
        catalog,
        nodes,
        all_nodes,
        parent,
        resources,
        roles,
        principal,
        teams,
        member_of,
        bindings,
        key_scopes,
    }
}

fn as_ref_reason(reason: &Reason) -> RefReason {
    match reason {
        Reason::Inactive => RefReason::Inactive,
        Reason::NoPolicyMatched => RefReason::NoPolicyMatched,
        Reason::OutsideKeyScopes => RefReason::OutsideKeyScopes,
        // Made by the API's views of impersonation sessions, never by the engine alone.
        Reason::ImpersonatorLacks => RefReason::ImpersonatorLacks,
        Reason::Policy {
            binding_id,
            role_id,
            node_id,
            policy_index,
            effect,
        } => RefReason::Policy {
            binding_id: *binding_id,
            role_id: *role_id,
            node_id: *node_id,
            policy_index: *policy_index,
            effect: effect.as_str().to_owned(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn decide_agrees_with_the_naive_reference(s in scenario()) {
        let w = build(&s);
        let roles: RoleSet = w
            .roles
            .iter()
            .map(|(id, policies)| CompiledRole::compile(&w.catalog, *id, "r", policies))
            .collect::<Result<_, _>>()
            .unwrap();
        let reference = RefWorld {
            parent: w.parent.clone(),
            roles: w
                .roles
                .iter()
                .map(|(id, policies)| {
                    let texts = policies
                        .iter()
                        .map(|p| (p.effect.as_str().to_owned(), p.permission.clone()))
                        .collect();
                    (*id, texts)
                })
                .collect(),
            teams: HashMap::from([(w.principal, w.member_of.clone())]),
        };
        prop_assert_eq!(w.teams.len(), 3);
        let ref_bindings: Vec<RefBinding> = w
            .bindings
            .iter()
            .map(|(holder, b)| RefBinding {
                id: b.id,
                holder: *holder,
                role_id: b.role_id,
                node_id: b.node_id,
                expires_at: b.expires_at,
                resource: b
                    .resource
                    .as_ref()
                    .map(|r| (r.resource_type.clone(), r.id.clone())),
            })
            .collect();
        let held = w.facts_bindings();
        let compiled_scopes: Option<Vec<_>> = w.key_scopes.as_ref().map(|scopes| {
            scopes
                .iter()
                .map(|p| w.catalog.parse_permission(p).unwrap())
                .collect()
        });
        let facts = Facts {
            principal_active: s.active,
            scopes: compiled_scopes.as_deref(),
            bindings: &held,
            roles: &roles,
        };
        let pairs = w.catalog.pairs();
        let mut resource_pool = w.resources.clone();
        resource_pool.push("not-in-any-policy".to_owned());
        prop_assert_eq!(w.all_nodes.len(), w.nodes.len() + 2);

        let all_policies: Vec<&str> = w
            .roles
            .iter()
            .flat_map(|(_, policies)| policies.iter().map(|p| p.permission.as_str()))
            .collect();
        for c in &s.checks {
            let (t, a) = match &c.pair {
                PairGen::Like { policy, pair } if !all_policies.is_empty() => {
                    let parts: Vec<&str> = policy.get(&all_policies).split(':').collect();
                    let covered: Vec<(TypeIx, ActionIx)> = pairs
                        .iter()
                        .copied()
                        .filter(|(t, a)| {
                            (parts[0] == "*" || parts[0] == w.catalog.type_name(*t))
                                && (parts[2] == "*" || parts[2] == w.catalog.action_name(*a))
                        })
                        .collect();
                    *pair.get(&covered)
                }
                PairGen::Any(pair) | PairGen::Like { pair, .. } => *pair.get(&pairs),
            };
            let path = c.node.get(&w.nodes);
            let resource_id = c.resource.as_ref().map(|ix| ix.get(&resource_pool).as_str());
            let check = Check {
                resource_type: t,
                resource_type_name: w.catalog.type_name(t),
                action: a,
                path,
                resource_id,
                now: now(),
            };
            let decision = decide(&facts, &check);

            let ref_check = RefCheck {
                resource_type: w.catalog.type_name(t),
                action: w.catalog.action_name(a),
                node: *path.last().unwrap(),
                resource_id,
                now: now(),
            };
            let (ref_allowed, mut ref_reasons) =
                reference.decide(
                    w.principal,
                    s.active,
                    &ref_bindings,
                    w.key_scopes.as_deref(),
                    &ref_check,
                );
            let mut reasons: Vec<RefReason> = decision.reasons.iter().map(as_ref_reason).collect();
            reasons.sort();
            ref_reasons.sort();
            prop_assert_eq!(decision.allowed, ref_allowed);
            prop_assert_eq!(reasons, ref_reasons);
            prop_assert_eq!(&explain(&facts, &check).decision, &decision);
        }
    }

    #[test]
    fn parsing_never_panics(s in "[a-z*:0-9A-F-]{0,50}|.{0,40}") {
        let catalog = Catalog::builtin();
        if let Ok(p) = catalog.parse_permission(&s) {
            prop_assert_eq!(catalog.parse_permission(&catalog.format_permission(&p)), Ok(p));
        }
    }

    #[test]
    fn toml_loading_never_panics(s in ".{0,80}|\\[types\\]\n[a-z\"*]{1,6} = \\[(\"[a-z*]{0,4}\",?){0,3}\\]") {
        let _ = Catalog::from_toml_str(&s);
    }
}
