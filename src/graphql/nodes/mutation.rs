//! Creating, renaming and deleting organizations, workspaces and projects.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::{Node, Organization, Project, Workspace};
use crate::domain;
use crate::domain::{Name, Slug};
use crate::graphql::access::lookups::{dress, org_node, project_for, workspace_for};
use crate::graphql::access::{ApiPermission, authorize};
use crate::graphql::check::revision_now;
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::ApiError;
use crate::store::NodeChanges;

#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Lowercase letters, digits and dashes, 1 to 63 characters; unique across the server.
    pub slug: String,
    pub name: String,
}

#[derive(InputObject)]
pub struct CreateWorkspaceInput {
    pub organization_id: ID,
    /// Lowercase letters, digits and dashes, 1 to 63 characters; unique in the organization.
    pub slug: String,
    pub name: String,
}

#[derive(InputObject)]
pub struct UpdateWorkspaceInput {
    pub id: ID,
    pub slug: Option<String>,
    pub name: Option<String>,
}

#[derive(InputObject)]
pub struct CreateProjectInput {
    pub workspace_id: ID,
    /// Lowercase letters, digits and dashes, 1 to 63 characters; unique in the workspace.
    pub slug: String,
    pub name: String,
}

#[derive(InputObject)]
pub struct UpdateProjectInput {
    pub id: ID,
    pub slug: Option<String>,
    pub name: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct OrganizationPayload {
    pub organization: Organization,
    /// The organization revision after the change (pass as `atLeast`).
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct WorkspacePayload {
    pub workspace: Workspace,
    /// The organization revision after the change (pass as `atLeast`).
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct ProjectPayload {
    pub project: Project,
    /// The organization revision after the change (pass as `atLeast`).
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct DeletePayload {
    pub deleted_id: ID,
    /// The organization revision after the change (pass as `atLeast`).
    pub revision: String,
}

/// Reads the optional slug and name of a rename; at least one is needed.
fn changes(slug: Option<&str>, name: Option<&str>) -> Result<NodeChanges, ApiError> {
    if slug.is_none() && name.is_none() {
        return Err(ApiError::bad_input(
            "slug",
            "give a new `slug`, a new `name`, or both",
        ));
    }
    Ok(NodeChanges {
        slug: slug.map(|s| Slug::parse("slug", s)).transpose()?,
        name: name.map(|n| Name::parse("name", n)).transpose()?,
    })
}

async fn workspace_object(ctx: &Context<'_>, ws: domain::Workspace) -> Result<Workspace> {
    match dress(ctx, domain::Node::Workspace(ws)).await? {
        Node::Workspace(w) => Ok(w),
        _ => Err(ApiError::not_found("workspace").into()),
    }
}

async fn project_object(ctx: &Context<'_>, p: domain::Project) -> Result<Project> {
    match dress(ctx, domain::Node::Project(p)).await? {
        Node::Project(p) => Ok(p),
        _ => Err(ApiError::not_found("project").into()),
    }
}

#[derive(Default)]
pub struct NodeMutation;

#[Object]
impl NodeMutation {
    /// Creates an organization; the caller becomes its first member, holding Admin at the
    /// organization. Needs a session.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<OrganizationPayload> {
        let (user, _) = ctx.account_wide()?;
        may_create_organizations(ctx, user).await?;
        let slug = Slug::parse("slug", &input.slug)?;
        let name = Name::parse("name", &input.name)?;
        // INVARIANT: the caller's own account or memberships, of no organization.
        let org = ctx
            .unchecked_store()
            .create_organization(user.id, &slug, &name, &ctx.request().actor)
            .await?;
        Ok(OrganizationPayload {
            revision: revision_now(ctx, org.id).await?,
            organization: Organization(org),
        })
    }

    /// Creates a workspace. Needs `workspace:*:manage` at the organization.
    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkspaceInput,
    ) -> Result<WorkspacePayload> {
        ctx.authenticated()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let org = org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::WORKSPACE_MANAGE, "organization").await?;
        let slug = Slug::parse("slug", &input.slug)?;
        let name = Name::parse("name", &input.name)?;
        let ws = granted
            .store(ctx)
            .create_workspace(org_id, &slug, &name, &ctx.request().actor)
            .await?;
        Ok(WorkspacePayload {
            revision: revision_now(ctx, ws.organization_id).await?,
            workspace: workspace_object(ctx, ws).await?,
        })
    }

    /// Renames a workspace (slug and/or name). Needs `workspace:*:manage` on it.
    async fn update_workspace(
        &self,
        ctx: &Context<'_>,
        input: UpdateWorkspaceInput,
    ) -> Result<WorkspacePayload> {
        let (ws, granted) = workspace_for(ctx, &input.id, ApiPermission::WORKSPACE_MANAGE).await?;
        let changes = changes(input.slug.as_deref(), input.name.as_deref())?;
        let ws = granted
            .store(ctx)
            .update_workspace(ws.id, changes, &ctx.request().actor)
            .await?;
        Ok(WorkspacePayload {
            revision: revision_now(ctx, ws.organization_id).await?,
            workspace: workspace_object(ctx, ws).await?,
        })
    }

    /// Deletes a workspace with its projects and every role binding on them.
    /// Needs `workspace:*:manage` on it.
    async fn delete_workspace(
        &self,
        ctx: &Context<'_>,
        input: DeleteInput,
    ) -> Result<DeletePayload> {
        let (ws, granted) = workspace_for(ctx, &input.id, ApiPermission::WORKSPACE_MANAGE).await?;
        granted
            .store(ctx)
            .delete_workspace(ws.id, &ctx.request().actor)
            .await?;
        Ok(DeletePayload {
            deleted_id: input.id,
            revision: revision_now(ctx, ws.organization_id).await?,
        })
    }

    /// Creates a project in a workspace. Needs `workspace:*:write` on the workspace.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> Result<ProjectPayload> {
        let (ws, granted) = workspace_for(ctx, &input.workspace_id, ApiPermission::WORKSPACE_WRITE)
            .await
            .map_err(|e| match e.field {
                Some("id") => ApiError {
                    field: Some("workspaceId"),
                    ..e
                },
                _ => e,
            })?;
        let slug = Slug::parse("slug", &input.slug)?;
        let name = Name::parse("name", &input.name)?;
        let p = granted
            .store(ctx)
            .create_project(&ws, &slug, &name, &ctx.request().actor)
            .await?;
        Ok(ProjectPayload {
            revision: revision_now(ctx, p.organization_id).await?,
            project: project_object(ctx, p).await?,
        })
    }

