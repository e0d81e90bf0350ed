//! Role bindings: granting and revoking roles at nodes, with last-admin protection.
//!
//! INVARIANT: an organization always keeps at least one *effective admin* (SEMANTICS "Last
//! admin"): an active user with a binding of the built-in Admin role at the organization node
//! that does not expire, and no deny bound to them at the organization node. Every change that could
//! break it checks it after taking the organization's row lock (the revision bump), so two
//! concurrent revocations cannot each leave the other as the "last" admin and both succeed.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use entity::{membership, role, role_binding, role_policy, team_member, user};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::{Actor, InvalidInput, MemberStatus, Node, PrincipalKind, RoleBinding};

impl From<role_binding::Model> for RoleBinding {
    fn from(m: role_binding::Model) -> Self {
        Self {
            id: m.id,
            organization_id: m.organization_id,
            workspace_id: m.workspace_id,
            project_id: m.project_id,
            principal_kind: crate::domain::PrincipalKind::from_stored(&m.principal_type),
            principal_id: m.principal_id,
            role_id: m.role_id,
            granted_by: m.granted_by,
            granted_at: m.granted_at,
            expires_at: m.expires_at,
            source: m.source,
            resource: match (m.resource_type, m.resource_id) {
                (Some(resource_type), Some(id)) => {
                    Some(crate::authz::BoundResource { resource_type, id })
                }
                _ => None,
            },
        }
    }
}

/// A role to grant: to whom, which, where, until when.
pub struct NewBinding<'a> {
    pub principal_id: Uuid,
    pub role_id: Uuid,
    pub node: &'a Node,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: &'static str,
    /// The one resource the binding names (validated: a catalog type, a resource id).
    pub resource: Option<crate::authz::BoundResource>,
}

fn binding_json(b: &RoleBinding) -> serde_json::Value {
    json!({
        "principal_id": b.principal_id,
        "role_id": b.role_id,
        "node_id": b.node_id(),
        "expires_at": b.expires_at,
        "source": b.source,
    })
}

/// Whether an effective admin remains (the one last-admin count every path uses, inside the
/// change's transaction): an active, undeleted user, other than `excluding_principal`, with a
/// binding of Admin at the organization node other than `excluding_binding` that never
/// expires, and no live binding at the organization node whose role denies anything, neither
/// their own nor one of a team they belong to. Admin held through a team does not count: a
/// team's membership changes too easily to be what keeps an organization governable.
pub(super) async fn another_admin_remains<C: ConnectionTrait>(
    conn: &C,
    admin_role: Uuid,
    organization_id: Uuid,
    excluding_binding: Option<Uuid>,
    excluding_principal: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut q = role_binding::Entity::find()
        .filter(role_binding::Column::OrganizationId.eq(organization_id))
        .filter(role_binding::Column::WorkspaceId.is_null())
        .filter(role_binding::Column::ProjectId.is_null())
        .filter(role_binding::Column::RoleId.eq(admin_role))
        .filter(role_binding::Column::ResourceId.is_null())
        .filter(role_binding::Column::ExpiresAt.is_null());
    if let Some(b) = excluding_binding {
        q = q.filter(role_binding::Column::Id.ne(b));
    }
    if let Some(p) = excluding_principal {
        q = q.filter(role_binding::Column::PrincipalId.ne(p));
    }
    let holders: Vec<Uuid> = q
        .all(conn)
        .await?
        .into_iter()
        .map(|b| b.principal_id)
        .collect();
    if holders.is_empty() {
        return Ok(false);
    }
    let denying_roles: Vec<Uuid> = role_policy::Entity::find()
        .filter(role_policy::Column::Effect.eq("deny"))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.role_id)
        .collect();
    let restricted: Vec<Uuid> = if denying_roles.is_empty() {
        Vec::new()
    } else {
        // A deny bound to a team restricts each of its members.
        let teams: Vec<(Uuid, Uuid)> = team_member::Entity::find()
            .filter(team_member::Column::OrganizationId.eq(organization_id))
            .filter(team_member::Column::PrincipalId.is_in(holders.clone()))
            .all(conn)
            .await?
            .into_iter()
            .map(|m| (m.team_id, m.principal_id))
            .collect();
        let principals = holders
            .iter()
            .copied()
            .chain(teams.iter().map(|(team, _)| *team));
        role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::WorkspaceId.is_null())
            .filter(role_binding::Column::ProjectId.is_null())
            .filter(role_binding::Column::PrincipalId.is_in(principals))
            .filter(role_binding::Column::RoleId.is_in(denying_roles))
            .filter(
                Condition::any()
                    .add(role_binding::Column::ExpiresAt.is_null())
                    .add(role_binding::Column::ExpiresAt.gt(now)),
            )
            .all(conn)
            .await?
            .into_iter()
            .flat_map(|b| {
                let via_teams = teams
                    .iter()
                    .filter(move |(team, _)| *team == b.principal_id)
                    .map(|(_, member)| *member);
                std::iter::once(b.principal_id).chain(via_teams)
            })
            .collect()
    };
    let holders: Vec<Uuid> = holders
        .into_iter()
        .filter(|h| !restricted.contains(h))
        .collect();
    if holders.is_empty() {
        return Ok(false);
    }
    let active: Vec<Uuid> = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::Status.eq(MemberStatus::Active.as_str()))
        .filter(membership::Column::UserId.is_in(holders))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    if active.is_empty() {
        return Ok(false);
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(active))
        .filter(user::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .is_some())
}

