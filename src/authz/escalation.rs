//! No escalation: whether a caller may hand out (or take back) a set of policies at a node,
//! as SEMANTICS.md "Changing access (no escalation)" says.
//!
//! One rule serves granting, revoking, invitations, SSO group mappings and writing a role: every
//! permission that an allow policy of the role would give, and every permission that a deny
//! policy of the role would cover, must be allowed to the caller wherever the binding could
//! reach. A policy is expanded into the concrete `(type, action)` pairs of the catalog it
//! matches (`*:*:*` is every pair), and for each pair the caller must:
//! - be allowed it at the node (for a policy scoped to a node or resource off the node's path,
//!   at that target: the check names it as the resource), and
//! - have no live deny of their own that covers the pair anywhere in the organization (a deny
//!   bound below the node, or scoped to something below it, narrows what the caller holds
//!   there; without the tree at hand the engine counts every deny, which can refuse a change
//!   that a deny in an unrelated branch would not have touched, never the other way round).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::catalog::{ActionIx, Catalog, TypeIx};
use super::engine::{Check, Facts, decide};
use super::permission::{Effect, Permission, Scope};
use super::role::CompiledPolicy;

/// The first permission a caller lacks to hand out some policies, as a concrete
/// `(type, scope, action)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lacking {
    /// The index of the role's policy that needs it.
    pub policy_index: usize,
    pub effect: Effect,
    pub permission: Permission,
}

/// Whether the caller (`caller`'s facts) may hand out `policies` through a binding at the node
/// whose path (root first) is `path` (and, for a binding that names one resource, on that
/// resource: `(type, id)`); `None` when they may, else the first permission they lack.
///
/// A binding on one resource reaches only checks of that resource, so only the pairs of its
/// type count, each checked on that resource, and a policy scoped to another resource off the
/// path can never apply through it.
pub fn first_lacking(
    catalog: &Catalog,
    caller: &Facts<'_>,
    policies: &[CompiledPolicy],
    path: &[Uuid],
    resource: Option<(TypeIx, &str)>,
    now: DateTime<Utc>,
) -> Option<Lacking> {
    let pairs = catalog.pairs();
    for policy in policies {
        let (index, p) = (policy.index, &policy.permission);
        let target = match &p.scope {
            Scope::Target(t) if !t.node.is_some_and(|n| path.contains(&n)) => Some(&*t.id),
            Scope::Any | Scope::Target(_) => None,
        };
        let resource_id = match (resource, target) {
            (Some((_, id)), Some(target)) if target != id => continue,
            (Some((_, id)), _) => Some(id),
            (None, target) => target,
        };
        for &(t, a) in &pairs {
            if p.resource.is_some_and(|r| r != t) || p.action.is_some_and(|x| x != a) {
                continue;
            }
            if resource.is_some_and(|(rt, _)| rt != t) {
                continue;
            }
            let check = Check {
                resource_type: t,
                resource_type_name: catalog.type_name(t),
                action: a,
                path,
                resource_id,
                now,
            };
            if !decide(caller, &check).allowed || has_deny_covering(caller, t, a, now) {
                return Some(Lacking {
                    policy_index: index,
                    effect: policy.effect,
                    permission: Permission {
                        resource: Some(t),
                        scope: p.scope.clone(),
                        action: Some(a),
                    },
                });
            }
        }
    }
    None
}

/// Whether any live binding of the caller carries a deny policy that matches `(t, a)`, at any
/// node and with any scope.
fn has_deny_covering(caller: &Facts<'_>, t: TypeIx, a: ActionIx, now: DateTime<Utc>) -> bool {
    caller
        .bindings
        .iter()
        .filter(|b| !b.is_expired(now))
        .filter_map(|b| caller.roles.get(b.role_id))
        .flat_map(|r| r.policies.iter())
        .any(|p| {
            p.effect == Effect::Deny
                && p.permission.resource.is_none_or(|r| r == t)
                && p.permission.action.is_none_or(|x| x == a)
        })
}

