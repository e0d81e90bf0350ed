//! Queries of the hierarchy: the organizations I belong to, a node by id or by path.

use async_graphql::{Context, ID, Object, Result};

use super::{Node, Organization, Project, Workspace};
use crate::domain;
use crate::domain::Slug;
use crate::graphql::access::lookups::visible_node;
use crate::graphql::access::member_view;
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::cost;
use crate::graphql::error::{ApiError, Code};

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
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
        ctx.authenticated()?;
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
        ctx.authenticated()?;
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
        ctx.authenticated()?;
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
        ctx.authenticated()?;
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
