//! Teams: named sets of an organization's users and service accounts. A binding whose principal is a team is held
//! by each of its members (the facts of a member read their teams' bindings in the same
//! statement as their own, see facts.rs).
//!
//! INVARIANT: a team's members are members of its organization (added only as such; removing
//! a member from the organization removes them from its teams), so a team's bindings never
//! reach outside the organization.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use entity::{membership, role_binding, role_policy, team, team_member};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::change::{ChangeEvent, ChangeKind};
use crate::domain::{Actor, InvalidInput, Name, Team, TeamMember};

/// At most this many members are added or removed in one call.
pub const MAX_MEMBERS_PER_CALL: usize = 100;

impl From<team::Model> for Team {
    fn from(m: team::Model) -> Self {
        Self {
            id: m.id,
            organization_id: m.organization_id,
            name: m.name,
            description: m.description,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<team_member::Model> for TeamMember {
    fn from(m: team_member::Model) -> Self {
        Self {
            team_id: m.team_id,
            principal_id: m.principal_id,
            source: m.source,
            added_by: m.added_by,
            added_at: m.added_at,
        }
    }
}

/// How a team's membership changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberSource {
    Manual,
    /// Kept in step with a group of this identity provider at each sign-in.
    Sso(Uuid),
}

/// The team `id` if it belongs to `organization_id`.
pub(super) async fn team_in<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<team::Model>, StoreError> {
    Ok(team::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|t| t.organization_id == organization_id))
}

/// The team `id`, or NOT_FOUND.
async fn team_row<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<team::Model, StoreError> {
    team::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound("team"))
}

fn name_key(name: &Name) -> String {
    name.as_str().to_lowercase()
}

fn taken(name: &Name) -> impl FnOnce() -> String + '_ {
    move || {
        format!(
            "a team named `{}` already exists in this organization",
            name.as_str()
        )
    }
}

fn team_json(t: &team::Model) -> serde_json::Value {
    json!({ "name": t.name, "description": t.description })
}

/// Whether a team holds, at the organization node, a live binding of a role that denies
/// anything (its members' last-admin standing then depends on who is in it).
async fn denies_at_organization<C: ConnectionTrait>(
    conn: &C,
    team: &team::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let roles: Vec<Uuid> = role_binding::Entity::find()
        .filter(role_binding::Column::OrganizationId.eq(team.organization_id))
        .filter(role_binding::Column::PrincipalId.eq(team.id))
        .filter(role_binding::Column::WorkspaceId.is_null())
        .filter(role_binding::Column::ProjectId.is_null())
        .all(conn)
        .await?
        .into_iter()
        .filter(|b| b.expires_at.is_none_or(|at| at > now))
        .map(|b| b.role_id)
        .collect();
    if roles.is_empty() {
        return Ok(false);
    }
    Ok(role_policy::Entity::find()
        .filter(role_policy::Column::RoleId.is_in(roles))
        .filter(role_policy::Column::Effect.eq("deny"))
        .count(conn)
        .await?
        > 0)
}

