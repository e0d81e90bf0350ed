//! GraphQL object types. Each wraps a domain value; none is a database model.
//!
//! An `Organization`, `Workspace` or `Project` object is only ever made for a caller who passed
//! the `read` check on it, so its plain fields need no further check; fields that reveal more
//! (members, invitations, audit) check their own permission.

use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject, Union};
use chrono::{DateTime, Utc};

use super::access::{ApiPermission, authorize, member_view};
use super::context::ContextExt;
use super::cost;
use super::error::ApiError;
use super::loaders;
use crate::domain;

/// An account as others see it.
#[derive(SimpleObject, Clone)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
    /// Whether the owner proved they read `email` (an emailed link or invitation, a password
    /// reset); identity providers never reach an account without it.
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

impl From<domain::User> for User {
    fn from(u: domain::User) -> Self {
        Self {
            id: ID(u.id.to_string()),
            email: u.email,
            name: u.name,
            email_verified: u.email_verified,
            created_at: u.created_at,
        }
    }
}

/// The signed-in caller.
pub struct Me {
    pub user: domain::User,
    pub session: domain::Session,
}

#[Object]
impl Me {
    async fn id(&self) -> ID {
        ID(self.user.id.to_string())
    }

    async fn email(&self) -> &str {
        &self.user.email
    }

    async fn name(&self) -> &str {
        &self.user.name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.user.created_at
    }

    /// Whether the email is proven (read now: the signed-in user may be a cached copy).
    async fn email_verified(&self, ctx: &Context<'_>) -> Result<bool> {
        // INVARIANT: the caller's own account or memberships, of no organization.
        let fresh = ctx.unchecked_store().user(self.user.id).await?;
        Ok(fresh.is_some_and(|u| u.email_verified))
    }

    /// The session this request was made with.
    async fn session(&self) -> Session {
        self.session.clone().into()
    }

    /// The organizations where the caller is an active member.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        // INVARIANT: the caller's own account or memberships, of no organization.
        let mut orgs = ctx.unchecked_store().organizations_of(self.user.id).await?;
        // An SSO session sees only its own organization.
        orgs.retain(|o| self.session.reaches(o.id));
        Ok(orgs.into_iter().map(Organization).collect())
    }
}

/// A signed-in session (its token is never shown again after sign-in).
#[derive(SimpleObject)]
pub struct Session {
    pub id: ID,
    pub method: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<domain::Session> for Session {
    fn from(s: domain::Session) -> Self {
        Self {
            id: ID(s.id.to_string()),
            method: s.method,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_active_at: s.last_active_at,
            expires_at: s.expires_at,
        }
    }
}

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
    async fn domains(&self, ctx: &Context<'_>) -> Result<Vec<super::domains::OrganizationDomain>> {
        super::domains::domains_of(ctx, self.0.id).await
    }

    /// The organization's identity providers. Needs `sso:*:manage`.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn sso_providers(&self, ctx: &Context<'_>) -> Result<Vec<super::sso::SsoProvider>> {
        let granted =
            authorize(ctx, &self.node(), ApiPermission::SSO_MANAGE, "organization").await?;
        let list = granted.store(ctx).providers(self.0.id).await?;
        Ok(list
            .into_iter()
            .map(|p| super::sso::dress(ctx, p))
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
            if super::access::can_see(granted.view(), &node, &under)?
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
        complexity = "cost::list(cost::page(first, 50, super::members::MAX_PAGE), child_complexity)"
    )]
    async fn members(
        &self,
        ctx: &Context<'_>,
        filter: Option<super::members::MemberFilter>,
        #[graphql(desc = "At most this many (1 to 200; 50 when omitted).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<super::members::MemberPage> {
        let first = first.unwrap_or(50);
        authorize(
            ctx,
            &self.node(),
            ApiPermission::MEMBERS_READ,
            "organization",
        )
        .await?;
        Ok(
            super::members::member_page(ctx, self.0.id, filter.unwrap_or_default(), first, after)
                .await?,
        )
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

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Active,
    Suspended,
    Inactive,
}

impl From<domain::MemberStatus> for MemberStatus {
    fn from(s: domain::MemberStatus) -> Self {
        match s {
            domain::MemberStatus::Pending => Self::Pending,
            domain::MemberStatus::Active => Self::Active,
            domain::MemberStatus::Suspended => Self::Suspended,
            domain::MemberStatus::Inactive => Self::Inactive,
        }
    }
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation into an organization.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Invitation {
    pub id: ID,
    pub email: String,
    /// The invitee's name, as the inviter typed it.
    pub name: Option<String>,
    /// The inviter's message.
    pub message: Option<String>,
    pub status: InvitationStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the email was last handed to the SMTP server (none: no email was sent).
    pub sent_at: Option<DateTime<Utc>>,
    /// The roles the invitee gets on acceptance.
    pub grants: Vec<InvitationGrant>,
    #[graphql(skip)]
    pub organization_id: uuid::Uuid,
}

/// A role an invitation grants at a node.
#[derive(SimpleObject)]
pub struct InvitationGrant {
    pub role_id: ID,
    /// The organization, a workspace or a project.
    pub node_id: ID,
}

#[ComplexObject]
impl Invitation {
    async fn organization_id(&self) -> ID {
        ID(self.organization_id.to_string())
    }
}

impl From<domain::Invitation> for Invitation {
    fn from(i: domain::Invitation) -> Self {
        Self {
            id: ID(i.id.to_string()),
            email: i.email,
            name: i.name,
            message: i.message,
            revoked_at: i.revoked_at,
            sent_at: i.sent_at,
            grants: i
                .grants
                .into_iter()
                .map(|g| InvitationGrant {
                    role_id: ID(g.role_id.to_string()),
                    node_id: ID(g.node_id.to_string()),
                })
                .collect(),
            status: match i.status {
                domain::InvitationStatus::Pending => InvitationStatus::Pending,
                domain::InvitationStatus::Accepted => InvitationStatus::Accepted,
                domain::InvitationStatus::Revoked => InvitationStatus::Revoked,
                domain::InvitationStatus::Expired => InvitationStatus::Expired,
            },
            created_at: i.created_at,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
            organization_id: i.organization_id,
        }
    }
}

/// One audited change.
#[derive(SimpleObject)]
pub struct AuditEvent {
    pub id: ID,
    pub actor_id: Option<ID>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub result: String,
    pub before: Option<async_graphql::Json<serde_json::Value>>,
    pub after: Option<async_graphql::Json<serde_json::Value>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<crate::store::AuditEvent> for AuditEvent {
    fn from(e: crate::store::AuditEvent) -> Self {
        Self {
            id: ID(e.id.to_string()),
            actor_id: e.actor_id.map(|a| ID(a.to_string())),
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            result: e.result,
            before: e.before.map(async_graphql::Json),
            after: e.after.map(async_graphql::Json),
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            created_at: e.created_at,
        }
    }
}
