//! Roles and role bindings: the permission catalog, custom roles, granting and revoking.
//!
//! Granting is bounded by what the granter holds: a role can be granted (or revoked) at a node
//! only by someone who holds, at that node, every permission the role allows and every
//! permission its denies cover ([`crate::authz::first_lacking`]). So `members:*:invite` at a
//! workspace lets its holder hand out Viewer there, but never Admin, nor a deny-all role.
//! Writing a role follows the same rule at the organization, and nobody revokes a binding whose
//! denies restrict themselves.

use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::access::{ApiPermission, OrgView, authorize, authorize_any};
use super::context::{ContextExt, parse_id};
use super::cost;
use super::error::ApiError;
use super::types::User;
use crate::authz::{CompiledRole, Effect as AuthzEffect, Policy as AuthzPolicy};
use crate::domain::{self, Name, Node};
use crate::store::{NewBinding, RoleChanges};

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
    let now = Utc::now();
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

/// Refuses to grant or revoke `role` at `node` unless `view` may hand out its policies there
/// (SEMANTICS "Grant" and "Revoke": every permission the role allows, and every permission its
/// denies cover, must be allowed to the caller at the node; see [`crate::authz::first_lacking`]).
pub(crate) fn ensure_no_escalation(
    view: &OrgView,
    role: &domain::Role,
    node: &Node,
) -> Result<(), ApiError> {
    let catalog = view.catalog();
    let compiled = CompiledRole::compile(catalog, role.id, &role.name, &role.policies)
        .map_err(|(_, e)| ApiError::internal(&e))?;
    ensure_may_hand_out(
        view,
        &compiled.policies,
        &node.path_ids(),
        &role.name,
        "grant or revoke",
    )
}

/// Refuses unless `view` may hand out `policies` at the node with `path`; the message names the
/// role, what it would do and the permission the caller lacks.
pub(crate) fn ensure_may_hand_out(
    view: &OrgView,
    policies: &[crate::authz::CompiledPolicy],
    path: &[Uuid],
    role_name: &str,
    doing: &str,
) -> Result<(), ApiError> {
    let Some(lack) = view.first_lacking(policies, path) else {
        return Ok(());
    };
    let catalog = view.catalog();
    let verb = match lack.effect {
        AuthzEffect::Allow => "allows",
        AuthzEffect::Deny => "denies",
    };
    Err(ApiError::forbidden(format!(
        "role `{}` {verb} `{}`, which you do not hold here; you can only {doing} roles within your own permissions",
        role_name,
        catalog.format_permission(&lack.permission),
    )))
}

/// Refuses to write a role of the organization `org` with `policies` unless `view` may hand
/// them all out at the organization (SEMANTICS "Create or change a role"). A role already bound
/// changes what its holders have; being within the caller's permissions at the organization
/// covers every node it could be bound at.
fn ensure_role_within_caller(
    view: &OrgView,
    org: &Node,
    name: &str,
    policies: &[AuthzPolicy],
) -> Result<(), ApiError> {
    let compiled = CompiledRole::compile(view.catalog(), Uuid::nil(), name, policies)
        .map_err(|(_, e)| ApiError::internal(&e))?;
    ensure_may_hand_out(view, &compiled.policies, &org.path_ids(), name, "write")
}

/// Refuses when `binding` is held by the caller and its role denies anything: nobody removes or
/// replaces a restriction placed on themselves (SEMANTICS "Revoke").
pub(crate) fn ensure_not_own_restriction(
    caller: Uuid,
    principal_id: Uuid,
    role: &domain::Role,
) -> Result<(), ApiError> {
    if principal_id == caller && role.policies.iter().any(|p| p.effect == AuthzEffect::Deny) {
        return Err(ApiError::forbidden(format!(
            "role `{}` restricts you; you cannot remove or replace a binding whose denies apply to yourself",
            role.name
        )));
    }
    Ok(())
}

