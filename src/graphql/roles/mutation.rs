//! Creating, changing and deleting roles; granting and revoking them.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::rules::*;
use super::*;
use crate::domain;
use crate::graphql::access::lookups::{node_by_id, usable_role};
use crate::graphql::access::{ApiPermission, authorize, authorize_any};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::ApiError;
use crate::store::{NewBinding, RoleChanges};

#[derive(InputObject)]
pub struct CreateRoleInput {
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
    pub policies: Vec<PolicyInput>,
    /// Where the role may be bound; every kind of node when omitted.
    pub bindable_at: Option<Vec<NodeKind>>,
}

#[derive(InputObject)]
pub struct UpdateRoleInput {
    pub id: ID,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces every policy of the role when given.
    pub policies: Option<Vec<PolicyInput>>,
    /// Where the role may be bound; refused while the role is bound at a kind it leaves out.
    pub bindable_at: Option<Vec<NodeKind>>,
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
    /// The member, or the team of the organization, to grant the role to (a team's members
    /// all hold it).
    pub principal_id: ID,
    pub role_id: ID,
    /// The organization, workspace or project where the role applies (and below it).
    pub node_id: ID,
    /// When the binding stops applying; none means it never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Share one resource only: a type of the catalog, with `resourceId`. The binding then
    /// applies only to checks of that very resource at the node or below.
    pub resource_type: Option<String>,
    /// The resource's id in the application's words (`chain-42`), with `resourceType`.
    pub resource_id: Option<ID>,
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
) -> Result<(domain::Role, Node, crate::graphql::access::Granted), ApiError> {
    ctx.authenticated()?;
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
    let org = crate::graphql::access::lookups::org_node(ctx, org_id).await?;
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
        let org = crate::graphql::access::lookups::org_node(
            ctx,
            parse_id("organizationId", &input.organization_id)?,
        )
        .await?;
        let granted = authorize(ctx, &org, ApiPermission::ROLES_WRITE, "organization").await?;
        let name = Name::parse("name", &input.name)?;
        let description = read_description(input.description.as_deref())?;
        let policies = read_policies(ctx, input.policies)?;
        let bindable_at = match input.bindable_at {
            None => crate::authz::NodeKind::all(),
            Some(kinds) => read_bindable_at(kinds)?,
        };
        ensure_role_within_caller(granted.view(), &org, &input.name, &policies)?;
        let role = granted
            .store(ctx)
            .create_role(
                org.id(),
                &name,
                &description,
                &policies,
                &bindable_at,
                &ctx.request().actor,
            )
            .await?;
        Ok(RolePayload {
            role: Role::new(role, crate::store::RoleCounts::default()),
            revision: crate::graphql::check::revision_now(ctx, org.id()).await?,
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
            bindable_at: input.bindable_at.map(read_bindable_at).transpose()?,
        };
        // The role as it would be: its holders get what it allows, so the caller must hold it.
        let policies = changes.policies.as_ref().unwrap_or(&current.policies);
        ensure_role_within_caller(granted.view(), &org, &current.name, policies)?;
        let store = granted.store(ctx);
        let role = store.update_role(id, changes, &ctx.request().actor).await?;
        let counts = store.role_counts(org_id).await?;
        let n = counts.get(&role.id).copied().unwrap_or_default();
        Ok(RolePayload {
            role: Role::new(role, n),
            revision: crate::graphql::check::revision_now(ctx, org_id).await?,
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
            revision: crate::graphql::check::revision_now(ctx, org_id).await?,
        })
    }

    /// Grants a role to a member at a node. Needs `roles:*:write` or `members:*:invite` at that
    /// node, and every permission the role allows or its denies cover, there.
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        input: GrantRoleInput,
    ) -> Result<RoleBindingPayload> {
        ctx.authenticated()?;
        let node = node_by_id(ctx, "nodeId", &input.node_id).await?;
        let granted = authorize_any(
            ctx,
            &node,
            &[ApiPermission::ROLES_WRITE, ApiPermission::MEMBERS_INVITE],
            "node",
        )
        .await?;
        let role = usable_role(ctx, node.organization_id(), &input.role_id, "roleId").await?;
        ensure_bindable_at(&role, &node, "nodeId")?;
        let resource = read_resource(
            granted.view().catalog(),
            input.resource_type.as_deref(),
            input.resource_id.as_ref(),
        )?;
        if let Some(r) = &resource {
            ensure_role_reaches(granted.view().catalog(), &role, r)?;
        }
        ensure_no_escalation_on(granted.view(), &role, &node, resource.as_ref())?;
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
                    resource,
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
            revision: crate::graphql::check::revision_now(ctx, node.organization_id()).await?,
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
        ctx.authenticated()?;
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
            let held = crate::graphql::teams::holds(ctx, &granted, &binding).await?;
            ensure_not_own_restriction(held, &role)?;
            ensure_no_escalation_on(granted.view(), &role, &node, binding.resource.as_ref())?;
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
            revision: crate::graphql::check::revision_now(ctx, node.organization_id()).await?,
        })
    }
}

/// The resource a grant names: both `resourceType` and `resourceId`, or neither.
fn read_resource(
    catalog: &crate::authz::Catalog,
    resource_type: Option<&str>,
    resource_id: Option<&ID>,
) -> Result<Option<crate::authz::BoundResource>, ApiError> {
    match (resource_type.map(str::trim), resource_id) {
        (None, None) => Ok(None),
        (Some(t), Some(id)) => {
            if catalog.type_ix(t).is_none() || t == "*" {
                return Err(ApiError::bad_input(
                    "resourceType",
                    format!(
                        "unknown resource type `{}`",
                        t.chars().take(80).collect::<String>()
                    ),
                ));
            }
            let id = crate::authz::resource_id(id.as_str()).ok_or_else(|| {
                ApiError::bad_input(
                    "resourceId",
                    "a resource id has 1 to 200 printable characters, without `:` or spaces",
                )
            })?;
            Ok(Some(crate::authz::BoundResource {
                resource_type: t.to_owned(),
                id,
            }))
        }
        (Some(_), None) => Err(ApiError::bad_input(
            "resourceId",
            "`resourceType` names the type of one resource: give its `resourceId` too",
        )),
        (None, Some(_)) => Err(ApiError::bad_input(
            "resourceType",
            "`resourceId` names one resource: give its `resourceType` too",
        )),
    }
}

/// Refuses a share of one resource through a role that allows nothing on its type: the
/// binding would give nothing, which is surely not what the caller meant.
fn ensure_role_reaches(
    catalog: &crate::authz::Catalog,
    role: &domain::Role,
    resource: &crate::authz::BoundResource,
) -> Result<(), ApiError> {
    let compiled =
        crate::authz::CompiledRole::compile(catalog, role.id, &role.name, &role.policies)
            .map_err(|(_, e)| ApiError::internal(&e))?;
    let t = catalog.type_ix(&resource.resource_type);
    let reaches = compiled.policies.iter().any(|p| {
        p.effect == crate::authz::Effect::Allow
            && p.permission.resource.is_none_or(|r| Some(r) == t)
    });
    if reaches {
        return Ok(());
    }
    Err(ApiError::bad_input(
        "roleId",
        format!(
            "role `{}` gives nothing on a `{}`: share it through a role that allows something on that type",
            role.name, resource.resource_type
        ),
    ))
}
