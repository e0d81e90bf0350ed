//! Teams: named sets of an organization's users. A role bound to a team (`grantRole` with the
//! team's id as `principalId`) is held by every member; `explain` names the team.
//!
//! Changing a team's membership hands out or takes back its bindings, so it is held to the
//! rule of granting and revoking them (SEMANTICS "Changing access"): whoever adds or removes a
//! member must be able to grant every live binding of the team, and nobody takes themselves
//! out of a team whose denies restrict them.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::authz::Effect;
use crate::domain::{self, Name};
use crate::graphql::access::lookups::org_node;
use crate::graphql::access::{ApiPermission, Granted, authorize};
use crate::graphql::accounts::User;
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::cost;
use crate::graphql::error::ApiError;
use crate::graphql::roles::rules::ensure_no_escalation_on;
use crate::graphql::roles::{RoleBinding, dress_bindings};
use crate::store::{MAX_MEMBERS_PER_CALL, MemberSource};

/// A named set of the organization's members. Roles bound to it are held by each member.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Team {
    pub id: ID,
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    uuid: Uuid,
    #[graphql(skip)]
    org: Uuid,
}

impl From<domain::Team> for Team {
    fn from(t: domain::Team) -> Self {
        Self {
            id: ID(t.id.to_string()),
            organization_id: ID(t.organization_id.to_string()),
            name: t.name,
            description: t.description,
            created_at: t.created_at,
            updated_at: t.updated_at,
            uuid: t.id,
            org: t.organization_id,
        }
    }
}

/// A member of a team.
#[derive(SimpleObject)]
pub struct TeamMember {
    pub principal_id: ID,
    /// The account (when it still exists).
    pub user: Option<User>,
    /// `manual`, or `sso` (kept in step with an identity provider's group at each sign-in).
    pub source: String,
    pub added_by: Option<ID>,
    pub added_at: DateTime<Utc>,
}

// INVARIANT: a `Team` object is made only by resolvers that checked `teams:*:read` (or
// `teams:*:manage`) at its organization; its fields answer without checking again.
#[ComplexObject]
impl Team {
    /// The team's members, oldest first.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<TeamMember>> {
        let store = ctx.unchecked_store();
        let members = store
            .team_members(&[self.uuid])
            .await?
            .remove(&self.uuid)
            .unwrap_or_default();
        let ids: Vec<Uuid> = members.iter().map(|m| m.principal_id).collect();
        let users: HashMap<Uuid, domain::User> = store
            .users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        Ok(members
            .into_iter()
            .map(|m| TeamMember {
                principal_id: ID(m.principal_id.to_string()),
                user: users.get(&m.principal_id).cloned().map(User::from),
                source: m.source,
                added_by: m.added_by.map(|a| ID(a.to_string())),
                added_at: m.added_at,
            })
            .collect())
    }

    /// The roles bound to the team, oldest first (expired ones included, marked).
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn role_bindings(&self, ctx: &Context<'_>) -> Result<Vec<RoleBinding>> {
        let bindings = ctx
            .unchecked_store()
            .bindings_of(self.org, self.uuid)
            .await?;
        Ok(dress_bindings(ctx, self.org, bindings).await?)
    }
}

/// The teams of `principals` in the organization, for a resolver that checked `teams:*:read`
/// there.
pub(crate) async fn teams_of(
    granted: &Granted,
    ctx: &Context<'_>,
    principal: Uuid,
) -> Result<Vec<Team>, ApiError> {
    Ok(granted
        .store(ctx)
        .teams_of(granted.organization_id(), &[principal])
        .await?
        .remove(&principal)
        .unwrap_or_default()
        .into_iter()
        .map(Team::from)
        .collect())
}

#[derive(Default)]
pub struct TeamQuery;

#[Object]
impl TeamQuery {
    /// The organization's teams, by name. Needs `teams:*:read` at the organization.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn teams(&self, ctx: &Context<'_>, organization_id: ID) -> Result<Vec<Team>> {
        let org = org_node(ctx, parse_id("organizationId", &organization_id)?).await?;
        let granted = authorize(ctx, &org, ApiPermission::TEAMS_READ, "organization").await?;
        Ok(granted
            .store(ctx)
            .teams(org.id())
            .await?
            .into_iter()
            .map(Team::from)
            .collect())
    }

    /// One team. Needs `teams:*:read` at its organization.
    async fn team(&self, ctx: &Context<'_>, id: ID) -> Result<Team> {
        let (team, _) = team_for(ctx, &id, "id", ApiPermission::TEAMS_READ).await?;
        Ok(team.into())
    }
}

