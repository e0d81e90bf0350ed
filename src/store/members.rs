//! Memberships and what a member holds at an organization.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use entity::{membership, role_binding, user};

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

/// A user's standing in one organization, as the provisional authorization of the foundation
/// reads it (the full engine replaces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgAccess {
    /// `None` when the user is not a member at all.
    pub status: Option<MemberStatus>,
    /// Holds the built-in Admin role at the organization node through an unexpired binding.
    pub org_admin: bool,
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

    /// What `user_id` holds at `organization_id` at time `now`.
    pub async fn org_access(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<OrgAccess, StoreError> {
        let status = self
            .membership(organization_id, user_id)
            .await?
            .map(|m| m.status);
        if status != Some(MemberStatus::Active) {
            return Ok(OrgAccess {
                status,
                org_admin: false,
            });
        }
        let admin_bindings = role_binding::Entity::find()
            .filter(role_binding::Column::PrincipalId.eq(user_id))
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::WorkspaceId.is_null())
            .filter(role_binding::Column::ProjectId.is_null())
            .filter(role_binding::Column::RoleId.eq(builtin_role_id("admin")))
            .filter(
                Condition::any()
                    .add(role_binding::Column::ExpiresAt.is_null())
                    .add(role_binding::Column::ExpiresAt.gt(now)),
            )
            .count(&self.db)
            .await?;
        Ok(OrgAccess {
            status,
            org_admin: admin_bindings > 0,
        })
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
