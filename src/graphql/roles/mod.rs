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
pub(crate) mod rules;

pub use mutation::RoleMutation;
pub use query::RoleQuery;
pub(crate) use rules::{ensure_bindable_at, ensure_no_escalation, ensure_not_own_restriction};

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
    /// Shown to people, e.g. "Config profiles".
    pub title: String,
    pub description: String,
    pub actions: Vec<String>,
    /// The unscoped permissions of this type: `apps:*:read`, ...
    pub permissions: Vec<String>,
    /// Each action with its description and permission, in catalog order.
    pub action_details: Vec<PermissionAction>,
    /// Whether the type is one of the gateway's own (with which the API authorizes itself).
    pub gateway: bool,
}

/// One action of a resource type.
#[derive(SimpleObject)]
pub struct PermissionAction {
    pub action: String,
    pub description: String,
    /// `type:*:action`.
    pub permission: String,
    /// The gateway permissions this one also means (a profile's alias), e.g. MAR's
    /// `access:*:read` means `members:*:read` and `roles:*:read`.
    pub also_means: Vec<String>,
}

/// The deployment's profile: the platform whose catalog and built-in roles it serves.
#[derive(SimpleObject)]
pub struct ProfileInfo {
    /// `mechamental`, `mar`, `mentiko`, `inkeep`, `m3forge` or a deployment's own.
    pub name: String,
    pub title: String,
    pub description: String,
    /// The administrator role (the one the last-admin rule protects).
    pub admin_role_id: ID,
    /// The role an invitation without roles gives, at the organization.
    pub default_role_id: ID,
    /// Shorthands accepted on input besides `resource:scope:action` (`type:action`,
    /// `type.action`); output is always `resource:scope:action`.
    pub notations: Vec<String>,
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
    /// Where the role may be bound; a grant elsewhere is refused.
    pub bindable_at: Vec<NodeKind>,
    /// How many bindings of the organization use this role (expired ones too).
    pub binding_count: i64,
    /// How many distinct principals hold this role through a live binding (not expired).
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Role {
    fn new(r: domain::Role, counts: crate::store::RoleCounts) -> Self {
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
            bindable_at: r.bindable_at.iter().map(|k| NodeKind::from(*k)).collect(),
            binding_count: i64::try_from(counts.bindings).unwrap_or(i64::MAX),
            member_count: i64::try_from(counts.members).unwrap_or(i64::MAX),
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

impl From<crate::authz::NodeKind> for NodeKind {
    fn from(k: crate::authz::NodeKind) -> Self {
        match k {
            crate::authz::NodeKind::Organization => Self::Organization,
            crate::authz::NodeKind::Workspace => Self::Workspace,
            crate::authz::NodeKind::Project => Self::Project,
        }
    }
}

impl From<NodeKind> for crate::authz::NodeKind {
    fn from(k: NodeKind) -> Self {
        match k {
            NodeKind::Organization => Self::Organization,
            NodeKind::Workspace => Self::Workspace,
            NodeKind::Project => Self::Project,
        }
    }
}

/// Where a role may be bound, from input: at least one kind.
fn read_bindable_at(kinds: Vec<NodeKind>) -> Result<Vec<crate::authz::NodeKind>, ApiError> {
    if kinds.is_empty() {
        return Err(ApiError::bad_input(
            "bindableAt",
            "name at least one kind of node (ORGANIZATION, WORKSPACE, PROJECT), or leave it out for all",
        ));
    }
    let mut kinds: Vec<crate::authz::NodeKind> = kinds.into_iter().map(Into::into).collect();
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// What kind of principal a binding names.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    User,
    /// Each member of the team holds the binding.
    Team,
    ServiceAccount,
}

/// A role granted to a principal at a node.
#[derive(SimpleObject)]
pub struct RoleBinding {
    pub id: ID,
    pub principal_type: PrincipalType,
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
    /// `creator`, `manual`, `invitation`, `sso`.
    pub source: String,
    /// The one resource the binding is on (it then applies only to checks of that resource);
    /// null for the whole node.
    pub resource_type: Option<String>,
    pub resource_id: Option<ID>,
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
            principal_type: match b.principal_kind {
                domain::PrincipalKind::User => PrincipalType::User,
                domain::PrincipalKind::Team => PrincipalType::Team,
                domain::PrincipalKind::ServiceAccount => PrincipalType::ServiceAccount,
            },
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
            resource_type: b.resource.as_ref().map(|r| r.resource_type.clone()),
            resource_id: b.resource.map(|r| ID(r.id)),
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

/// A description as given (trimmed; none is empty), at most [`MAX_DESCRIPTION`] characters.
pub(crate) fn read_description(raw: Option<&str>) -> Result<String, ApiError> {
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
