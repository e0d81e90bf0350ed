//! `decide`, one rule of SEMANTICS.md "The decision" at a time, table-driven.

use super::*;
use Effect::{Allow, Deny};
use Node::*;

/// An expected reason; `P(binding number, policy index, effect)`.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    Inactive,
    NoMatch,
    P(u128, usize, Effect),
}

pub struct Case {
    pub name: &'static str,
    pub active: bool,
    /// Role `n` is `roles[n - 1]`; a binding to a role number past the end names an unknown role.
    pub roles: &'static [&'static [&'static str]],
    pub bindings: &'static [(u128, Node, Option<i64>)],
    /// `type:action`, the checked node, the resource id.
    pub check: (&'static str, Node, Option<&'static str>),
    pub allowed: bool,
    pub reasons: &'static [Want],
}

const ADMIN: &[&str] = &["allow *:*:*"];
const APPS_READ: &[&str] = &["allow apps:*:read"];

pub const CASES: &[Case] = &[
    // Step 1: inactive principals.
    Case {
        name: "inactive principal is denied even with admin at the org",
        active: false,
        roles: &[ADMIN],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA1, None),
        allowed: false,
        reasons: &[Want::Inactive],
    },
    Case {
        name: "inactive principal without bindings",
        active: false,
        roles: &[],
        bindings: &[],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::Inactive],
    },
    // Step 2: which bindings count.
    Case {
        name: "no binding: deny, no policy matched",
        active: true,
        roles: &[ADMIN],
        bindings: &[],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a binding at the org is inherited by a project",
        active: true,
        roles: &[APPS_READ],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "a binding at a workspace is inherited by its project",
        active: true,
        roles: &[APPS_READ],
        bindings: &[(1, WsA, None)],
        check: ("apps:read", PA2, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "a binding at the checked node itself",
        active: true,
        roles: &[APPS_READ],
        bindings: &[(1, PB1, None)],
        check: ("apps:read", PB1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "a project binding does not apply at a sibling project",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, PA1, None)],
        check: ("apps:read", PA2, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a project binding does not apply at the workspace above it",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, PA1, None)],
        check: ("apps:read", WsA, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a project binding does not apply at the organization",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, PA1, None)],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a workspace binding does not apply in another workspace",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, WsA, None)],
        check: ("apps:read", PB1, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a binding in another organization grants nothing",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, OtherOrg, None), (1, OtherWs, None)],
        check: ("apps:read", WsA, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "an expired binding is ignored",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, Org, Some(-1))],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a binding expiring exactly now has expired",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, Org, Some(0))],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a binding expiring later applies",
        active: true,
        roles: &[ADMIN],
        bindings: &[(1, Org, Some(1))],
        check: ("apps:read", Org, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "an expired deny no longer denies",
        active: true,
        roles: &[ADMIN, &["deny *:*:*"]],
        bindings: &[(1, Org, None), (2, Org, Some(-2))],
        check: ("apps:read", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "a binding whose role is unknown contributes nothing",
        active: true,
        roles: &[],
        bindings: &[(7, Org, None)],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    // Step 3: which policies match.
    Case {
        name: "a policy of another type does not match",
        active: true,
        roles: &[&["allow models:*:read"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a policy of another action does not match",
        active: true,
        roles: &[&["allow apps:*:write"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", Org, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "`*` type matches any type with that action",
        active: true,
        roles: &[&["allow *:*:read"]],
        bindings: &[(1, Org, None)],
        check: ("models:read", WsB, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "`*` type does not widen the action",
        active: true,
        roles: &[&["allow *:*:read"]],
        bindings: &[(1, Org, None)],
        check: ("models:manage", WsB, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "`*` action matches every action of the type",
        active: true,
        roles: &[&["allow apps:*:*"]],
        bindings: &[(1, Org, None)],
        check: ("apps:delete", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "`*` action does not widen the type",
        active: true,
        roles: &[&["allow apps:*:*"]],
        bindings: &[(1, Org, None)],
        check: ("models:read", PA1, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "scope naming the checked node matches",
        active: true,
        roles: &[&["allow apps:{p_a1}:read"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "scope naming an ancestor matches",
        active: true,
        roles: &[&["allow apps:{ws_a}:read"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA2, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "scope naming a sibling does not match",
        active: true,
        roles: &[&["allow apps:{p_a2}:read"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA1, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "scope naming only a descendant does not match",
        active: true,
        roles: &[&["allow apps:{p_a1}:read"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", WsA, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "scope naming another workspace does not match",
        active: true,
        roles: &[&["allow *:{ws_b}:*"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA1, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "scope naming the checked resource matches",
        active: true,
        roles: &[&["allow secrets:{r1}:read"]],
        bindings: &[(1, WsA, None)],
        check: ("secrets:read", PA1, Some(R1)),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "scope naming another resource does not match",
        active: true,
        roles: &[&["allow secrets:{r1}:read"]],
        bindings: &[(1, WsA, None)],
        check: ("secrets:read", PA1, Some(R2)),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "scope naming a resource does not match a check without a resource",
        active: true,
        roles: &[&["allow secrets:{r1}:read"]],
        bindings: &[(1, WsA, None)],
        check: ("secrets:read", PA1, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "a resource-scoped policy still needs its binding on the path",
        active: true,
        roles: &[&["allow secrets:{r1}:read"]],
        bindings: &[(1, WsB, None)],
        check: ("secrets:read", PA1, Some(R1)),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
    Case {
        name: "scope naming a node matches a resource inside it",
        active: true,
        roles: &[&["allow secrets:{ws_a}:read"]],
        bindings: &[(1, Org, None)],
        check: ("secrets:read", PA1, Some(R2)),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    // Step 4: deny wins, effects add up.
    Case {
        name: "deny at the org beats allow at the project",
        active: true,
        roles: &[APPS_READ, &["deny apps:*:read"]],
        bindings: &[(1, PA1, None), (2, Org, None)],
        check: ("apps:read", PA1, None),
        allowed: false,
        reasons: &[Want::P(2, 0, Deny)],
    },
    Case {
        name: "deny beats admin at the same node",
        active: true,
        roles: &[ADMIN, &["deny secrets:*:*"]],
        bindings: &[(1, Org, None), (2, Org, None)],
        check: ("secrets:read", WsB, None),
        allowed: false,
        reasons: &[Want::P(2, 0, Deny)],
    },
    Case {
        name: "deny inside one role beats its own allow",
        active: true,
        roles: &[&["allow *:*:*", "deny apps:*:delete"]],
        bindings: &[(1, WsA, None)],
        check: ("apps:delete", PA1, None),
        allowed: false,
        reasons: &[Want::P(1, 1, Deny)],
    },
    Case {
        name: "a deny of another action leaves the allow",
        active: true,
        roles: &[&["allow *:*:*", "deny apps:*:delete"]],
        bindings: &[(1, WsA, None)],
        check: ("apps:write", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "a deny scoped to one resource leaves the others",
        active: true,
        roles: &[&["allow apps:*:read", "deny apps:{r1}:read"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA1, Some(R2)),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "a deny scoped to one resource denies it",
        active: true,
        roles: &[&["allow apps:*:read", "deny apps:{r1}:read"]],
        bindings: &[(1, Org, None)],
        check: ("apps:read", PA1, Some(R1)),
        allowed: false,
        reasons: &[Want::P(1, 1, Deny)],
    },
    Case {
        name: "a deny scoped to another workspace leaves this one",
        active: true,
        roles: &[ADMIN, &["deny *:{ws_b}:*"]],
        bindings: &[(1, Org, None), (2, Org, None)],
        check: ("apps:read", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "a deny bound on a sibling project does not deny here",
        active: true,
        roles: &[ADMIN, &["deny *:*:*"]],
        bindings: &[(1, Org, None), (2, PA2, None)],
        check: ("apps:read", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "every matching deny is a reason, allows are not",
        active: true,
        roles: &[&["allow apps:*:read", "deny apps:*:*"], &["deny *:*:read"]],
        bindings: &[(1, Org, None), (2, WsA, None), (1, PA1, None)],
        check: ("apps:read", PA1, None),
        allowed: false,
        reasons: &[
            Want::P(1, 1, Deny),
            Want::P(2, 0, Deny),
            Want::P(3, 1, Deny),
        ],
    },
    Case {
        name: "every matching allow is a reason",
        active: true,
        roles: &[
            &["allow apps:*:read", "allow *:*:*"],
            &["allow apps:{ws_a}:*"],
        ],
        bindings: &[(1, Org, None), (2, WsA, None)],
        check: ("apps:read", PA1, None),
        allowed: true,
        reasons: &[
            Want::P(1, 0, Allow),
            Want::P(1, 1, Allow),
            Want::P(2, 0, Allow),
        ],
    },
    Case {
        name: "roles at several nodes add up (first role)",
        active: true,
        roles: &[APPS_READ, &["allow models:*:manage"]],
        bindings: &[(1, Org, None), (2, WsA, None)],
        check: ("apps:read", PA1, None),
        allowed: true,
        reasons: &[Want::P(1, 0, Allow)],
    },
    Case {
        name: "roles at several nodes add up (second role)",
        active: true,
        roles: &[APPS_READ, &["allow models:*:manage"]],
        bindings: &[(1, Org, None), (2, WsA, None)],
        check: ("models:manage", PA1, None),
        allowed: true,
        reasons: &[Want::P(2, 0, Allow)],
    },
    Case {
        name: "roles add up but grant nothing beyond their union",
        active: true,
        roles: &[APPS_READ, &["allow models:*:manage"]],
        bindings: &[(1, Org, None), (2, WsA, None)],
        check: ("models:manage", WsB, None),
        allowed: false,
        reasons: &[Want::NoMatch],
    },
];

/// Turns the expected reasons of a case into `Reason`s.
pub fn expected_reasons(case: &Case) -> Vec<Reason> {
    case.reasons
        .iter()
        .map(|want| match *want {
            Want::Inactive => Reason::Inactive,
            Want::NoMatch => Reason::NoPolicyMatched,
            Want::P(b, policy_index, effect) => {
                let (role, node, _) = case.bindings[(b - 1) as usize];
                Reason::Policy {
                    binding_id: binding_id(b),
                    role_id: role_id(role),
                    node_id: node.id(),
                    policy_index,
                    effect,
                }
            }
        })
        .collect()
}

/// Runs `f` with the facts and check of a case.
pub fn with_case<T>(case: &Case, f: impl FnOnce(&Facts<'_>, &Check<'_>) -> T) -> T {
    let catalog = Catalog::builtin();
    let roles = role_set(&catalog, case.roles);
    let bindings = bindings(case.bindings);
    let facts = Facts {
        principal_active: case.active,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let (type_action, node, resource) = case.check;
    let path = node.path();
    f(&facts, &check(&catalog, type_action, &path, resource))
}

#[test]
fn every_rule() {
    for case in CASES {
        let decision = with_case(case, decide);
        let want = Decision {
            allowed: case.allowed,
            reasons: expected_reasons(case),
        };
        assert_eq!(decision, want, "{}", case.name);
    }
}

#[test]
fn an_empty_path_matches_nothing() {
    let catalog = Catalog::builtin();
    let roles = role_set(&catalog, &[ADMIN]);
    let bindings = bindings(&[(1, Org, None)]);
    let facts = Facts {
        principal_active: true,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let decision = decide(&facts, &check(&catalog, "apps:read", &[], None));
    assert_eq!(decision.reasons, [Reason::NoPolicyMatched]);
    assert!(!decision.allowed);
}

#[test]
fn indexes_from_another_catalog_do_not_panic() {
    let catalog = Catalog::builtin();
    let roles = role_set(&catalog, &[APPS_READ]);
    let bindings = bindings(&[(1, Org, None)]);
    let facts = Facts {
        principal_active: true,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let path = Org.path();
    let check = Check {
        resource_type: TypeIx(u16::MAX),
        resource_type_name: "?",
        action: ActionIx(u16::MAX),
        path: &path,
        resource_id: None,
        now: now(),
    };
    assert!(!decide(&facts, &check).allowed);
}

/// A binding on one resource applies only to checks of that very resource (type and id), at
/// its node or below; `explain` says why it did not apply to another.
#[test]
fn a_resource_binding_applies_to_that_resource_only() {
    let catalog = Catalog::builtin();
    let roles = role_set(&catalog, &[&["allow secrets:*:*", "allow apps:*:read"]]);
    let mut bindings = bindings(&[(1, WsA, None)]);
    bindings[0].resource = Some(BoundResource {
        resource_type: "secrets".to_owned(),
        id: R2.to_owned(),
    });
    let facts = Facts {
        principal_active: true,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let pa1 = PA1.path();
    let pb1 = PB1.path();
    let rows: [(&str, &[Uuid], Option<&str>, bool); 7] = [
        ("secrets:read", &pa1, Some(R2), true),
        ("secrets:delete", &pa1, Some(R2), true),
        ("secrets:read", &pa1, Some(R1), false),
        ("secrets:read", &pa1, None, false),
        // The role also reads apps, but the binding is on a secret.
        ("apps:read", &pa1, Some(R2), false),
        // Outside the binding's node.
        ("secrets:read", &pb1, Some(R2), false),
        // Ids are compared exactly.
        ("secrets:read", &pa1, Some("openai_api_key"), false),
    ];
    for (type_action, path, resource, want) in rows {
        let c = check(&catalog, type_action, path, resource);
        assert_eq!(
            decide(&facts, &c).allowed,
            want,
            "{type_action} {resource:?}"
        );
        let e = explain(&facts, &c);
        assert_eq!(e.decision, decide(&facts, &c));
        if path == pa1 && !want {
            assert_eq!(
                e.bindings[0].status,
                BindingStatus::OtherResource,
                "{type_action} {resource:?}"
            );
        }
    }
}
