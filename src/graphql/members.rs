//! Members: the list an admin sees (active and former-active members with their status, roles
//! per node, last activity and the projects they can reach, plus pending invitations shown as
//! members with status `PENDING`; filters and cursor pagination), and what an admin does to a
//! member: suspend, unsuspend, deactivate, reactivate, set their roles, remove, unlock.

use crate::domain::MemberStatus as DomainStatus;
use crate::domain::Node;
use crate::graphql::access::lookups::{grant_node, org_node, usable_role};
use crate::graphql::access::{Granted, authorize, authorize_any};
use crate::graphql::check::revision_now;
use crate::graphql::error::Code;
use crate::graphql::roles::RoleGrantInput;
use crate::graphql::roles::ensure_no_escalation;
use crate::store::WantedRole;
use async_graphql::Object;
use async_graphql::{ComplexObject, Context, ID, InputObject, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::access::{ApiPermission, OrgView};
use super::context::parse_id;
use super::error::ApiError;
use crate::domain::{self, InvitationStatus};
use crate::graphql::accounts::User;
use crate::graphql::context::ContextExt;
use crate::graphql::invitations::Invitation;

/// Which members to list.
#[derive(InputObject, Default)]
pub struct MemberFilter {
    /// Only these statuses (all when omitted).
    pub statuses: Option<Vec<MemberStatus>>,
    /// Only members whose email or name contains this text (case-insensitive).
    pub search: Option<String>,
    /// Only members holding this role somewhere in the organization.
    pub role_id: Option<ID>,
}

/// A role a member holds at a node.
#[derive(SimpleObject, Clone)]
pub struct MemberRole {
    pub binding_id: Option<ID>,
    pub role_id: ID,
    pub role_name: String,
    /// The organization, a workspace or a project.
    pub node_id: ID,
    pub expires_at: Option<DateTime<Utc>>,
    /// `manual`, `invitation`, `sso`; `invitation` for a pending invitation's grants.
    pub source: String,
    /// The one resource a share is on (null for the whole node).
    pub resource_type: Option<String>,
    pub resource_id: Option<ID>,
}

/// A member of the organization, or a pending invitation (status `PENDING`, no user yet).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Member {
    /// The account; none while the invitation is pending.
    pub user: Option<User>,
    pub email: String,
    pub name: Option<String>,
    pub status: MemberStatus,
    /// When they joined (for a pending invitation: when it was sent).
    pub joined_at: DateTime<Utc>,
    /// The last activity of any of their sessions.
    pub last_active_at: Option<DateTime<Utc>>,
    pub roles: Vec<MemberRole>,
    /// The pending invitation, for status `PENDING`.
    pub invitation: Option<Invitation>,
    #[graphql(skip)]
    organization_id: Uuid,
    #[graphql(skip)]
    user_id: Option<Uuid>,
    /// The member's teams, read for the whole page at once when the query asks for them.
    #[graphql(skip)]
    teams: Option<Vec<domain::Team>>,
}

#[ComplexObject]
impl Member {
    /// The teams the member belongs to, by name. Needs `teams:*:read` at the organization.
    async fn teams(&self, ctx: &Context<'_>) -> Result<Vec<crate::graphql::teams::Team>> {
        let Some(user_id) = self.user_id else {
            return Ok(Vec::new());
        };
        let org = crate::graphql::access::lookups::org_node(ctx, self.organization_id).await?;
        let granted =
            crate::graphql::access::authorize(ctx, &org, ApiPermission::TEAMS_READ, "organization")
                .await?;
        if let Some(teams) = &self.teams {
            return Ok(teams.iter().cloned().map(Into::into).collect());
        }
        Ok(crate::graphql::teams::teams_of(&granted, ctx, user_id).await?)
    }

    /// The projects of the organization this member can read (`workspace:*:read` there), as
    /// the engine decides it now. Empty for pending, suspended and inactive members.
    async fn accessible_projects(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let Some(user_id) = self.user_id else {
            return Ok(Vec::new());
        };
        let view = OrgView::load(ctx, self.organization_id, user_id, "organization").await?;
        if !view.active() {
            return Ok(Vec::new());
        }
        let projects = super::loaders::projects_of_org(ctx, self.organization_id).await?;
        let mut out = Vec::new();
        for p in projects {
            let path = [self.organization_id, p.workspace_id, p.id];
            if view.allows(&path, ApiPermission::WORKSPACE_READ)? {
                out.push(ID(p.id.to_string()));
            }
        }
        Ok(out)
    }
}