/// The node with this id, or NOT_FOUND. Needs a session (no probing for ids without one).
pub(crate) async fn node_by_id(
    ctx: &Context<'_>,
    field: &'static str,
    id: &ID,
) -> Result<Node, ApiError> {
    ctx.signed_in()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    ctx.unchecked_store()
        .node(parse_id(field, id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("node"))
}

/// The role with this id if it can be used in `organization_id` (built-in or its own).
pub(crate) async fn usable_role(
    ctx: &Context<'_>,
    organization_id: Uuid,
    id: &ID,
    field: &'static str,
) -> Result<domain::Role, ApiError> {
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    ctx.unchecked_store()
        .role(parse_id(field, id)?)
        .await?
        .filter(|r| r.builtin || r.organization_id == Some(organization_id))
        .ok_or_else(|| ApiError::not_found("role"))
}

#[derive(Default)]
pub struct RoleQuery;

#[Object]
impl RoleQuery {
    /// The permission catalog, grouped by resource type. Needs a session.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn permission_catalog(&self, ctx: &Context<'_>) -> Result<Vec<PermissionGroup>> {
        ctx.signed_in()?;
        Ok(ctx
            .services()
            .authz
            .catalog
            .types()
            .into_iter()
            .map(|(t, actions)| PermissionGroup {
                resource_type: t.to_owned(),
                permissions: actions.iter().map(|a| format!("{t}:*:{a}")).collect(),
                actions: actions.into_iter().map(str::to_owned).collect(),
            })
            .collect())
    }

    /// The roles usable in an organization (built-in first), with their binding counts.
    /// Needs `roles:*:read` at the organization.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn roles(&self, ctx: &Context<'_>, organization_id: ID) -> Result<Vec<Role>> {
        let org =
            super::mutation::org_node(ctx, parse_id("organizationId", &organization_id)?).await?;
        let granted = authorize(ctx, &org, ApiPermission::ROLES_READ, "organization").await?;
        let store = granted.store(ctx);
        let counts = store.binding_counts(org.id()).await?;
        Ok(store
            .roles(org.id())
            .await?
            .into_iter()
            .map(|r| {
                let n = counts.get(&r.id).copied().unwrap_or(0);
                Role::new(r, n)
            })
            .collect())
    }

    /// One role usable in an organization. Needs `roles:*:read` at the organization.
    async fn role(&self, ctx: &Context<'_>, organization_id: ID, id: ID) -> Result<Role> {
        let org =
            super::mutation::org_node(ctx, parse_id("organizationId", &organization_id)?).await?;
        let granted = authorize(ctx, &org, ApiPermission::ROLES_READ, "organization").await?;
        let role = usable_role(ctx, org.id(), &id, "id").await?;
        let counts = granted.store(ctx).binding_counts(org.id()).await?;
        let n = counts.get(&role.id).copied().unwrap_or(0);
        Ok(Role::new(role, n))
    }

    /// Role bindings, either made at one node (`nodeId`; needs `members:*:read` there), or of one
    /// principal in an organization (`organizationId` and `principalId`; needs nothing more
    /// than a membership for one's own, `members:*:read` at the organization for anyone's).
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn role_bindings(
        &self,
        ctx: &Context<'_>,
        node_id: Option<ID>,
        organization_id: Option<ID>,
        principal_id: Option<ID>,
    ) -> Result<Vec<RoleBinding>> {
        let (caller, _) = ctx.signed_in()?;
        let caller = caller.id;
        match (node_id, organization_id, principal_id) {
            (Some(node_id), None, None) => {
                let node = node_by_id(ctx, "nodeId", &node_id).await?;
                let granted = authorize(ctx, &node, ApiPermission::MEMBERS_READ, "node").await?;
                let list = granted.store(ctx).bindings_at(&node).await?;
                Ok(dress_bindings(ctx, node.organization_id(), list).await?)
            }
            (None, Some(org_id), Some(principal)) => {
                let org =
                    super::mutation::org_node(ctx, parse_id("organizationId", &org_id)?).await?;
                let principal = parse_id("principalId", &principal)?;
                let granted = if principal == caller {
                    super::access::member_view(ctx, org.id(), "organization").await?
                } else {
                    authorize(ctx, &org, ApiPermission::MEMBERS_READ, "organization").await?
                };
                let list = granted.store(ctx).bindings_of(org.id(), principal).await?;
                Ok(dress_bindings(ctx, org.id(), list).await?)
            }
            _ => Err(ApiError::bad_input(
                "nodeId",
                "give either `nodeId`, or both `organizationId` and `principalId`",
            )
            .into()),
        }
    }
}