/// Whether any of `policies` denies (such a binding restricts its holder).
pub fn has_deny(policies: &[CompiledPolicy]) -> bool {
    policies.iter().any(|p| p.effect == Effect::Deny)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{BindingFact, CompiledRole, Policy, RoleSet};

    const ORG: Uuid = Uuid::from_u128(1);
    const WS: Uuid = Uuid::from_u128(2);
    const OTHER_WS: Uuid = Uuid::from_u128(3);
    const RES: Uuid = Uuid::from_u128(4);

    fn role(catalog: &Catalog, id: u128, policies: &[Policy]) -> CompiledRole {
        CompiledRole::compile(catalog, Uuid::from_u128(id), "r", policies).unwrap()
    }

    fn allow(p: &str) -> Policy {
        Policy::allow(
            p.replace("ORG", &ORG.to_string())
                .replace("WS", &WS.to_string()),
        )
    }

    fn deny(p: &str) -> Policy {
        Policy::deny(
            p.replace("ORG", &ORG.to_string())
                .replace("WS", &WS.to_string()),
        )
    }

    /// (caller's bindings as (policies, node, expired), policies handed out, at path, allowed)
    #[test]
    fn handing_out_is_bounded_by_what_the_caller_holds() {
        let catalog = Catalog::builtin();
        let now = Utc::now();
        let past = now - chrono::Duration::hours(1);
        let res = RES.to_string();
        let scoped_res = format!("apps:{res}:read");
        let other = format!("apps:{OTHER_WS}:read");
        type Row<'a> = (
            &'a str,
            Vec<(Vec<Policy>, Uuid, bool)>,
            Vec<Policy>,
            Vec<Uuid>,
            bool,
        );
        let rows: Vec<Row<'_>> = vec![
            (
                "admin hands out admin",
                vec![(vec![allow("*:*:*")], ORG, false)],
                vec![allow("*:*:*")],
                vec![ORG],
                true,
            ),
            (
                "admin restricts",
                vec![(vec![allow("*:*:*")], ORG, false)],
                vec![deny("*:*:*")],
                vec![ORG],
                true,
            ),
            (
                "role writer cannot hand out *:*:*",
                vec![(vec![allow("roles:*:write")], ORG, false)],
                vec![allow("*:*:*")],
                vec![ORG],
                false,
            ),
            (
                "apps reader hands out apps:*:read",
                vec![(vec![allow("apps:*:read")], ORG, false)],
                vec![allow("apps:*:read")],
                vec![ORG, WS],
                true,
            ),
            (
                "apps:*:* holder, admin asked",
                vec![(vec![allow("apps:*:*")], ORG, false)],
                vec![allow("*:*:*")],
                vec![ORG],
                false,
            ),
            (
                "holder at a workspace, grant at org",
                vec![(vec![allow("apps:*:read")], WS, false)],
                vec![allow("apps:*:read")],
                vec![ORG],
                false,
            ),
            (
                "holder at a workspace, grant there",
                vec![(vec![allow("apps:*:read")], WS, false)],
                vec![allow("apps:*:read")],
                vec![ORG, WS],
                true,
            ),
            (
                "expired holding counts for nothing",
                vec![(vec![allow("*:*:*")], ORG, true)],
                vec![allow("apps:*:read")],
                vec![ORG],
                false,
            ),
            (
                "deny narrows *:*:*",
                vec![
                    (vec![allow("*:*:*")], ORG, false),
                    (vec![deny("secrets:*:read")], WS, false),
                ],
                vec![allow("*:*:*")],
                vec![ORG],
                false,
            ),
            (
                "deny narrows only its pairs",
                vec![
                    (vec![allow("*:*:*")], ORG, false),
                    (vec![deny("secrets:*:read")], WS, false),
                ],
                vec![allow("apps:*:read")],
                vec![ORG],
                true,
            ),
            (
                "an expired deny narrows nothing",
                vec![
                    (vec![allow("*:*:*")], ORG, false),
                    (vec![deny("*:*:*")], ORG, true),
                ],
                vec![allow("*:*:*")],
                vec![ORG],
                true,
            ),
            (
                "deny of what one lacks",
                vec![(vec![allow("members:*:invite")], ORG, false)],
                vec![deny("*:*:*")],
                vec![ORG],
                false,
            ),
            (
                "deny of what one holds",
                vec![(vec![allow("apps:*:read")], ORG, false)],
                vec![deny("apps:*:read")],
                vec![ORG],
                true,
            ),
            (
                "scoped to the node, held at the node",
                vec![(vec![allow("apps:*:read")], WS, false)],
                vec![allow("apps:WS:read")],
                vec![ORG, WS],
                true,
            ),
            (
                "scoped to a resource, held for it",
                vec![(vec![allow(&scoped_res)], ORG, false)],
                vec![allow(&scoped_res)],
                vec![ORG],
                true,
            ),
            (
                "scoped to a resource, not held",
                vec![(vec![allow(&other)], ORG, false)],
                vec![allow(&scoped_res)],
                vec![ORG],
                false,
            ),
            (
                "scoped elsewhere does not give *",
                vec![(vec![allow(&scoped_res)], ORG, false)],
                vec![allow("apps:*:read")],
                vec![ORG],
                false,
            ),
            ("nothing to hand out", vec![], vec![], vec![ORG], true),
        ];
        for (name, held, given, path, expected) in rows {
            let mut roles = RoleSet::new();
            let mut bindings = Vec::new();
            for (i, (policies, node, expired)) in held.into_iter().enumerate() {
                let id = 100 + i as u128;
                roles.insert(role(&catalog, id, &policies));
                bindings.push(BindingFact {
                    id: Uuid::from_u128(1000 + id),
                    role_id: Uuid::from_u128(id),
                    node_id: node,
                    expires_at: expired.then_some(past),
                    team: None,
                    resource: None,
                });
            }
            let facts = Facts {
                principal_active: true,
                scopes: None,
                bindings: &bindings,
                roles: &roles,
            };
            let given = role(&catalog, 99, &given);
            let got = first_lacking(&catalog, &facts, &given.policies, &path, None, now);
            assert_eq!(got.is_none(), expected, "{name}: {got:?}");
        }
    }

    #[test]
    fn an_inactive_caller_hands_out_nothing() {
        let catalog = Catalog::builtin();
        let mut roles = RoleSet::new();
        roles.insert(role(&catalog, 7, &[allow("*:*:*")]));
        let bindings = [BindingFact {
            id: Uuid::from_u128(8),
            role_id: Uuid::from_u128(7),
            node_id: ORG,
            expires_at: None,
            team: None,
            resource: None,
        }];
        let facts = Facts {
            principal_active: false,
            scopes: None,
            bindings: &bindings,
            roles: &roles,
        };
        let given = role(&catalog, 9, &[allow("apps:*:read")]);
        let lack =
            first_lacking(&catalog, &facts, &given.policies, &[ORG], None, Utc::now()).unwrap();
        assert_eq!(lack.policy_index, 0);
        assert_eq!(lack.effect, Effect::Allow);
        assert!(has_deny(
            &role(&catalog, 10, &[deny("apps:*:read")]).policies
        ));
    }

    #[test]
    fn a_share_of_one_resource_needs_only_what_it_reaches_on_that_resource() {
        let catalog = Catalog::builtin();
        let secrets = catalog.type_ix("secrets").unwrap();
        let mut roles = RoleSet::new();
        roles.insert(role(&catalog, 7, &[allow("secrets:*:*")]));
        roles.insert(role(&catalog, 8, &[allow("apps:*:read")]));
        // The caller holds every secrets action on `chain-42`'s key only, and apps:read at WS.
        let bindings = [
            BindingFact {
                id: Uuid::from_u128(17),
                role_id: Uuid::from_u128(7),
                node_id: ORG,
                expires_at: None,
                team: None,
                resource: Some(crate::authz::BoundResource {
                    resource_type: "secrets".to_owned(),
                    id: "OPENAI_API_KEY".to_owned(),
                }),
            },
            BindingFact {
                id: Uuid::from_u128(18),
                role_id: Uuid::from_u128(8),
                node_id: WS,
                expires_at: None,
                team: None,
                resource: None,
            },
        ];
        let facts = Facts {
            principal_active: true,
            scopes: None,
            bindings: &bindings,
            roles: &roles,
        };
        let path = [ORG, WS];
        let on = |id| Some((secrets, id));
        let lacks = |given: &[Policy], resource| {
            let given = role(&catalog, 99, given);
            first_lacking(
                &catalog,
                &facts,
                &given.policies,
                &path,
                resource,
                Utc::now(),
            )
        };
        // On that resource: everything a role can do to a secret, even through `*:*:*`.
        assert_eq!(lacks(&[allow("*:*:*")], on("OPENAI_API_KEY")), None);
        assert_eq!(
            lacks(&[allow("secrets:*:read")], on("OPENAI_API_KEY")),
            None
        );
        // On another secret, or on the whole node: not held.
        assert!(lacks(&[allow("secrets:*:read")], on("OTHER_KEY")).is_some());
        assert!(lacks(&[allow("secrets:*:read")], None).is_some());
        // A policy scoped to another resource can never apply through the share.
        assert_eq!(
            lacks(&[allow("secrets:OTHER_KEY:delete")], on("OPENAI_API_KEY")),
            None
        );
        // Apps are held at the node, and a share of a secret never reaches them.
        assert_eq!(lacks(&[allow("apps:*:read")], None), None);
    }
}
