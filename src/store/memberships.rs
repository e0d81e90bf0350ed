//! Memberships and what a member holds at an organization.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use entity::{membership, user};

use super::{Store, StoreError};
use crate::domain::{Member, MemberStatus, Membership};

impl From<membership::Model> for Membership {
    fn from(m: membership::Model) -> Self {
        Self {
            organization_id: m.organization_id,
            user_id: m.user_id,
            status: MemberStatus::from_stored(&m.status),
            created_at: m.created_at,
        }
    }
}

/// What removing a member did, for the caller to announce after the commit.
pub(super) struct Removed {
    pub event: crate::domain::change::ChangeEvent,
    pub sessions_revoked: u64,
}

impl Store {
    pub async fn membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<Membership>, StoreError> {
        Ok(membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .filter(membership::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?
            .map(Membership::from))
    }

    /// The members of an organization (every status), by email.
    pub async fn members(&self, organization_id: Uuid) -> Result<Vec<Member>, StoreError> {
        let rows = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .all(&self.db)
            .await?;
        let users = user::Entity::find()
            .filter(user::Column::Id.is_in(rows.iter().map(|m| m.user_id)))
            .filter(user::Column::DeletedAt.is_null())
            .order_by_asc(user::Column::Email)
            .all(&self.db)
            .await?;
        Ok(users
            .into_iter()
            .filter_map(|u| {
                let m = rows.iter().find(|m| m.user_id == u.id)?;
                Some(Member {
                    status: MemberStatus::from_stored(&m.status),
                    joined_at: m.created_at,
                    user: u.into(),
                })
            })
            .collect())
    }
}

impl Store {
    /// Sets a member's status (suspend, deactivate, reactivate). Refused when it would leave
    /// the organization without an active Admin.
    pub async fn set_member_status(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        status: MemberStatus,
        actor: &crate::domain::Actor,
    ) -> Result<Membership, StoreError> {
        use sea_orm::{ActiveValue::Set, TransactionTrait};

        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let event = super::revision::bump(
            &txn,
            super::revision::Change {
                organization_id,
                kind: crate::domain::change::ChangeKind::MembershipStatus,
                principal_id: Some(user_id),
                node_id: Some(organization_id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let current = member_row(&txn, organization_id, user_id).await?;
        let before = current.status.clone();
        if status != MemberStatus::Active
            && !super::bindings::another_admin_remains(
                &txn,
                self.profile.admin_role().id,
                organization_id,
                None,
                Some(user_id),
                now,
            )
            .await?
        {
            return Err(super::bindings::last_admin_error());
        }
        let mut model: membership::ActiveModel = current.into();
        model.status = Set(status.as_str().to_owned());
        model.updated_at = Set(now);
        let updated = membership::Entity::update(model).exec(&txn).await?;
        super::audit::record(
            &txn,
            actor,
            super::audit::Entry {
                organization_id: Some(organization_id),
                action: "member.status",
                target_type: "user",
                target_id: Some(user_id),
                before: Some(serde_json::json!({ "status": before })),
                after: Some(serde_json::json!({ "status": status.as_str() })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(updated.into())
    }
}

/// A member as the members list shows them: the account, the standing, the bindings in the
/// organization and the last activity of any of their sessions.
pub struct MemberOverview {
    pub member: Member,
    pub bindings: Vec<crate::domain::RoleBinding>,
    pub last_active_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A role a member should hold at a node (for [`Store::set_member_roles`]).
pub struct WantedRole<'a> {
    pub role_id: Uuid,
    pub node: &'a crate::domain::Node,
}

impl Store {
    /// Every member of the organization with their bindings there and their last activity.
    pub async fn member_overviews(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<MemberOverview>, StoreError> {
        use entity::{role_binding, session};
        let members = self.members(organization_id).await?;
        let ids: Vec<Uuid> = members.iter().map(|m| m.user.id).collect();
        let bindings = role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .all(&self.db)
            .await?;
        let sessions = session::Entity::find()
            .filter(session::Column::UserId.is_in(ids))
            .all(&self.db)
            .await?;
        Ok(members
            .into_iter()
            .map(|member| {
                let id = member.user.id;
                MemberOverview {
                    bindings: bindings
                        .iter()
                        .filter(|b| b.principal_id == id)
                        .cloned()
                        .map(Into::into)
                        .collect(),
                    last_active_at: sessions
                        .iter()
                        .filter(|s| s.user_id == id)
                        .map(|s| s.last_active_at)
                        .max(),
                    member,
                }
            })
            .collect())
    }

    /// Removes a member: their bindings in the organization and their membership are deleted,
    /// and their sessions opened for this organization (SSO) revoked. Their account, their
    /// memberships elsewhere and what they created are kept. Refused when it would leave the
    /// organization without an active Admin.
    pub async fn remove_member(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        actor: &crate::domain::Actor,
    ) -> Result<(), StoreError> {
        use sea_orm::TransactionTrait;

        let txn = self.db.begin().await?;
        let removed = self
            .remove_member_in(&txn, organization_id, user_id, None, actor)
            .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&removed.event));
        self.sessions_revoked(user_id, removed.sessions_revoked);
        Ok(())
    }

    /// The work of [`Store::remove_member`] in `txn`, audited with `reason` (why the member
    /// went, when it was not an admin's removal). The caller publishes the event after the
    /// commit.
    pub(super) async fn remove_member_in(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        organization_id: Uuid,
        user_id: Uuid,
        reason: Option<&str>,
        actor: &crate::domain::Actor,
    ) -> Result<Removed, StoreError> {
        use entity::{role_binding, session};
        use sea_orm::sea_query::Expr;

        let now = self.clock.now();
        let event = super::revision::bump(
            txn,
            super::revision::Change {
                organization_id,
                kind: crate::domain::change::ChangeKind::MembershipRemoved,
                principal_id: Some(user_id),
                node_id: Some(organization_id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let current = member_row(txn, organization_id, user_id).await?;
        if !super::bindings::another_admin_remains(
            txn,
            self.profile.admin_role().id,
            organization_id,
            None,
            Some(user_id),
            now,
        )
        .await?
        {
            return Err(super::bindings::last_admin_error());
        }
        let bindings = role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::PrincipalId.eq(user_id))
            .all(txn)
            .await?;
        role_binding::Entity::delete_many()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::PrincipalId.eq(user_id))
            .exec(txn)
            .await?;
        // Their teams' bindings leave with them: the team memberships go too.
        entity::team_member::Entity::delete_many()
            .filter(entity::team_member::Column::OrganizationId.eq(organization_id))
            .filter(entity::team_member::Column::PrincipalId.eq(user_id))
            .exec(txn)
            .await?;
        membership::Entity::delete_by_id(current.id)
            .exec(txn)
            .await?;
        let sessions = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::OrganizationId.eq(organization_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(txn)
            .await?;
        // Their personal keys are denied by this revision already; revoked, they stay so
        // should the person be invited again.
        let keys = super::api_keys::revoke_keys_of_member(
            txn,
            organization_id,
            user_id,
            reason.unwrap_or("owner_removed"),
            actor,
            now,
        )
        .await?;
        super::audit::record(
            txn,
            actor,
            super::audit::Entry {
                organization_id: Some(organization_id),
                action: "member.remove",
                target_type: "user",
                target_id: Some(user_id),
                before: Some(serde_json::json!({
                    "status": current.status,
                    "bindings": bindings.iter().map(|b| serde_json::json!({
                        "role_id": b.role_id,
                        "node_id": b.project_id.or(b.workspace_id).unwrap_or(b.organization_id),
                    })).collect::<Vec<_>>(),
                })),
                after: Some(serde_json::json!({
                    "reason": reason,
                    "sessions_revoked": sessions.rows_affected,
                    "api_keys_revoked": keys,
                })),
            },
        )
        .await?;
        Ok(Removed {
            event,
            sessions_revoked: sessions.rows_affected,
        })
    }

    /// Replaces the member's roles in the organization with `wanted` (bindings made by SSO
    /// group mapping are left alone): missing ones are granted, others revoked, unchanged ones
    /// kept. Refused when it would leave the organization without an active Admin. Returns the
    /// bindings before and after.
    pub async fn set_member_roles(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        wanted: &[WantedRole<'_>],
        actor: &crate::domain::Actor,
    ) -> Result<Vec<crate::domain::RoleBinding>, StoreError> {
        use entity::{role, role_binding};
        use sea_orm::{ActiveValue::Set, TransactionTrait};

        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let event = super::revision::bump(
            &txn,
            super::revision::Change {
                organization_id,
                kind: crate::domain::change::ChangeKind::MemberRoles,
                principal_id: Some(user_id),
                node_id: Some(organization_id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        member_row(&txn, organization_id, user_id).await?;
        for w in wanted {
            role::Entity::find_by_id(w.role_id)
                .one(&txn)
                .await?
                .filter(|r| r.builtin || r.organization_id == Some(organization_id))
                .ok_or(StoreError::NotFound("role"))?;
        }
        let current: Vec<role_binding::Model> = role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::PrincipalId.eq(user_id))
            .filter(role_binding::Column::Source.ne("sso"))
            // Shares of one resource are not the member's roles: they stay.
            .filter(role_binding::Column::ResourceId.is_null())
            .all(&txn)
            .await?;
        let node_of =
            |b: &role_binding::Model| b.project_id.or(b.workspace_id).unwrap_or(b.organization_id);
        let keep = |b: &role_binding::Model| {
            wanted
                .iter()
                .any(|w| w.role_id == b.role_id && w.node.id() == node_of(b))
        };
        let removed: Vec<&role_binding::Model> = current.iter().filter(|b| !keep(b)).collect();
        if !removed.is_empty() {
            role_binding::Entity::delete_many()
                .filter(role_binding::Column::Id.is_in(removed.iter().map(|b| b.id)))
                .exec(&txn)
                .await?;
        }
        let mut added = Vec::new();
        for w in wanted {
            let held = current
                .iter()
                .any(|b| b.role_id == w.role_id && node_of(b) == w.node.id());
            let repeated = added
                .iter()
                .any(|(r, n): &(Uuid, Uuid)| *r == w.role_id && *n == w.node.id());
            if held || repeated {
                continue;
            }
            let (workspace_id, project_id) = super::node_columns(w.node);
            role_binding::Entity::insert(role_binding::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(organization_id),
                workspace_id: Set(workspace_id),
                project_id: Set(project_id),
                principal_type: Set("user".to_owned()),
                principal_id: Set(user_id),
                role_id: Set(w.role_id),
                granted_by: Set(actor.user_id),
                granted_at: Set(now),
                expires_at: Set(None),
                source: Set("manual".to_owned()),
                sso_provider_id: Set(None),
                resource_type: Set(None),
                resource_id: Set(None),
            })
            .exec_without_returning(&txn)
            .await?;
            added.push((w.role_id, w.node.id()));
        }
        if !super::bindings::another_admin_remains(
            &txn,
            self.profile.admin_role().id,
            organization_id,
            None,
            None,
            now,
        )
        .await?
        {
            return Err(super::bindings::last_admin_error());
        }
        let describe = |pairs: Vec<(Uuid, Uuid)>| {
            pairs
                .into_iter()
                .map(|(r, n)| serde_json::json!({ "role_id": r, "node_id": n }))
                .collect::<Vec<_>>()
        };
        let before = describe(current.iter().map(|b| (b.role_id, node_of(b))).collect());
        let after: Vec<role_binding::Model> = role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::PrincipalId.eq(user_id))
            .all(&txn)
            .await?;
        super::audit::record(
            &txn,
            actor,
            super::audit::Entry {
                organization_id: Some(organization_id),
                action: "member.roles",
                target_type: "user",
                target_id: Some(user_id),
                before: Some(serde_json::json!({ "roles": before })),
                after: Some(serde_json::json!({
                    "roles": describe(after.iter().filter(|b| b.source != "sso" && b.resource_id.is_none()).map(|b| (b.role_id, node_of(b))).collect()),
                })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(after.into_iter().map(Into::into).collect())
    }
}

/// The membership row of `user_id` in `organization_id`, or NOT_FOUND (`member`).
async fn member_row<C: sea_orm::ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<membership::Model, StoreError> {
    membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound("member"))
}