/// A page of members.
#[derive(SimpleObject)]
pub struct MemberPage {
    pub members: Vec<Member>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
    /// How many members match the filter, over all pages.
    pub total_count: i32,
}

/// Most members one page may hold.
pub(super) const MAX_PAGE: i32 = 200;

/// The organization's members and pending invitations, filtered, ordered by email, paged.
/// The caller has been authorized (`members:*:read`).
pub async fn member_page(
    ctx: &Context<'_>,
    organization_id: Uuid,
    filter: MemberFilter,
    first: i32,
    after: Option<String>,
) -> Result<MemberPage, ApiError> {
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("`first` must be between 1 and {MAX_PAGE}"),
        ));
    }
    // INVARIANT: its callers authorized for the organization first.
    let store = ctx.unchecked_store();
    let role_filter = filter
        .role_id
        .as_ref()
        .map(|r| parse_id("roleId", r))
        .transpose()?;
    let roles = store.roles(organization_id).await?;
    let role_name = |id: Uuid| {
        roles
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    let mut all: Vec<Member> = Vec::new();
    for o in store.member_overviews(organization_id).await? {
        all.push(Member {
            email: o.member.user.email.clone(),
            name: Some(o.member.user.name.clone()),
            status: o.member.status.into(),
            joined_at: o.member.joined_at,
            last_active_at: o.last_active_at,
            roles: o
                .bindings
                .iter()
                .map(|b| MemberRole {
                    binding_id: Some(ID(b.id.to_string())),
                    role_id: ID(b.role_id.to_string()),
                    role_name: role_name(b.role_id),
                    node_id: ID(b.node_id().to_string()),
                    expires_at: b.expires_at,
                    source: b.source.clone(),
                    resource_type: b.resource.as_ref().map(|r| r.resource_type.clone()),
                    resource_id: b.resource.as_ref().map(|r| ID(r.id.clone())),
                })
                .collect(),
            invitation: None,
            organization_id,
            user_id: Some(o.member.user.id),
            user: Some(o.member.user.into()),
            teams: None,
        });
    }
    let pending = store
        .invitations(
            organization_id,
            &crate::store::InvitationFilter {
                statuses: vec![InvitationStatus::Pending],
                email: None,
            },
        )
        .await?;
    for i in pending {
        all.push(pending_member(i, &role_name));
    }
    let search = filter.search.as_deref().map(|s| s.trim().to_lowercase());
    let statuses = filter.statuses.unwrap_or_default();
    all.retain(|m| {
        (statuses.is_empty() || statuses.contains(&m.status))
            && search.as_deref().is_none_or(|s| {
                m.email.contains(s)
                    || m.name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(s))
            })
            && role_filter
                .is_none_or(|r| m.roles.iter().any(|x| x.role_id.as_str() == r.to_string()))
    });
    // By email; a pending invitation for an email sorts after its member (never both).
    all.sort_by(|a, b| (&a.email, a.user_id.is_none()).cmp(&(&b.email, b.user_id.is_none())));
    let total_count = i32::try_from(all.len()).unwrap_or(i32::MAX);
    let start = match after {
        Some(cursor) => {
            let key = decode_cursor(&cursor)?;
            all.iter().position(|m| m.email > key).unwrap_or(all.len())
        }
        None => 0,
    };
    let size = usize::try_from(first).unwrap_or(0);
    let mut page: Vec<Member> = all.into_iter().skip(start).collect();
    let has_next_page = page.len() > size;
    page.truncate(size);
    if ctx.look_ahead().field("members").field("teams").exists() {
        // One read for the page (each member's field still checks `teams:*:read`).
        let ids: Vec<Uuid> = page.iter().filter_map(|m| m.user_id).collect();
        let mut of = store.teams_of(organization_id, &ids).await?;
        for m in &mut page {
            if let Some(id) = m.user_id {
                m.teams = Some(of.remove(&id).unwrap_or_default());
            }
        }
    }
    Ok(MemberPage {
        end_cursor: page.last().map(|m| encode_cursor(&m.email)),
        has_next_page,
        total_count,
        members: page,
    })
}

fn pending_member(i: domain::Invitation, role_name: &impl Fn(Uuid) -> String) -> Member {
    Member {
        email: i.email.clone(),
        name: i.name.clone(),
        status: MemberStatus::Pending,
        joined_at: i.created_at,
        last_active_at: None,
        roles: i
            .grants
            .iter()
            .map(|g| MemberRole {
                binding_id: None,
                role_id: ID(g.role_id.to_string()),
                role_name: role_name(g.role_id),
                node_id: ID(g.node_id.to_string()),
                expires_at: None,
                source: "invitation".to_owned(),
                resource_type: None,
                resource_id: None,
            })
            .collect(),
        organization_id: i.organization_id,
        user_id: None,
        teams: None,
        user: None,
        invitation: Some(i.into()),
    }
}