/// The team `id` names, if the caller holds `permission` at its organization (NOT_FOUND for a
/// team of an organization they are not in).
pub(crate) async fn team_for(
    ctx: &Context<'_>,
    id: &ID,
    field: &'static str,
    permission: ApiPermission,
) -> Result<(domain::Team, Granted), ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let team = ctx
        .unchecked_store()
        .team(parse_id(field, id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    let org = org_node(ctx, team.organization_id)
        .await
        .map_err(|_| ApiError::not_found("team"))?;
    let granted = authorize(ctx, &org, permission, "team").await?;
    Ok((team, granted))
}

#[derive(InputObject)]
pub struct CreateTeamInput {
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateTeamInput {
    pub id: ID,
    pub name: Option<String>,
    /// The new description; an empty one clears it.
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteTeamInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct TeamMembersInput {
    pub team_id: ID,
    /// Members of the team's organization (at most 100 per call).
    pub principal_ids: Vec<ID>,
}

#[derive(SimpleObject)]
pub struct TeamPayload {
    pub team: Team,
    /// A token for `atLeast`: checks passing it see this change.
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct TeamMembersPayload {
    pub team: Team,
    /// The principals this call added or removed (those already in, or not in, the team are
    /// left out).
    pub changed: Vec<ID>,
    pub revision: String,
}

/// A team's description: as a role's is read, an empty one meaning none.
fn read_description(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let d = crate::graphql::roles::read_description(raw)?;
    Ok((!d.is_empty()).then_some(d))
}

fn read_principals(ids: &[ID]) -> Result<Vec<Uuid>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_input(
            "principalIds",
            "name at least one member",
        ));
    }
    if ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(ApiError::bad_input(
            "principalIds",
            format!("at most {MAX_MEMBERS_PER_CALL} members per call"),
        ));
    }
    ids.iter().map(|id| parse_id("principalIds", id)).collect()
}

/// Refuses unless the caller may grant (and so revoke) every live binding of the team: adding
/// or removing a member hands it out or takes it back. With `caller_leaves` (the caller takes
/// themselves out, or deletes a team they are in), also refuses when one of its roles denies
/// something: nobody removes a restriction placed on themselves (SEMANTICS "Revoke").
pub(crate) async fn ensure_may_change_members(
    ctx: &Context<'_>,
    granted: &Granted,
    team: &domain::Team,
    caller_leaves: bool,
) -> Result<(), ApiError> {
    let store = granted.store(ctx);
    let now = store.clock().now();
    for b in store.bindings_of(team.organization_id, team.id).await? {
        if !b.is_live(now) {
            continue;
        }
        let Some(role) = store.role(b.role_id).await? else {
            continue;
        };
        if caller_leaves && role.policies.iter().any(|p| p.effect == Effect::Deny) {
            return Err(ApiError::forbidden(format!(
                "team `{}` holds role `{}`, which restricts you; you cannot take yourself out of it",
                team.name, role.name
            )));
        }
        if let Some(node) = store.node(b.node_id()).await? {
            ensure_no_escalation_on(granted.view(), &role, &node, b.resource.as_ref())?;
        }
    }
    Ok(())
}

#[derive(Default)]
pub struct TeamMutation;

#[Object]
impl TeamMutation {
    /// Creates a team. Needs `teams:*:manage` at the organization.
    async fn create_team(&self, ctx: &Context<'_>, input: CreateTeamInput) -> Result<TeamPayload> {
        let org = org_node(ctx, parse_id("organizationId", &input.organization_id)?).await?;
        let granted = authorize(ctx, &org, ApiPermission::TEAMS_MANAGE, "organization").await?;
        let name = Name::parse("name", &input.name)?;
        let description = read_description(input.description.as_deref())?;
        let team = granted
            .store(ctx)
            .create_team(
                org.id(),
                &name,
                description.as_deref(),
                &ctx.request().actor,
            )
            .await?;
        Ok(TeamPayload {
            team: team.into(),
            revision: crate::graphql::check::revision_now(ctx, org.id()).await?,
        })
    }

