//! Memberships and what a member holds at an organization.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use entity::{membership, user};

use super::{Store, StoreError};
use crate::domain::{Member, MemberStatus, Membership};

/// The id of a built-in role by key; unknown keys give the nil id, which no role has.
pub(crate) fn builtin_role_id(key: &str) -> Uuid {
    migration::seed::BUILTIN_ROLES
        .iter()
        .find(|(_, k, _, _)| *k == key)
        .map(|(id, _, _, _)| *id)
        .unwrap_or(Uuid::nil())
}

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
        let now = chrono::Utc::now();
        let event = super::revision::bump(
            &txn,
            super::revision::Change {
                organization_id,
                kind: "membership.status",
                principal_id: Some(user_id),
                node_id: Some(organization_id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let current = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .filter(membership::Column::UserId.eq(user_id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("member"))?;
        let before = current.status.clone();
        if status != MemberStatus::Active
            && !super::bindings::another_admin_remains(
                &txn,
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
