//! Queries: who am I, and the hierarchy I may see.

use async_graphql::{Context, ID, Object, Result};

use super::access::member_view;
use super::context::{ContextExt, parse_id};
use super::cost;
use super::error::{ApiError, Code};
use super::loaders;
use super::types::{Me, Node, Organization, Project, Workspace};
use crate::domain::{self, Slug};

#[derive(Default)]
pub struct BaseQuery;

#[Object]
impl BaseQuery {
    /// The signed-in caller. Needs a session.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let (user, session) = ctx.signed_in()?;
        Ok(Me {
            user: user.clone(),
            session: session.clone(),
        })
    }

    /// The organizations where the caller is an active member. Needs a session.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        let (user, session) = ctx.signed_in()?;
        // INVARIANT: the caller's own account or memberships, of no organization.
        let mut orgs = ctx.unchecked_store().organizations_of(user.id).await?;
        orgs.retain(|o| session.reaches(o.id));
        Ok(orgs.into_iter().map(Organization).collect())
    }

    /// One organization, by id or by slug. Needs an active membership; anyone else is told
    /// NOT_FOUND.
    async fn organization(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        slug: Option<String>,
    ) -> Result<Organization> {
        ctx.signed_in()?;
        let node = match (id, slug) {
            // INVARIANT: looked up to be checked; nothing is answered before the check.
            (Some(id), None) => ctx.unchecked_store().node(parse_id("id", &id)?).await?,
            (None, Some(slug)) => {
                let slug = Slug::parse("slug", &slug)?;
                // INVARIANT: looked up to be checked; nothing is answered before the check.
                ctx.unchecked_store().node_by_path(&[slug]).await?
            }
            _ => {
                return Err(
                    ApiError::bad_input("id", "give exactly one of `id` and `slug`").into(),
                );
            }
        };
        match node {
            Some(domain::Node::Organization(org)) => {
                member_view(ctx, org.id, "organization").await?;
                Ok(Organization(org))
            }
            _ => Err(ApiError::not_found("organization").into()),
        }
    }

    /// One workspace by id. Needs `workspace:*:read` at it or at one of its projects.
    async fn workspace(&self, ctx: &Context<'_>, id: ID) -> Result<Workspace> {
        ctx.signed_in()?;
        // INVARIANT: looked up to be checked; nothing is answered before the check.
        match ctx.unchecked_store().node(parse_id("id", &id)?).await? {
            Some(node @ domain::Node::Workspace(_)) => match visible_node(ctx, node).await? {
                Node::Workspace(ws) => Ok(ws),
                _ => Err(ApiError::not_found("workspace").into()),
            },
            _ => Err(ApiError::not_found("workspace").into()),
        }
    }

    /// One project by id. Needs `workspace:*:read` at it.
    async fn project(&self, ctx: &Context<'_>, id: ID) -> Result<Project> {
        ctx.signed_in()?;
        // INVARIANT: looked up to be checked; nothing is answered before the check.
        match ctx.unchecked_store().node(parse_id("id", &id)?).await? {
            Some(node @ domain::Node::Project(_)) => match visible_node(ctx, node).await? {
                Node::Project(p) => Ok(p),
                _ => Err(ApiError::not_found("project").into()),
            },
            _ => Err(ApiError::not_found("project").into()),
        }
    }

    /// The node at a slug path: `acme`, `acme/prod` or `acme/prod/billing`. Needs what
    /// `organization`, `workspace` or `project` needs.
    async fn node(&self, ctx: &Context<'_>, path: String) -> Result<Node> {
        ctx.signed_in()?;
        let segments = path
            .split('/')
            .map(|s| Slug::parse("path", s))
            .collect::<Result<Vec<_>, _>>()?;
        if segments.len() > 3 {
            return Err(ApiError::bad_input(
                "path",
                format!("path `{path}` has more than three parts (organization/workspace/project)"),
            )
            .into());
        }
        // INVARIANT: a path that does not exist and one the caller may not see get the same
        // answer (which does not repeat the path either), so no one learns the slugs of another
        // tenant's nodes.
        let missing = || ApiError::not_found("node");
        // INVARIANT: looked up to be checked; nothing is answered before the check.
        match ctx.unchecked_store().node_by_path(&segments).await? {
            Some(node) => match visible_node(ctx, node).await {
                Err(e) if e.code == Code::NotFound => Err(missing().into()),
                other => Ok(other?),
            },
            None => Err(missing().into()),
        }
    }
}

/// Checks that the caller may see `node`, and dresses it as a GraphQL object with its path.
/// Anything they may not see is NOT_FOUND.
pub(super) async fn visible_node(ctx: &Context<'_>, node: domain::Node) -> Result<Node, ApiError> {
    let what = match &node {
        domain::Node::Organization(_) => "organization",
        domain::Node::Workspace(_) => "workspace",
        domain::Node::Project(_) => "project",
    };
    let granted = member_view(ctx, node.organization_id(), what).await?;
    if !super::access::sees(ctx, granted.view(), &node).await? {
        return Err(ApiError::not_found(what));
    }
    dress(ctx, node).await
}

/// A node as a GraphQL object, with the slugs of its ancestors for its path. The caller must
/// have been authorized for it.
pub(super) async fn dress(ctx: &Context<'_>, node: domain::Node) -> Result<Node, ApiError> {
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