    /// Renames a team or changes its description. Needs `teams:*:manage` at the organization.
    async fn update_team(&self, ctx: &Context<'_>, input: UpdateTeamInput) -> Result<TeamPayload> {
        let (team, granted) = team_for(ctx, &input.id, "id", ApiPermission::TEAMS_MANAGE).await?;
        let name = input
            .name
            .as_deref()
            .map(|n| Name::parse("name", n))
            .transpose()?;
        let description = match input.description.as_deref() {
            None => None,
            Some(d) => Some(read_description(Some(d))?),
        };
        let updated = granted
            .store(ctx)
            .update_team(
                team.id,
                name.as_ref(),
                description.as_ref().map(|d| d.as_deref()),
                &ctx.request().actor,
            )
            .await?;
        Ok(TeamPayload {
            team: updated.into(),
            revision: crate::graphql::check::revision_now(ctx, team.organization_id).await?,
        })
    }

    /// Deletes a team, its memberships and every role bound to it. Needs `teams:*:manage` at
    /// the organization, and what revoking each of its bindings needs; a member of the team
    /// cannot delete it while its roles deny them something.
    async fn delete_team(&self, ctx: &Context<'_>, input: DeleteTeamInput) -> Result<TeamPayload> {
        let (team, granted) = team_for(ctx, &input.id, "id", ApiPermission::TEAMS_MANAGE).await?;
        let caller = granted.principal_id();
        let store = granted.store(ctx);
        let is_member = store
            .teams_of(team.organization_id, &[caller])
            .await?
            .get(&caller)
            .is_some_and(|ts| ts.iter().any(|t| t.id == team.id));
        ensure_may_change_members(ctx, &granted, &team, is_member).await?;
        let deleted = store.delete_team(team.id, &ctx.request().actor).await?;
        Ok(TeamPayload {
            team: deleted.into(),
            revision: crate::graphql::check::revision_now(ctx, team.organization_id).await?,
        })
    }

    /// Adds members of the organization to a team: they hold its roles from now on. Needs
    /// `teams:*:manage` at the organization, and the power to grant every role bound to the
    /// team where it is bound.
    async fn add_team_members(
        &self,
        ctx: &Context<'_>,
        input: TeamMembersInput,
    ) -> Result<TeamMembersPayload> {
        let (team, granted) =
            team_for(ctx, &input.team_id, "teamId", ApiPermission::TEAMS_MANAGE).await?;
        let principals = read_principals(&input.principal_ids)?;
        ensure_may_change_members(ctx, &granted, &team, false).await?;
        let added = granted
            .store(ctx)
            .add_team_members(
                team.id,
                &principals,
                MemberSource::Manual,
                &ctx.request().actor,
            )
            .await?;
        Ok(TeamMembersPayload {
            changed: added.iter().map(|p| ID(p.to_string())).collect(),
            revision: crate::graphql::check::revision_now(ctx, team.organization_id).await?,
            team: team.into(),
        })
    }

    /// Takes members out of a team: they no longer hold its roles. Needs `teams:*:manage` at
    /// the organization and what revoking each role bound to the team needs; nobody takes
    /// themselves out of a team whose roles deny them something.
    async fn remove_team_members(
        &self,
        ctx: &Context<'_>,
        input: TeamMembersInput,
    ) -> Result<TeamMembersPayload> {
        let (team, granted) =
            team_for(ctx, &input.team_id, "teamId", ApiPermission::TEAMS_MANAGE).await?;
        let principals = read_principals(&input.principal_ids)?;
        let caller_leaves = principals.contains(&granted.principal_id());
        ensure_may_change_members(ctx, &granted, &team, caller_leaves).await?;
        let removed = granted
            .store(ctx)
            .remove_team_members(team.id, &principals, &ctx.request().actor)
            .await?;
        Ok(TeamMembersPayload {
            changed: removed.iter().map(|p| ID(p.to_string())).collect(),
            revision: crate::graphql::check::revision_now(ctx, team.organization_id).await?,
            team: team.into(),
        })
    }
}

/// Whether the caller holds `binding`: it is theirs, or their team's.
pub(crate) async fn holds(
    ctx: &Context<'_>,
    granted: &Granted,
    binding: &domain::RoleBinding,
) -> Result<bool, ApiError> {
    let caller = granted.principal_id();
    if binding.principal_id == caller {
        return Ok(true);
    }
    if binding.principal_kind != domain::PrincipalKind::Team {
        return Ok(false);
    }
    Ok(granted
        .store(ctx)
        .teams_of(binding.organization_id, &[caller])
        .await?
        .get(&caller)
        .is_some_and(|ts| ts.iter().any(|t| t.id == binding.principal_id)))
}