impl Store {
    pub async fn create_team(
        &self,
        organization_id: Uuid,
        name: &Name,
        description: Option<&str>,
        actor: &Actor,
    ) -> Result<Team, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let event = revision::bump(
            &txn,
            Change {
                organization_id,
                kind: ChangeKind::TeamCreated,
                principal_id: Some(id),
                node_id: None,
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let model = team::Model {
            id,
            organization_id,
            name: name.as_str().to_owned(),
            name_key: name_key(name),
            description: description.map(str::to_owned),
            created_at: now,
            updated_at: now,
        };
        team::Entity::insert(team::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| StoreError::unique_or_db(e, taken(name)))?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "team.create",
                target_type: "team",
                target_id: Some(id),
                before: None,
                after: Some(team_json(&model)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(model.into())
    }

    /// Renames a team or changes its description (`Some(None)` clears it).
    pub async fn update_team(
        &self,
        id: Uuid,
        name: Option<&Name>,
        description: Option<Option<&str>>,
        actor: &Actor,
    ) -> Result<Team, StoreError> {
        let txn = self.db.begin().await?;
        let before = team_row(&txn, id).await?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: before.organization_id,
                kind: ChangeKind::TeamUpdated,
                principal_id: Some(id),
                node_id: None,
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let mut after = before.clone();
        if let Some(name) = name {
            after.name = name.as_str().to_owned();
            after.name_key = name_key(name);
        }
        if let Some(description) = description {
            after.description = description.map(str::to_owned);
        }
        after.updated_at = self.clock.now();
        let mut active: team::ActiveModel = after.clone().into();
        active.id = sea_orm::ActiveValue::Unchanged(id);
        for column in [
            team::Column::Name,
            team::Column::NameKey,
            team::Column::Description,
            team::Column::UpdatedAt,
        ] {
            sea_orm::ActiveModelTrait::reset(&mut active, column);
        }
        team::Entity::update(active).exec(&txn).await.map_err(|e| {
            StoreError::unique_or_db(e, || {
                format!(
                    "a team named `{}` already exists in this organization",
                    after.name
                )
            })
        })?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(before.organization_id),
                action: "team.update",
                target_type: "team",
                target_id: Some(id),
                before: Some(team_json(&before)),
                after: Some(team_json(&after)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(after.into())
    }

    /// Deletes a team, its memberships, its SSO group mappings and every binding made to it.
    pub async fn delete_team(&self, id: Uuid, actor: &Actor) -> Result<Team, StoreError> {
        let txn = self.db.begin().await?;
        let found = team_row(&txn, id).await?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: found.organization_id,
                kind: ChangeKind::TeamDeleted,
                principal_id: Some(id),
                node_id: None,
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let bindings = role_binding::Entity::delete_many()
            .filter(role_binding::Column::OrganizationId.eq(found.organization_id))
            .filter(role_binding::Column::PrincipalId.eq(id))
            .exec(&txn)
            .await?;
        let members = team_member::Entity::delete_many()
            .filter(team_member::Column::TeamId.eq(id))
            .exec(&txn)
            .await?;
        entity::sso_team_mapping::Entity::delete_many()
            .filter(entity::sso_team_mapping::Column::TeamId.eq(id))
            .exec(&txn)
            .await?;
        team::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(found.organization_id),
                action: "team.delete",
                target_type: "team",
                target_id: Some(id),
                before: Some(json!({
                    "name": found.name,
                    "description": found.description,
                    "members": members.rows_affected,
                    "bindings": bindings.rows_affected,
                })),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(found.into())
    }

    /// Adds members of the team's organization to it; those already in it are left as they
    /// are. Returns the principals added. Refused (nothing added) when one is not a member of
    /// the organization, or when the team's denies would leave no effective admin.
    pub async fn add_team_members(
        &self,
        team_id: Uuid,
        principals: &[Uuid],
        source: MemberSource,
        actor: &Actor,
    ) -> Result<Vec<Uuid>, StoreError> {
        let txn = self.db.begin().await?;
        let (added, events) = add_members(&txn, self, team_id, principals, source, actor).await?;
        txn.commit().await?;
        self.publish(&events);
        Ok(added)
    }

    /// Takes principals out of the team; those not in it are ignored. Returns those removed.
    pub async fn remove_team_members(
        &self,
        team_id: Uuid,
        principals: &[Uuid],
        actor: &Actor,
    ) -> Result<Vec<Uuid>, StoreError> {
        let txn = self.db.begin().await?;
        let (removed, events) = remove_members(&txn, team_id, principals, actor).await?;
        txn.commit().await?;
        self.publish(&events);
        Ok(removed)
    }

    pub async fn team(&self, id: Uuid) -> Result<Option<Team>, StoreError> {
        Ok(team::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(Team::from))
    }

    /// The organization's teams, by name.
    pub async fn teams(&self, organization_id: Uuid) -> Result<Vec<Team>, StoreError> {
        Ok(team::Entity::find()
            .filter(team::Column::OrganizationId.eq(organization_id))
            .order_by_asc(team::Column::NameKey)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Team::from)
            .collect())
    }

    /// The members of each of `teams`, oldest first.
    pub async fn team_members(
        &self,
        teams: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<TeamMember>>, StoreError> {
        let mut by_team: HashMap<Uuid, Vec<TeamMember>> = HashMap::new();
        if teams.is_empty() {
            return Ok(by_team);
        }
        for m in team_member::Entity::find()
            .filter(team_member::Column::TeamId.is_in(teams.iter().copied()))
            .order_by_asc(team_member::Column::AddedAt)
            .order_by_asc(team_member::Column::Id)
            .all(&self.db)
            .await?
        {
            by_team.entry(m.team_id).or_default().push(m.into());
        }
        Ok(by_team)
    }

    /// The teams each of `principals` belongs to in the organization, by name.
    pub async fn teams_of(
        &self,
        organization_id: Uuid,
        principals: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Team>>, StoreError> {
        let mut of: HashMap<Uuid, Vec<Team>> = HashMap::new();
        if principals.is_empty() {
            return Ok(of);
        }
        let rows = team_member::Entity::find()
            .filter(team_member::Column::OrganizationId.eq(organization_id))
            .filter(team_member::Column::PrincipalId.is_in(principals.iter().copied()))
            .all(&self.db)
            .await?;
        let teams: HashMap<Uuid, Team> = team::Entity::find()
            .filter(team::Column::Id.is_in(rows.iter().map(|r| r.team_id)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, Team::from(t)))
            .collect();
        for row in rows {
            if let Some(t) = teams.get(&row.team_id) {
                of.entry(row.principal_id).or_default().push(t.clone());
            }
        }
        for list in of.values_mut() {
            list.sort_by_key(|t| t.name.to_lowercase());
        }
        Ok(of)
    }

    /// Every team a user belongs to, in any organization (what a live subscription of their
    /// own permission changes must hear about).
    pub async fn teams_of_user(&self, user_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(team_member::Entity::find()
            .filter(team_member::Column::PrincipalId.eq(user_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.team_id)
            .collect())
    }
}

/// One revision per member who joins or leaves a team: each member's cached facts must be
/// invalidated (joining, their facts did not name the team yet).
async fn bump_members<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    members: &[Uuid],
    actor: &Actor,
) -> Result<Vec<ChangeEvent>, StoreError> {
    let mut events = Vec::with_capacity(members.len());
    for p in members {
        let change = Change {
            organization_id,
            kind: ChangeKind::TeamMembers,
            principal_id: Some(*p),
            node_id: None,
            role_id: None,
            actor_id: actor.user_id,
        };
        events.push(revision::bump(conn, change).await?);
    }
    Ok(events)
}

/// Adds members inside `conn`'s transaction, one revision per member added.
pub(super) async fn add_members<C: ConnectionTrait>(
    conn: &C,
    store: &Store,
    team_id: Uuid,
    principals: &[Uuid],
    source: MemberSource,
    actor: &Actor,
) -> Result<(Vec<Uuid>, Vec<ChangeEvent>), StoreError> {
    let now = store.clock.now();
    let organization_id = team_row(conn, team_id).await?.organization_id;
    // INVARIANT: locked before the reads below, so that a member removed from the
    // organization (or the team deleted) meanwhile is seen, and no team membership outlives
    // its organization membership.
    revision::lock(conn, organization_id).await?;
    let found = team_row(conn, team_id).await?;
    let members: Vec<Uuid> = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::UserId.is_in(principals.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let accounts =
        super::service_accounts::service_accounts_among(conn, organization_id, principals).await?;
    if let Some(stranger) = principals
        .iter()
        .find(|p| !members.contains(p) && !accounts.contains(p))
    {
        return Err(StoreError::Invalid(InvalidInput::new(
            "principalIds",
            format!(
                "{stranger} is not a member or service account of this organization; invite them first"
            ),
        )));
    }
    let already: Vec<Uuid> = team_member::Entity::find()
        .filter(team_member::Column::TeamId.eq(team_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.principal_id)
        .collect();
    let mut added: Vec<Uuid> = Vec::new();
    for p in principals {
        if !already.contains(p) && !added.contains(p) {
            added.push(*p);
        }
    }
    let events = bump_members(conn, organization_id, &added, actor).await?;
    for p in &added {
        let (source_name, provider) = match source {
            MemberSource::Manual => ("manual", None),
            MemberSource::Sso(provider) => ("sso", Some(provider)),
        };
        team_member::Entity::insert(team_member::ActiveModel {
            id: Set(Uuid::now_v7()),
            team_id: Set(team_id),
            organization_id: Set(organization_id),
            principal_type: Set(if accounts.contains(p) {
                "service_account".to_owned()
            } else {
                "user".to_owned()
            }),
            principal_id: Set(*p),
            source: Set(source_name.to_owned()),
            sso_provider_id: Set(provider),
            added_by: Set(actor.user_id),
            added_at: Set(now),
        })
        .exec_without_returning(conn)
        .await
        .map_err(|e| {
            StoreError::unique_or_db(e, || {
                "the team's members changed meanwhile; try again".into()
            })
        })?;
    }
    if !added.is_empty()
        && denies_at_organization(conn, &found, now).await?
        && !super::bindings::another_admin_remains(
            conn,
            store.profile.admin_role().id,
            organization_id,
            None,
            None,
            now,
        )
        .await?
    {
        return Err(super::bindings::last_admin_error());
    }
    if !added.is_empty() {
        audit::record(
            conn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "team.members_add",
                target_type: "team",
                target_id: Some(team_id),
                before: None,
                after: Some(json!({ "added": added, "source": match source {
                    MemberSource::Manual => "manual",
                    MemberSource::Sso(_) => "sso",
                } })),
            },
        )
        .await?;
    }
    Ok((added, events))
}

/// Removes members inside `conn`'s transaction, one revision per member removed.
pub(super) async fn remove_members<C: ConnectionTrait>(
    conn: &C,
    team_id: Uuid,
    principals: &[Uuid],
    actor: &Actor,
) -> Result<(Vec<Uuid>, Vec<ChangeEvent>), StoreError> {
    let found = team_row(conn, team_id).await?;
    let removed: Vec<Uuid> = team_member::Entity::find()
        .filter(team_member::Column::TeamId.eq(team_id))
        .filter(team_member::Column::PrincipalId.is_in(principals.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.principal_id)
        .collect();
    let events = bump_members(conn, found.organization_id, &removed, actor).await?;
    if !removed.is_empty() {
        team_member::Entity::delete_many()
            .filter(team_member::Column::TeamId.eq(team_id))
            .filter(team_member::Column::PrincipalId.is_in(removed.iter().copied()))
            .exec(conn)
            .await?;
        audit::record(
            conn,
            actor,
            Entry {
                organization_id: Some(found.organization_id),
                action: "team.members_remove",
                target_type: "team",
                target_id: Some(team_id),
                before: Some(json!({ "removed": removed })),
                after: None,
            },
        )
        .await?;
    }
    Ok((removed, events))
}
