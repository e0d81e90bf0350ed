//! The hierarchy: organizations, workspaces and projects, as objects (here), queries
//! (`query.rs`) and mutations (`mutation.rs`).
//!
//! An `Organization`, `Workspace` or `Project` object is only ever made for a caller who passed
//! the `read` check on it, so its plain fields need no further check; fields that reveal more
//! (members, invitations, audit) check their own permission.

mod mutation;
mod query;

pub use mutation::NodeMutation;
pub use query::NodeQuery;

use async_graphql::{Context, ID, Object, Result, Union};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::graphql::access::{ApiPermission, authorize, member_view};
use crate::graphql::audit::AuditEvent;
use crate::graphql::cost;
use crate::graphql::error::ApiError;
use crate::graphql::invitations::{Invitation, InvitationStatus};
use crate::graphql::loaders;

/// A tenant: the root of a tree of workspaces and projects.
pub struct Organization(pub domain::Organization);

impl Organization {
    pub fn node(&self) -> domain::Node {
        domain::Node::Organization(self.0.clone())
    }
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether members must sign in through an identity provider (admins keep password
    /// sign-in as a break-glass path). Needs an active membership.
    async fn enforce_sso(&self, ctx: &Context<'_>) -> Result<bool> {
        let granted = crate::graphql::access::member_view(ctx, self.0.id, "organization").await?;
        Ok(granted.store(ctx).enforce_sso(self.0.id).await?)
    }

    /// The organization's email domains, verified or not. Needs `sso:*:manage`.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn domains(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::graphql::sso::OrganizationDomain>> {
        crate::graphql::sso::domains_of(ctx, self.0.id).await
    }

    /// The organization's identity providers. Needs `sso:*:manage`.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn sso_providers(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::graphql::sso::SsoProvider>> {
        let granted =
            authorize(ctx, &self.node(), ApiPermission::SSO_MANAGE, "organization").await?;
        let list = granted.store(ctx).providers(self.0.id).await?;
        Ok(list
            .into_iter()
            .map(|p| crate::graphql::sso::dress(ctx, p))
            .collect())
    }

    /// The slug path of this node (`acme`).
    async fn path(&self) -> &str {
        &self.0.slug
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The workspaces of the organization the caller can see, by slug: those where they hold
    /// `workspace:*:read` at the workspace or at one of its projects.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn workspaces(&self, ctx: &Context<'_>) -> Result<Vec<Workspace>> {
        let granted = member_view(ctx, self.0.id, "organization").await?;
        let (workspaces, projects) = futures_util::try_join!(
            loaders::workspaces_of(ctx, self.0.id),
            loaders::projects_of_org(ctx, self.0.id),
        )?;
        let mut visible = Vec::new();
        for w in workspaces {
            let under: Vec<domain::Node> = projects
                .iter()
                .filter(|p| p.workspace_id == w.id)
                .cloned()
                .map(domain::Node::Project)
                .collect();
            let node = domain::Node::Workspace(w);
            if crate::graphql::access::can_see(granted.view(), &node, &under)?
                && let domain::Node::Workspace(w) = node
            {
                visible.push(Workspace {
                    org_slug: self.0.slug.clone(),
                    inner: w,
                });
            }
        }
        Ok(visible)
    }

    /// The members of the organization, pending invitations included (status `PENDING`), by
    /// email, a page at a time. Needs `members:*:read`.
    #[graphql(
        complexity = "cost::list(cost::page(first, 50, crate::graphql::members::MAX_PAGE), child_complexity)"
    )]
    async fn members(
        &self,
        ctx: &Context<'_>,
        filter: Option<crate::graphql::members::MemberFilter>,
        #[graphql(desc = "At most this many (1 to 200; 50 when omitted).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<crate::graphql::members::MemberPage> {
        let first = first.unwrap_or(50);
        authorize(
            ctx,
            &self.node(),
            ApiPermission::MEMBERS_READ,
            "organization",
        )
        .await?;
        Ok(crate::graphql::members::member_page(
            ctx,
            self.0.id,
            filter.unwrap_or_default(),
            first,
            after,
        )
        .await?)
    }

    /// The invitations of the organization, newest first, optionally only those with these
    /// statuses or whose email contains `email`. Needs `members:*:invite`.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        statuses: Option<Vec<InvitationStatus>>,
        email: Option<String>,
    ) -> Result<Vec<Invitation>> {
        let granted = authorize(
            ctx,
            &self.node(),
            ApiPermission::MEMBERS_INVITE,
            "organization",
        )
        .await?;
        let filter = crate::store::InvitationFilter {
            statuses: statuses
                .unwrap_or_default()
                .into_iter()
                .map(|s| match s {
                    InvitationStatus::Pending => domain::InvitationStatus::Pending,
                    InvitationStatus::Accepted => domain::InvitationStatus::Accepted,
                    InvitationStatus::Revoked => domain::InvitationStatus::Revoked,
                    InvitationStatus::Expired => domain::InvitationStatus::Expired,
                })
                .collect(),
            email,
        };
        let list = granted.store(ctx).invitations(self.0.id, &filter).await?;
        Ok(list.into_iter().map(Invitation::from).collect())
    }

    /// The newest audit events of the organization, newest first (at most 500).
    /// Needs `audit:*:read`.
    #[graphql(complexity = "cost::list(cost::page(Some(limit), 50, 500), child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<AuditEvent>> {
        let granted =
            authorize(ctx, &self.node(), ApiPermission::AUDIT_READ, "organization").await?;
        if !(1..=500).contains(&limit) {
            return Err(ApiError::bad_input("limit", "`limit` must be between 1 and 500").into());
        }
        let list = granted
            .store(ctx)
            .audit_events(Some(self.0.id), u64::try_from(limit).unwrap_or(50))
            .await?;
        Ok(list.into_iter().map(AuditEvent::from).collect())
    }
}