#[derive(InputObject)]
pub struct CreateRoleInput {
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
    pub policies: Vec<PolicyInput>,
}

#[derive(InputObject)]
pub struct UpdateRoleInput {
    pub id: ID,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces every policy of the role when given.
    pub policies: Option<Vec<PolicyInput>>,
}

#[derive(InputObject)]
pub struct DeleteRoleInput {
    pub id: ID,
    /// Delete even while bound, removing the bindings too.
    #[graphql(default = false)]
    pub force: bool,
}

#[derive(InputObject)]
pub struct GrantRoleInput {
    /// The member to grant the role to.
    pub principal_id: ID,
    pub role_id: ID,
    /// The organization, workspace or project where the role applies (and below it).
    pub node_id: ID,
    /// When the binding stops applying; none means it never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct RevokeRoleBindingInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RolePayload {
    pub role: Role,
    /// The organization revision after the change: pass it as `atLeast` to see it anywhere.
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct DeleteRolePayload {
    pub deleted_id: ID,
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct RoleBindingPayload {
    pub binding: RoleBinding,
    /// The organization revision after the change: pass it as `atLeast` to see it anywhere.
    pub revision: String,
}

/// The custom role with this id and its organization, if the caller holds `roles:*:write`
/// there; a built-in role is refused (it can be neither changed nor deleted).
async fn writable_role(
    ctx: &Context<'_>,
    id: &ID,
) -> Result<(domain::Role, Node, super::access::Granted), ApiError> {
    ctx.signed_in()?;
    let id = parse_id("id", id)?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let current = ctx
        .unchecked_store()
        .role(id)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    let Some(org_id) = current.organization_id else {
        return Err(ApiError::bad_input(
            "id",
            format!(
                "`{}` is a built-in role and cannot be changed or deleted",
                current.name
            ),
        ));
    };
    let org = super::mutation::org_node(ctx, org_id).await?;
    let granted = authorize(ctx, &org, ApiPermission::ROLES_WRITE, "role").await?;
    Ok((current, org, granted))
}

#[derive(Default)]
pub struct RoleMutation;

#[Object]
impl RoleMutation {
    /// Creates a custom role. Needs `roles:*:write` at the organization, and every permission the
    /// role allows or its denies cover, there (no escalation).
    async fn create_role(&self, ctx: &Context<'_>, input: CreateRoleInput) -> Result<RolePayload> {
        let org =
            super::mutation::org_node(ctx, parse_id("organizationId", &input.organization_id)?)
                .await?;
        let granted = authorize(ctx, &org, ApiPermission::ROLES_WRITE, "organization").await?;
        let name = Name::parse("name", &input.name)?;
        let description = read_description(input.description.as_deref())?;
        let policies = read_policies(ctx, input.policies)?;
        ensure_role_within_caller(granted.view(), &org, &input.name, &policies)?;
        let role = granted
            .store(ctx)
            .create_role(
                org.id(),
                &name,
                &description,
                &policies,
                &ctx.request().actor,
            )
            .await?;
        Ok(RolePayload {
            role: Role::new(role, 0),
            revision: super::check::revision_now(ctx, org.id()).await?,
        })
    }

    /// Changes a custom role's name, description or policies (built-in roles cannot change).
    /// Needs `roles:*:write` at the role's organization, and every permission the role would
    /// allow or whose denies would cover, there (no escalation).
    async fn update_role(&self, ctx: &Context<'_>, input: UpdateRoleInput) -> Result<RolePayload> {
        let (current, org, granted) = writable_role(ctx, &input.id).await?;
        let (id, org_id) = (current.id, org.id());
        let changes = RoleChanges {
            name: input
                .name
                .as_deref()
                .map(|n| Name::parse("name", n))
                .transpose()?,
            description: input
                .description
                .as_deref()
                .map(|d| read_description(Some(d)))
                .transpose()?,
            policies: input.policies.map(|p| read_policies(ctx, p)).transpose()?,
        };
        // The role as it would be: its holders get what it allows, so the caller must hold it.
        let policies = changes.policies.as_ref().unwrap_or(&current.policies);
        ensure_role_within_caller(granted.view(), &org, &current.name, policies)?;
        let store = granted.store(ctx);
        let role = store.update_role(id, changes, &ctx.request().actor).await?;
        let counts = store.binding_counts(org_id).await?;
        let n = counts.get(&role.id).copied().unwrap_or(0);
        Ok(RolePayload {
            role: Role::new(role, n),
            revision: super::check::revision_now(ctx, org_id).await?,
        })
    }

    /// Deletes a custom role; while it is bound this is a CONFLICT unless `force`, which
    /// removes its bindings. Needs `roles:*:write` at the role's organization.
    async fn delete_role(
        &self,
        ctx: &Context<'_>,
        input: DeleteRoleInput,
    ) -> Result<DeleteRolePayload> {
        let (current, org, granted) = writable_role(ctx, &input.id).await?;
        let (id, org_id) = (current.id, org.id());
        granted
            .store(ctx)
            .delete_role(id, input.force, &ctx.request().actor)
            .await?;
        Ok(DeleteRolePayload {
            deleted_id: input.id,
            revision: super::check::revision_now(ctx, org_id).await?,
        })
    }

    /// Grants a role to a member at a node. Needs `roles:*:write` or `members:*:invite` at that
    /// node, and every permission the role allows or its denies cover, there.
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        input: GrantRoleInput,
    ) -> Result<RoleBindingPayload> {
        ctx.signed_in()?;
        let node = node_by_id(ctx, "nodeId", &input.node_id).await?;
        let granted = authorize_any(
            ctx,
            &node,
            &[ApiPermission::ROLES_WRITE, ApiPermission::MEMBERS_INVITE],
            "node",
        )
        .await?;
        let role = usable_role(ctx, node.organization_id(), &input.role_id, "roleId").await?;
        ensure_no_escalation(granted.view(), &role, &node)?;
        let principal_id = parse_id("principalId", &input.principal_id)?;
        let binding = granted
            .store(ctx)
            .grant_role(
                NewBinding {
                    principal_id,
                    role_id: role.id,
                    node: &node,
                    expires_at: input.expires_at,
                    source: "manual",
                },
                &ctx.request().actor,
            )
            .await?;
        let mut dressed = dress_bindings(ctx, node.organization_id(), vec![binding]).await?;
        let binding = dressed
            .pop()
            .ok_or_else(|| ApiError::not_found("role binding"))?;
        Ok(RoleBindingPayload {
            binding,
            revision: super::check::revision_now(ctx, node.organization_id()).await?,
        })
    }

    /// Revokes a role binding (refused when it would leave the organization without an active
    /// Admin). Needs what granting it needs; nobody revokes a binding whose denies restrict
    /// themselves.
    async fn revoke_role_binding(
        &self,
        ctx: &Context<'_>,
        input: RevokeRoleBindingInput,
    ) -> Result<RoleBindingPayload> {
        ctx.signed_in()?;
        // INVARIANT: looked up to be checked; nothing is answered before the check.
        let lookup = ctx.unchecked_store();
        let binding = lookup
            .binding(parse_id("id", &input.id)?)
            .await?
            .ok_or_else(|| ApiError::not_found("role binding"))?;
        let node = lookup
            .node(binding.node_id())
            .await?
            .ok_or_else(|| ApiError::not_found("role binding"))?;
        let granted = authorize_any(
            ctx,
            &node,
            &[ApiPermission::ROLES_WRITE, ApiPermission::MEMBERS_INVITE],
            "role binding",
        )
        .await?;
        let store = granted.store(ctx);
        if let Some(role) = store.role(binding.role_id).await? {
            ensure_not_own_restriction(granted.user().id, binding.principal_id, &role)?;
            ensure_no_escalation(granted.view(), &role, &node)?;
        }
        let revoked = store
            .revoke_binding(binding.id, &ctx.request().actor)
            .await?;
        let mut dressed = dress_bindings(ctx, node.organization_id(), vec![revoked]).await?;
        let binding = dressed
            .pop()
            .ok_or_else(|| ApiError::not_found("role binding"))?;
        Ok(RoleBindingPayload {
            binding,
            revision: super::check::revision_now(ctx, node.organization_id()).await?,
        })
    }
}