    /// Renames a project (slug and/or name). Needs `workspace:*:write` on it.
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectInput,
    ) -> Result<ProjectPayload> {
        let (p, granted) = project_for(ctx, &input.id, ApiPermission::WORKSPACE_WRITE).await?;
        let changes = changes(input.slug.as_deref(), input.name.as_deref())?;
        let p = granted
            .store(ctx)
            .update_project(p.id, changes, &ctx.request().actor)
            .await?;
        Ok(ProjectPayload {
            revision: revision_now(ctx, p.organization_id).await?,
            project: project_object(ctx, p).await?,
        })
    }

    /// Deletes a project and every role binding on it. Needs `workspace:*:write` on it.
    async fn delete_project(&self, ctx: &Context<'_>, input: DeleteInput) -> Result<DeletePayload> {
        let (p, granted) = project_for(ctx, &input.id, ApiPermission::WORKSPACE_WRITE).await?;
        granted
            .store(ctx)
            .delete_project(p.id, &ctx.request().actor)
            .await?;
        Ok(DeletePayload {
            deleted_id: input.id,
            revision: revision_now(ctx, p.organization_id).await?,
        })
    }
}

/// Whether `user` may create organizations under `IAM_ORG_CREATION`: anyone, or only a
/// platform operator whose email is verified (an unverified address could be anyone's).
async fn may_create_organizations(
    ctx: &Context<'_>,
    user: &crate::domain::User,
) -> Result<(), ApiError> {
    let config = &ctx.services().config;
    match config.org_creation {
        crate::config::OrgCreation::Anyone => Ok(()),
        crate::config::OrgCreation::Operators => {
            let named = config
                .platform_operators
                .iter()
                .any(|e| e.trim().eq_ignore_ascii_case(&user.email));
            // INVARIANT: the caller's own account or memberships, of no organization.
            let verified = ctx
                .unchecked_store()
                .user(user.id)
                .await?
                .is_some_and(|u| u.email_verified);
            if named && verified {
                Ok(())
            } else {
                Err(ApiError::forbidden(
                    "only the platform's operators create organizations here; ask one to create yours",
                ))
            }
        }
    }
}