pub(super) fn last_admin_error() -> StoreError {
    StoreError::conflict(
        "this would leave the organization without an effective admin (an active member holding Admin at the organization, not expiring, with no deny there); grant Admin to someone else first",
    )
}

impl Store {
    /// Grants a role to a member at a node of the member's organization.
    pub async fn grant_role(
        &self,
        new: NewBinding<'_>,
        actor: &Actor,
    ) -> Result<RoleBinding, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let organization_id = new.node.organization_id();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(StoreError::Invalid(InvalidInput::new(
                "expiresAt",
                "`expiresAt` must be in the future",
            )));
        }
        let id = Uuid::now_v7();
        let event = revision::bump(
            &txn,
            Change {
                organization_id,
                kind: crate::domain::change::ChangeKind::BindingGranted,
                principal_id: Some(new.principal_id),
                node_id: Some(new.node.id()),
                role_id: Some(new.role_id),
                actor_id: actor.user_id,
            },
        )
        .await?;
        let member = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .filter(membership::Column::UserId.eq(new.principal_id))
            .one(&txn)
            .await?;
        let principal_kind = if member.is_some() {
            PrincipalKind::User
        } else if super::service_accounts::service_account_in(
            &txn,
            organization_id,
            new.principal_id,
        )
        .await?
        .is_some()
        {
            PrincipalKind::ServiceAccount
        } else if super::teams::team_in(&txn, organization_id, new.principal_id)
            .await?
            .is_some()
        {
            PrincipalKind::Team
        } else {
            return Err(StoreError::Invalid(InvalidInput::new(
                "principalId",
                "the principal is not a member, service account or team of this organization; invite them first",
            )));
        };
        // A role of another organization is not visible here: it is "not found", never bound.
        let role = role::Entity::find_by_id(new.role_id)
            .one(&txn)
            .await?
            .filter(|r| r.builtin || r.organization_id == Some(organization_id))
            .ok_or(StoreError::NotFound("role"))?;
        let (workspace_id, project_id) = super::node_columns(new.node);
        let duplicate = role_binding::Entity::find()
            .filter(role_binding::Column::PrincipalId.eq(new.principal_id))
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::RoleId.eq(role.id))
            .all(&txn)
            .await?
            .into_iter()
            .map(RoleBinding::from)
            .any(|b| b.node_id() == new.node.id() && b.resource == new.resource && b.is_live(now));
        if duplicate {
            return Err(StoreError::conflict(format!(
                "the principal already holds `{}` at this node{}; revoke that binding first to change its expiry",
                role.name,
                if new.resource.is_some() {
                    " on this resource"
                } else {
                    ""
                }
            )));
        }
        let created: RoleBinding = role_binding::Entity::insert(role_binding::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            workspace_id: Set(workspace_id),
            project_id: Set(project_id),
            principal_type: Set(principal_kind.as_str().to_owned()),
            principal_id: Set(new.principal_id),
            role_id: Set(role.id),
            granted_by: Set(actor.user_id),
            granted_at: Set(now),
            expires_at: Set(new.expires_at),
            source: Set(new.source.to_owned()),
            sso_provider_id: Set(None),
            resource_type: Set(new.resource.as_ref().map(|r| r.resource_type.clone())),
            resource_id: Set(new.resource.as_ref().map(|r| r.id.clone())),
        })
        .exec_with_returning(&txn)
        .await?
        .into();
        // A deny bound at the organization can take away the last effective admin.
        if new.node.id() == organization_id
            && !another_admin_remains(
                &txn,
                self.profile.admin_role().id,
                organization_id,
                None,
                None,
                now,
            )
            .await?
        {
            return Err(last_admin_error());
        }
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "binding.grant",
                target_type: "role_binding",
                target_id: Some(id),
                before: None,
                after: Some(binding_json(&created)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(created)
    }

    /// Revokes a binding, unless it is the organization's last active Admin.
    pub async fn revoke_binding(&self, id: Uuid, actor: &Actor) -> Result<RoleBinding, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let found: RoleBinding = role_binding::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("role binding"))?
            .into();
        let event = revision::bump(
            &txn,
            Change {
                organization_id: found.organization_id,
                kind: crate::domain::change::ChangeKind::BindingRevoked,
                principal_id: Some(found.principal_id),
                node_id: Some(found.node_id()),
                role_id: Some(found.role_id),
                actor_id: actor.user_id,
            },
        )
        .await?;
        let is_org_admin = found.role_id == self.profile.admin_role().id
            && found.resource.is_none()
            && found.workspace_id.is_none()
            && found.expires_at.is_none();
        if is_org_admin
            && !another_admin_remains(
                &txn,
                self.profile.admin_role().id,
                found.organization_id,
                Some(found.id),
                None,
                now,
            )
            .await?
        {
            return Err(last_admin_error());
        }
        let deleted = role_binding::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected != 1 {
            return Err(StoreError::NotFound("role binding"));
        }
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(found.organization_id),
                action: "binding.revoke",
                target_type: "role_binding",
                target_id: Some(id),
                before: Some(binding_json(&found)),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(found)
    }

    pub async fn binding(&self, id: Uuid) -> Result<Option<RoleBinding>, StoreError> {
        Ok(role_binding::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(RoleBinding::from))
    }

    /// The bindings made exactly at `node` (not those inherited from above), oldest first.
    pub async fn bindings_at(&self, node: &Node) -> Result<Vec<RoleBinding>, StoreError> {
        let mut q = role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(node.organization_id()));
        q = match node {
            Node::Organization(_) => q
                .filter(role_binding::Column::WorkspaceId.is_null())
                .filter(role_binding::Column::ProjectId.is_null()),
            Node::Workspace(w) => q
                .filter(role_binding::Column::WorkspaceId.eq(w.id))
                .filter(role_binding::Column::ProjectId.is_null()),
            Node::Project(p) => q.filter(role_binding::Column::ProjectId.eq(p.id)),
        };
        Ok(q.order_by_asc(role_binding::Column::GrantedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(RoleBinding::from)
            .collect())
    }

    /// Every binding of a principal in an organization, oldest first.
    pub async fn bindings_of(
        &self,
        organization_id: Uuid,
        principal_id: Uuid,
    ) -> Result<Vec<RoleBinding>, StoreError> {
        Ok(role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::PrincipalId.eq(principal_id))
            .order_by_asc(role_binding::Column::GrantedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(RoleBinding::from)
            .collect())
    }
}
