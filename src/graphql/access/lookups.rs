//! Lookups that come before a check: the node, role or organization a request names, read to
//! be checked (NOT_FOUND when missing, so nothing is told before the check), and the nodes a
//! check allowed, dressed as GraphQL objects.

use async_graphql::{Context, ID, Result};
use uuid::Uuid;

use crate::domain;
use crate::graphql::access::{ApiPermission, Granted, authorize, member_view};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::ApiError;
use crate::graphql::loaders;
use crate::graphql::nodes::{Node, Organization, Project, Workspace};
use crate::graphql::roles::RoleGrantInput;

/// The organization with this id as a node, or NOT_FOUND. Needs a session, so that nobody
/// can probe which ids exist without one.
pub(crate) async fn org_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<domain::Node, ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    ctx.unchecked_store()
        .organization(id)
        .await?
        .map(domain::Node::Organization)
        .ok_or_else(|| ApiError::not_found("organization"))
}

/// The workspace with this id, if the caller may do `permission` on it, with the proof.
pub(crate) async fn workspace_for(
    ctx: &Context<'_>,
    id: &ID,
    permission: ApiPermission,
) -> Result<(domain::Workspace, Granted), ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let ws = ctx
        .unchecked_store()
        .workspace(parse_id("id", id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let node = domain::Node::Workspace(ws);
    let granted = authorize(ctx, &node, permission, "workspace").await?;
    match node {
        domain::Node::Workspace(ws) => Ok((ws, granted)),
        _ => Err(ApiError::not_found("workspace")),
    }
}

/// The project with this id, if the caller may do `permission` on it, with the proof.
pub(crate) async fn project_for(
    ctx: &Context<'_>,
    id: &ID,
    permission: ApiPermission,
) -> Result<(domain::Project, Granted), ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let p = ctx
        .unchecked_store()
        .project(parse_id("id", id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let node = domain::Node::Project(p);
    let granted = authorize(ctx, &node, permission, "project").await?;
    match node {
        domain::Node::Project(p) => Ok((p, granted)),
        _ => Err(ApiError::not_found("project")),
    }
}

/// Checks that the caller may see `node`, and dresses it as a GraphQL object with its path.
/// Anything they may not see is NOT_FOUND.
pub(crate) async fn visible_node(ctx: &Context<'_>, node: domain::Node) -> Result<Node, ApiError> {
    let what = match &node {
        domain::Node::Organization(_) => "organization",
        domain::Node::Workspace(_) => "workspace",
        domain::Node::Project(_) => "project",
    };
    let granted = member_view(ctx, node.organization_id(), what).await?;
    if !crate::graphql::access::sees(ctx, granted.view(), &node).await? {
        return Err(ApiError::not_found(what));
    }
    dress(ctx, node).await
}

/// A node as a GraphQL object, with the slugs of its ancestors for its path. The caller must
/// have been authorized for it.
pub(crate) async fn dress(ctx: &Context<'_>, node: domain::Node) -> Result<Node, ApiError> {
    let org_slug = |id| async move {
        loaders::organization(ctx, id)
            .await?
            .map(|o| o.slug)
            .ok_or_else(|| ApiError::not_found("organization"))
    };
    Ok(match node {
        domain::Node::Organization(org) => Node::Organization(Organization(org)),
        domain::Node::Workspace(ws) => Node::Workspace(Workspace {
            org_slug: org_slug(ws.organization_id).await?,
            inner: ws,
        }),
        domain::Node::Project(p) => {
            let ws = loaders::workspace(ctx, p.workspace_id)
                .await?
                .ok_or_else(|| ApiError::not_found("workspace"))?;
            Node::Project(Project {
                org_slug: org_slug(p.organization_id).await?,
                workspace_slug: ws.slug,
                inner: p,
            })
        }
    })
}

/// The node with this id, or NOT_FOUND. Needs a session (no probing for ids without one).
pub(crate) async fn node_by_id(
    ctx: &Context<'_>,
    field: &'static str,
    id: &ID,
) -> Result<domain::Node, ApiError> {
    ctx.authenticated()?;
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

/// The node of a grant, which must be in `organization_id` (NOT_FOUND otherwise).
pub(crate) async fn grant_node(
    ctx: &Context<'_>,
    organization_id: Uuid,
    grant: &RoleGrantInput,
) -> Result<domain::Node, ApiError> {
    let node = node_by_id(ctx, "nodeId", &grant.node_id).await?;
    if node.organization_id() != organization_id {
        return Err(ApiError::not_found("node"));
    }
    Ok(node)
}