fn encode_cursor(email: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(email)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_input("after", "`after` is not a cursor of this list"))
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

#[derive(InputObject)]
pub struct MemberInput {
    pub organization_id: ID,
    pub user_id: ID,
}

#[derive(SimpleObject)]
pub struct MemberStatusPayload {
    pub user_id: ID,
    pub status: MemberStatus,
    pub revision: String,
}

#[derive(InputObject)]
pub struct SetMemberRolesInput {
    pub organization_id: ID,
    pub user_id: ID,
    /// Every role the member should hold (bindings made by SSO group mapping are kept).
    pub roles: Vec<RoleGrantInput>,
}

#[derive(SimpleObject)]
pub struct SetMemberRolesPayload {
    pub roles: Vec<crate::graphql::roles::RoleBinding>,
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    pub removed_user_id: ID,
    pub revision: String,
}

#[derive(InputObject)]
pub struct UnlockMemberInput {
    pub organization_id: ID,
    pub user_id: ID,
}

#[derive(SimpleObject)]
pub struct UnlockMemberPayload {
    pub user_id: ID,
    /// Whether the account was locked (it is not any more, and its failed attempts are
    /// forgotten).
    pub was_locked: bool,
}

/// The organization and member a member mutation targets, after checking `permissions` at
/// the organization. The target must be a member (any status).
async fn member_target(
    ctx: &Context<'_>,
    input: &MemberInput,
    permissions: &[ApiPermission],
) -> Result<(Node, Uuid, domain::Membership, Granted), ApiError> {
    ctx.authenticated()?;
    let org_id = parse_id("organizationId", &input.organization_id)?;
    let org = org_node(ctx, org_id).await?;
    let granted = authorize_any(ctx, &org, permissions, "organization").await?;
    let user_id = parse_id("userId", &input.user_id)?;
    let membership = granted
        .store(ctx)
        .membership(org_id, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok((org, user_id, membership, granted))
}

async fn change_status(
    ctx: &Context<'_>,
    input: MemberInput,
    from: &[DomainStatus],
    to: DomainStatus,
    verb: &str,
) -> Result<MemberStatusPayload> {
    let (org, user_id, membership, granted) =
        member_target(ctx, &input, &[ApiPermission::MEMBERS_MANAGE]).await?;
    if !from.contains(&membership.status) {
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "cannot {verb} a member who is {}",
                membership.status.as_str()
            ),
        )
        .into());
    }
    let updated = granted
        .store(ctx)
        .set_member_status(org.id(), user_id, to, &ctx.request().actor)
        .await?;
    Ok(MemberStatusPayload {
        user_id: ID(user_id.to_string()),
        status: updated.status.into(),
        revision: revision_now(ctx, org.id()).await?,
    })
}

#[derive(Default)]
pub struct MemberMutation;

#[Object]
impl MemberMutation {
    /// Suspends an active member (temporary, reversible): they are denied everything in the
    /// organization at once. Needs `members:*:manage`; never the last active Admin.
    async fn suspend_member(
        &self,
        ctx: &Context<'_>,
        input: MemberInput,
    ) -> Result<MemberStatusPayload> {
        change_status(
            ctx,
            input,
            &[DomainStatus::Active],
            DomainStatus::Suspended,
            "suspend",
        )
        .await
    }

    /// Lifts a suspension. Needs `members:*:manage`.
    async fn unsuspend_member(
        &self,
        ctx: &Context<'_>,
        input: MemberInput,
    ) -> Result<MemberStatusPayload> {
        change_status(
            ctx,
            input,
            &[DomainStatus::Suspended],
            DomainStatus::Active,
            "unsuspend",
        )
        .await
    }

    /// Disables a member (active or suspended) until reactivated. Needs `members:*:manage`;
    /// never the last active Admin.
    async fn deactivate_member(
        &self,
        ctx: &Context<'_>,
        input: MemberInput,
    ) -> Result<MemberStatusPayload> {
        change_status(
            ctx,
            input,
            &[DomainStatus::Active, DomainStatus::Suspended],
            DomainStatus::Inactive,
            "deactivate",
        )
        .await
    }

