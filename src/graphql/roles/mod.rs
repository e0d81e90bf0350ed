//! Roles and role bindings: the permission catalog, custom roles, granting and revoking.
//!
//! Granting is bounded by what the granter holds: a role can be granted (or revoked) at a node
//! only by someone who holds, at that node, every permission the role allows and every
//! permission its denies cover ([`crate::authz::first_lacking`]). So `members:*:invite` at a
//! workspace lets its holder hand out Viewer there, but never Admin, nor a deny-all role.
//! Writing a role follows the same rule at the organization, and nobody revokes a binding whose
//! denies restrict themselves.
//!
//! Here: the objects and their reading from input; `rules.rs`, who may grant, revoke and write
//! what; `query.rs` and `mutation.rs`, the API.

mod mutation;
mod query;
mod rules;

pub use mutation::RoleMutation;
pub use query::RoleQuery;
pub(crate) use rules::{ensure_no_escalation, ensure_not_own_restriction};

use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, InputObject, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::authz::{Effect as AuthzEffect, Policy as AuthzPolicy};
use crate::domain::{self, Name, Node};
use crate::graphql::accounts::User;
use crate::graphql::context::ContextExt;
use crate::graphql::error::ApiError;

/// Most policies one role may hold.
const MAX_POLICIES: usize = 200;
/// Longest role description, in characters.
const MAX_DESCRIPTION: usize = 1000;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl From<AuthzEffect> for Effect {
    fn from(e: AuthzEffect) -> Self {
        match e {
            AuthzEffect::Allow => Self::Allow,
            AuthzEffect::Deny => Self::Deny,
        }
    }
}

impl From<Effect> for AuthzEffect {
    fn from(e: Effect) -> Self {
        match e {
            Effect::Allow => Self::Allow,
            Effect::Deny => Self::Deny,
        }
    }
}

/// One statement of a role.
#[derive(SimpleObject, Clone)]
pub struct Policy {
    pub effect: Effect,
    /// `resource:scope:action`, e.g. `apps:*:read`.
    pub permission: String,
}

#[derive(InputObject)]
pub struct PolicyInput {
    pub effect: Effect,
    /// `resource:scope:action`, e.g. `apps:*:read`, `secrets:<workspace-id>:reference`.
    pub permission: String,
}

/// A resource type of the permission catalog with its actions, for UIs that group
/// permissions by resource.
#[derive(SimpleObject)]
pub struct PermissionGroup {
    pub resource_type: String,
    pub actions: Vec<String>,
    /// The unscoped permissions of this type: `apps:*:read`, ...
    pub permissions: Vec<String>,
}

/// A role: built-in (immutable, in every organization) or an organization's own.
#[derive(SimpleObject)]
pub struct Role {
    pub id: ID,
    /// `admin`, `developer`, `operator` or `viewer` for built-in roles.
    pub key: Option<String>,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub organization_id: Option<ID>,
    pub policies: Vec<Policy>,
    /// How many bindings of the organization use this role.
    pub binding_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Role {
    fn new(r: domain::Role, binding_count: u64) -> Self {
        Self {
            id: ID(r.id.to_string()),
            key: r.key,
            name: r.name,
            description: r.description,
            builtin: r.builtin,
            organization_id: r.organization_id.map(|o| ID(o.to_string())),
            policies: r
                .policies
                .into_iter()
                .map(|p| Policy {
                    effect: p.effect.into(),
                    permission: p.permission,
                })
                .collect(),
            binding_count: i64::try_from(binding_count).unwrap_or(i64::MAX),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Organization,
    Workspace,
    Project,
}

/// A role granted to a principal at a node.
#[derive(SimpleObject)]
pub struct RoleBinding {
    pub id: ID,
    pub principal_id: ID,
    /// The principal's account (when it is a user who still exists).
    pub principal: Option<User>,
    pub role_id: ID,
    pub role_name: String,
    pub node_id: ID,
    pub node_kind: NodeKind,
    pub granted_by: Option<ID>,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Past `expiresAt`: the binding applies to nothing (it is kept for the record).
    pub expired: bool,
    /// `creator`, `manual`, `invitation`, later `sso`.
    pub source: String,
}

/// Dresses bindings with their principals and role names.
pub(crate) async fn dress_bindings(
    ctx: &Context<'_>,
    organization_id: Uuid,
    bindings: Vec<domain::RoleBinding>,
) -> Result<Vec<RoleBinding>, ApiError> {
    // INVARIANT: its callers authorized for the organization first.
    let store = ctx.unchecked_store();
    let roles: HashMap<Uuid, String> = store
        .roles(organization_id)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let mut ids: Vec<Uuid> = bindings.iter().map(|b| b.principal_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let users: HashMap<Uuid, domain::User> = store
        .users(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let now = store.clock().now();
    Ok(bindings
        .into_iter()
        .map(|b| RoleBinding {
            id: ID(b.id.to_string()),
            principal_id: ID(b.principal_id.to_string()),
            principal: users.get(&b.principal_id).cloned().map(User::from),
            role_id: ID(b.role_id.to_string()),
            role_name: roles.get(&b.role_id).cloned().unwrap_or_default(),
            node_id: ID(b.node_id().to_string()),
            node_kind: if b.project_id.is_some() {
                NodeKind::Project
            } else if b.workspace_id.is_some() {
                NodeKind::Workspace
            } else {
                NodeKind::Organization
            },
            granted_by: b.granted_by.map(|g| ID(g.to_string())),
            granted_at: b.granted_at,
            expires_at: b.expires_at,
            expired: !b.is_live(now),
            source: b.source,
        })
        .collect())
}

/// Reads and checks a role's policies against the catalog.
fn read_policies(ctx: &Context<'_>, input: Vec<PolicyInput>) -> Result<Vec<AuthzPolicy>, ApiError> {
    if input.len() > MAX_POLICIES {
        return Err(ApiError::bad_input(
            "policies",
            format!("a role may have at most {MAX_POLICIES} policies"),
        ));
    }
    let catalog = &ctx.services().authz.catalog;
    input
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let parsed = catalog
                .parse_permission(p.permission.trim())
                .map_err(|e| ApiError::bad_input("policies", format!("policy {}: {e}", i + 1)))?;
            Ok(AuthzPolicy {
                effect: p.effect.into(),
                permission: catalog.format_permission(&parsed),
            })
        })
        .collect()
}

fn read_description(raw: Option<&str>) -> Result<String, ApiError> {
    let d = raw.unwrap_or_default().trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::bad_input(
            "description",
            format!("a description may have at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(d.to_owned())
}

/// A role at a node: the organization, a workspace or a project.
#[derive(InputObject, Clone)]
pub struct RoleGrantInput {
    pub role_id: ID,
    pub node_id: ID,
}
