//! The facts the decision engine needs about one principal in one organization, read in one
//! consistent snapshot and tagged with the organization revision they reflect.

use sea_orm::{
    AccessMode, ColumnTrait, EntityTrait, IsolationLevel, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use entity::{membership, organization, role_binding, user};

use super::roles::load_roles;
use super::{Store, StoreError};
use crate::authz::BindingFact;
use crate::domain::{MemberStatus, Role};

/// What the engine is told about a principal in an organization.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PrincipalFacts {
    pub organization_id: Uuid,
    pub principal_id: Uuid,
    /// The organization revision this snapshot reflects.
    pub revision: i64,
    /// An active member whose account is not deleted.
    pub active: bool,
    /// A member at all, whatever the status (a suspended member may ask about themselves).
    #[serde(default)]
    pub member: bool,
    pub bindings: Vec<BindingFact>,
    /// The custom roles named by `bindings` (built-in roles come from code).
    pub custom_roles: Vec<Role>,
}

impl Store {
    /// The principal's facts in the organization, or `None` when the organization does not
    /// exist. Read in a single snapshot (repeatable read on PostgreSQL), so the revision and
    /// the bindings agree.
    pub async fn principal_facts(
        &self,
        organization_id: Uuid,
        principal_id: Uuid,
    ) -> Result<Option<PrincipalFacts>, StoreError> {
        let txn = self
            .db
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?;
        let Some(org) = organization::Entity::find_by_id(organization_id)
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let status = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .filter(membership::Column::UserId.eq(principal_id))
            .one(&txn)
            .await?
            .map(|m| MemberStatus::from_stored(&m.status));
        let live_user = user::Entity::find_by_id(principal_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&txn)
            .await?
            .is_some();
        let rows = role_binding::Entity::find()
            .filter(role_binding::Column::PrincipalId.eq(principal_id))
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .all(&txn)
            .await?;
        let builtin: Vec<Uuid> = migration::seed::BUILTIN_ROLES.iter().map(|r| r.0).collect();
        let mut custom_ids: Vec<Uuid> = rows
            .iter()
            .map(|b| b.role_id)
            .filter(|id| !builtin.contains(id))
            .collect();
        custom_ids.sort_unstable();
        custom_ids.dedup();
        let custom_roles = load_roles(&txn, custom_ids).await?;
        txn.commit().await?;
        Ok(Some(PrincipalFacts {
            organization_id,
            principal_id,
            revision: org.revision,
            active: status == Some(MemberStatus::Active) && live_user,
            member: status.is_some() && live_user,
            bindings: rows
                .into_iter()
                .map(|b| BindingFact {
                    id: b.id,
                    role_id: b.role_id,
                    node_id: b.project_id.or(b.workspace_id).unwrap_or(b.organization_id),
                    expires_at: b.expires_at,
                })
                .collect(),
            custom_roles,
        }))
    }
}