    /// Makes an inactive member active again. Needs `members:*:manage`.
    async fn reactivate_member(
        &self,
        ctx: &Context<'_>,
        input: MemberInput,
    ) -> Result<MemberStatusPayload> {
        change_status(
            ctx,
            input,
            &[DomainStatus::Inactive],
            DomainStatus::Active,
            "reactivate",
        )
        .await
    }

    /// Sets every role a member holds in the organization (those from SSO group mapping are
    /// kept): missing ones are granted, others revoked; effective at once. Needs what
    /// `grantRole` and `revokeRoleBinding` need for each role added or removed; never leaves
    /// the organization without an active Admin.
    async fn set_member_roles(
        &self,
        ctx: &Context<'_>,
        input: SetMemberRolesInput,
    ) -> Result<SetMemberRolesPayload> {
        let target = MemberInput {
            organization_id: input.organization_id.clone(),
            user_id: input.user_id.clone(),
        };
        let (org, user_id, _, granted) = member_target(
            ctx,
            &target,
            &[ApiPermission::ROLES_WRITE, ApiPermission::MEMBERS_INVITE],
        )
        .await?;
        let org_id = org.id();
        let mut wanted_nodes = Vec::with_capacity(input.roles.len());
        for grant in &input.roles {
            let node = grant_node(ctx, org_id, grant).await?;
            let role = usable_role(ctx, org_id, &grant.role_id, "roleId").await?;
            wanted_nodes.push((role, node));
        }
        let store = granted.store(ctx);
        // No escalation: every role added or removed must be within the caller's permissions.
        let current = store.bindings_of(org_id, user_id).await?;
        for (role, node) in &wanted_nodes {
            let held = current
                .iter()
                .any(|b| b.role_id == role.id && b.node_id() == node.id() && b.resource.is_none());
            if !held {
                crate::graphql::roles::ensure_bindable_at(role, node, "roles")?;
                ensure_no_escalation(granted.view(), role, node)?;
            }
        }
        for b in current
            .iter()
            .filter(|b| b.source != "sso" && b.resource.is_none())
        {
            let kept = wanted_nodes
                .iter()
                .any(|(r, n)| r.id == b.role_id && n.id() == b.node_id());
            if !kept
                && let (Some(role), Some(node)) =
                    (store.role(b.role_id).await?, store.node(b.node_id()).await?)
            {
                crate::graphql::roles::ensure_not_own_restriction(
                    granted.principal_id() == user_id,
                    &role,
                )?;
                ensure_no_escalation(granted.view(), &role, &node)?;
            }
        }
        let wanted: Vec<WantedRole<'_>> = wanted_nodes
            .iter()
            .map(|(role, node)| WantedRole {
                role_id: role.id,
                node,
            })
            .collect();
        let after = store
            .set_member_roles(org_id, user_id, &wanted, &ctx.request().actor)
            .await?;
        Ok(SetMemberRolesPayload {
            roles: crate::graphql::roles::dress_bindings(ctx, org_id, after).await?,
            revision: revision_now(ctx, org_id).await?,
        })
    }

    /// Removes a member: their roles in the organization and their membership go, their
    /// sessions opened for it are revoked; their account and memberships elsewhere stay. Needs
    /// `members:*:remove`; never the last active Admin.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        input: MemberInput,
    ) -> Result<RemoveMemberPayload> {
        let (org, user_id, _, granted) =
            member_target(ctx, &input, &[ApiPermission::MEMBERS_REMOVE]).await?;
        granted
            .store(ctx)
            .remove_member(org.id(), user_id, &ctx.request().actor)
            .await?;
        Ok(RemoveMemberPayload {
            removed_user_id: ID(user_id.to_string()),
            revision: revision_now(ctx, org.id()).await?,
        })
    }
}

#[derive(Default)]
pub struct MemberAccessMutation;

#[Object]
impl MemberAccessMutation {
    /// Unlocks a member's account locked by failed sign-ins. Needs `members:*:manage` at the
    /// organization; the user must be a member of it.
    async fn unlock_member(
        &self,
        ctx: &Context<'_>,
        input: UnlockMemberInput,
    ) -> Result<UnlockMemberPayload> {
        ctx.authenticated()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let org = org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::MEMBERS_MANAGE, "organization").await?;
        let was_locked = granted
            .store(ctx)
            .unlock_member(org_id, user_id, &ctx.request().actor)
            .await?;
        Ok(UnlockMemberPayload {
            user_id: input.user_id,
            was_locked,
        })
    }
}
