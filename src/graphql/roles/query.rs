//! Queries of roles, bindings and the permission catalog.

use async_graphql::{Context, ID, Object, Result};

use super::*;
use crate::graphql::access::lookups::{node_by_id, usable_role};
use crate::graphql::access::{ApiPermission, authorize};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::cost;
use crate::graphql::error::ApiError;

#[derive(Default)]
pub struct RoleQuery;

#[Object]
impl RoleQuery {
    /// The permission catalog, grouped by resource type. Needs a session.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn permission_catalog(&self, ctx: &Context<'_>) -> Result<Vec<PermissionGroup>> {
        ctx.authenticated()?;
        let catalog = &ctx.services().authz.catalog;
        Ok(catalog
            .types()
            .into_iter()
            .zip(0u16..)
            .map(|((t, actions), ix)| {
                let type_ix = crate::authz::TypeIx(ix);
                let (title, description, described) = catalog.describe(type_ix);
                let action_details = actions
                    .iter()
                    .zip(described)
                    .map(|(a, d)| PermissionAction {
                        action: (*a).to_owned(),
                        description: d.clone(),
                        permission: format!("{t}:*:{a}"),
                        also_means: catalog
                            .aliases()
                            .iter()
                            .filter(|alias| {
                                alias.from.0 == type_ix && catalog.action_name(alias.from.1) == *a
                            })
                            .flat_map(|alias| alias.to.iter())
                            .map(|(tt, ta)| {
                                format!("{}:*:{}", catalog.type_name(*tt), catalog.action_name(*ta))
                            })
                            .collect(),
                    })
                    .collect();
                PermissionGroup {
                    resource_type: t.to_owned(),
                    title: title.to_owned(),
                    description: description.to_owned(),
                    permissions: actions.iter().map(|a| format!("{t}:*:{a}")).collect(),
                    actions: actions.into_iter().map(str::to_owned).collect(),
                    action_details,
                    gateway: crate::authz::GATEWAY_TYPES.iter().any(|g| g.name == t),
                }
            })
            .collect())
    }

    /// The deployment's profile. Needs a session.
    async fn profile(&self, ctx: &Context<'_>) -> Result<ProfileInfo> {
        ctx.authenticated()?;
        let profile = &ctx.services().authz.profile;
        let notations = profile.catalog.notations();
        Ok(ProfileInfo {
            name: profile.name.clone(),
            title: profile.title.clone(),
            description: profile.description.clone(),
            admin_role_id: ID(profile.admin_role().id.to_string()),
            default_role_id: ID(profile.default_role().id.to_string()),
            notations: [
                ("type:action", notations.colon),
                ("type.action", notations.dot),
            ]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n.to_owned())
            .collect(),
        })
    }

    /// The roles usable in an organization (built-in first), with their binding counts.
    /// Needs `roles:*:read` at the organization.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn roles(&self, ctx: &Context<'_>, organization_id: ID) -> Result<Vec<Role>> {
        let org = crate::graphql::access::lookups::org_node(
            ctx,
            parse_id("organizationId", &organization_id)?,
        )
        .await?;
        let granted = authorize(ctx, &org, ApiPermission::ROLES_READ, "organization").await?;
        let store = granted.store(ctx);
        let counts = store.role_counts(org.id()).await?;
        Ok(store
            .roles(org.id())
            .await?
            .into_iter()
            .map(|r| {
                let n = counts.get(&r.id).copied().unwrap_or_default();
                Role::new(r, n)
            })
            .collect())
    }

    /// One role usable in an organization. Needs `roles:*:read` at the organization.
    async fn role(&self, ctx: &Context<'_>, organization_id: ID, id: ID) -> Result<Role> {
        let org = crate::graphql::access::lookups::org_node(
            ctx,
            parse_id("organizationId", &organization_id)?,
        )
        .await?;
        let granted = authorize(ctx, &org, ApiPermission::ROLES_READ, "organization").await?;
        let role = usable_role(ctx, org.id(), &id, "id").await?;
        let counts = granted.store(ctx).role_counts(org.id()).await?;
        let n = counts.get(&role.id).copied().unwrap_or_default();
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
        let caller = ctx.acting()?.principal_id();
        match (node_id, organization_id, principal_id) {
            (Some(node_id), None, None) => {
                let node = node_by_id(ctx, "nodeId", &node_id).await?;
                let granted = authorize(ctx, &node, ApiPermission::MEMBERS_READ, "node").await?;
                let list = granted.store(ctx).bindings_at(&node).await?;
                Ok(dress_bindings(ctx, node.organization_id(), list).await?)
            }
            (None, Some(org_id), Some(principal)) => {
                let org = crate::graphql::access::lookups::org_node(
                    ctx,
                    parse_id("organizationId", &org_id)?,
                )
                .await?;
                let principal = parse_id("principalId", &principal)?;
                let granted = if principal == caller {
                    crate::graphql::access::member_view(ctx, org.id(), "organization").await?
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
