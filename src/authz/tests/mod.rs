//! Tests of the decision engine: table-driven tests for every rule of SEMANTICS.md, and a
//! property test that compares [`super::decide`] with a deliberately naive evaluator working
//! on the stored strings.

mod builtin_roles;
mod catalog;
mod engine;
mod explain;
mod permission;
mod profiles;
mod property;
mod reference;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;

/// A small world shared by the table-driven tests:
///
/// ```text
/// org ─┬─ ws_a ─┬─ p_a1        other_org ── other_ws
///      │        └─ p_a2
///      └─ ws_b ─── p_b1
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Org,
    WsA,
    WsB,
    PA1,
    PA2,
    PB1,
    OtherOrg,
    OtherWs,
}

impl Node {
    pub fn id(self) -> Uuid {
        Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | (self as u128 + 1))
    }

    /// Root first, ending at the node itself.
    pub fn path(self) -> Vec<Uuid> {
        use Node::*;
        let nodes: &[Node] = match self {
            Org => &[Org],
            WsA => &[Org, WsA],
            WsB => &[Org, WsB],
            PA1 => &[Org, WsA, PA1],
            PA2 => &[Org, WsA, PA2],
            PB1 => &[Org, WsB, PB1],
            OtherOrg => &[OtherOrg],
            OtherWs => &[OtherOrg, OtherWs],
        };
        nodes.iter().map(|n| n.id()).collect()
    }
}

/// Two resource ids, in an application's own words.
pub const R1: &str = "chain-42";
pub const R2: &str = "OPENAI_API_KEY";

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

pub fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

/// Replaces `{org}`, `{ws_a}`, ..., `{r1}`, `{r2}` in a permission with the ids.
pub fn fill(permission: &str) -> String {
    let mut s = permission.to_owned();
    for (key, id) in [
        ("{org}", Node::Org.id()),
        ("{ws_a}", Node::WsA.id()),
        ("{ws_b}", Node::WsB.id()),
        ("{p_a1}", Node::PA1.id()),
        ("{p_a2}", Node::PA2.id()),
        ("{p_b1}", Node::PB1.id()),
        ("{other_org}", Node::OtherOrg.id()),
    ] {
        s = s.replace(key, &id.to_string());
    }
    s = s.replace("{r1}", R1).replace("{r2}", R2);
    s
}

/// `"allow apps:*:read"` / `"deny *:{ws_a}:*"` into a policy.
pub fn policy(text: &str) -> Policy {
    let (effect, permission) = text.split_once(' ').unwrap();
    Policy {
        effect: Effect::parse(effect).unwrap(),
        permission: fill(permission),
    }
}

pub fn role_id(n: u128) -> Uuid {
    Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 | n)
}

pub fn binding_id(n: u128) -> Uuid {
    Uuid::from_u128(0x2000_0000_0000_4000_8000_0000_0000_0000 | n)
}

/// Compiles roles numbered from 1 in the order given.
pub fn role_set(catalog: &Catalog, roles: &[&[&str]]) -> RoleSet {
    roles
        .iter()
        .zip(1..)
        .map(|(policies, n)| {
            let policies: Vec<Policy> = policies.iter().map(|p| policy(p)).collect();
            CompiledRole::compile(catalog, role_id(n), &format!("role {n}"), &policies).unwrap()
        })
        .collect()
}

/// Bindings numbered from 1: `(role number, node, expires in hours from now)`.
pub fn bindings(list: &[(u128, Node, Option<i64>)]) -> Vec<BindingFact> {
    list.iter()
        .zip(1..)
        .map(|((role, node, expires), n)| BindingFact {
            id: binding_id(n),
            role_id: role_id(*role),
            node_id: node.id(),
            expires_at: expires.map(|h| now() + hours(h)),
            team: None,
            resource: None,
        })
        .collect()
}

/// A check of `type:action` at `path`.
pub fn check<'a>(
    catalog: &Catalog,
    type_action: &'a str,
    path: &'a [Uuid],
    resource_id: Option<&'a str>,
) -> Check<'a> {
    let (t, a) = type_action.split_once(':').unwrap();
    let (resource_type, action) = catalog.resolve(t, a).unwrap();
    Check {
        resource_type,
        resource_type_name: t,
        action,
        path,
        resource_id,
        now: now(),
    }
}