/// A namespace inside an organization (`dev`, `prod`, a team area).
pub struct Workspace {
    pub inner: domain::Workspace,
    pub org_slug: String,
}

#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ID(self.inner.id.to_string())
    }

    async fn slug(&self) -> &str {
        &self.inner.slug
    }

    async fn name(&self) -> &str {
        &self.inner.name
    }

    /// The slug path of this node (`acme/prod`).
    async fn path(&self) -> String {
        format!("{}/{}", self.org_slug, self.inner.slug)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.inner.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.inner.updated_at
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        let org = loaders::organization(ctx, self.inner.organization_id)
            .await?
            .ok_or_else(|| ApiError::not_found("organization"))?;
        Ok(Organization(org))
    }

    /// The projects of the workspace where the caller holds `workspace:*:read`, by slug.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn projects(&self, ctx: &Context<'_>) -> Result<Vec<Project>> {
        let granted = member_view(ctx, self.inner.organization_id, "workspace").await?;
        let list = loaders::projects_of(ctx, self.inner.id).await?;
        let mut visible = Vec::new();
        for p in list {
            let path = [p.organization_id, p.workspace_id, p.id];
            if granted
                .view()
                .allows(&path, ApiPermission::WORKSPACE_READ)?
            {
                visible.push(Project {
                    inner: p,
                    org_slug: self.org_slug.clone(),
                    workspace_slug: self.inner.slug.clone(),
                });
            }
        }
        Ok(visible)
    }
}

/// A project inside a workspace.
pub struct Project {
    pub inner: domain::Project,
    /// The slugs of its organization and workspace, which its path begins with.
    pub org_slug: String,
    pub workspace_slug: String,
}

#[Object]
impl Project {
    async fn id(&self) -> ID {
        ID(self.inner.id.to_string())
    }

    async fn slug(&self) -> &str {
        &self.inner.slug
    }

    async fn name(&self) -> &str {
        &self.inner.name
    }

    /// The slug path of this node (`acme/prod/billing`).
    async fn path(&self) -> String {
        format!(
            "{}/{}/{}",
            self.org_slug, self.workspace_slug, self.inner.slug
        )
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.inner.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.inner.updated_at
    }

    async fn workspace(&self, ctx: &Context<'_>) -> Result<Workspace> {
        let ws = loaders::workspace(ctx, self.inner.workspace_id)
            .await?
            .ok_or_else(|| ApiError::not_found("workspace"))?;
        Ok(Workspace {
            inner: ws,
            org_slug: self.org_slug.clone(),
        })
    }
}

/// Any node of the hierarchy.
#[derive(Union)]
pub enum Node {
    Organization(Organization),
    Workspace(Workspace),
    Project(Project),
}
