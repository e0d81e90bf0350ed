//! Service accounts: principals of one organization that are no person. They are bound to
//! roles and join teams like users (their facts are read by the same statement, facts.rs) and
//! act through API keys (api_keys.rs).
//!
//! INVARIANT: a disabled or deleted service account is denied everything at once: both commit
//! a revision that reaches the account as a principal, so every instance drops its facts.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use entity::{api_key, role_binding, service_account, team_member};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::change::ChangeKind;
use crate::domain::{Actor, Name, ServiceAccount};

impl From<service_account::Model> for ServiceAccount {
    fn from(m: service_account::Model) -> Self {
        Self {
            id: m.id,
            organization_id: m.organization_id,
            name: m.name,
            description: m.description,
            disabled: m.disabled,
            created_by: m.created_by,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

fn name_key(name: &Name) -> String {
    name.as_str().to_lowercase()
}

fn taken(name: &str) -> String {
    format!("a service account named `{name}` already exists in this organization")
}

fn account_json(a: &service_account::Model) -> serde_json::Value {
    json!({ "name": a.name, "description": a.description, "disabled": a.disabled })
}

/// The service account `id` if it belongs to `organization_id`.
pub(super) async fn service_account_in<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<service_account::Model>, StoreError> {
    Ok(service_account::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|a| a.organization_id == organization_id))
}

async fn account_row<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<service_account::Model, StoreError> {
    service_account::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound("service account"))
}

/// What `update_service_account` changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ServiceAccountChange<'a> {
    pub name: Option<&'a Name>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<&'a str>>,
    pub disabled: Option<bool>,
}

impl Store {
    pub async fn create_service_account(
        &self,
        organization_id: Uuid,
        name: &Name,
        description: Option<&str>,
        actor: &Actor,
    ) -> Result<ServiceAccount, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let event = revision::bump(
            &txn,
            Change {
                organization_id,
                kind: ChangeKind::ServiceAccountCreated,
                principal_id: Some(id),
                node_id: None,
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let model = service_account::Model {
            id,
            organization_id,
            name: name.as_str().to_owned(),
            name_key: name_key(name),
            description: description.map(str::to_owned),
            disabled: false,
            created_by: actor.user_id,
            created_at: now,
            updated_at: now,
        };
        service_account::Entity::insert(service_account::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| StoreError::unique_or_db(e, || taken(name.as_str())))?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "service_account.create",
                target_type: "service_account",
                target_id: Some(id),
                before: None,
                after: Some(account_json(&model)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(model.into())
    }

    pub async fn update_service_account(
        &self,
        id: Uuid,
        change: ServiceAccountChange<'_>,
        actor: &Actor,
    ) -> Result<ServiceAccount, StoreError> {
        let txn = self.db.begin().await?;
        let before = account_row(&txn, id).await?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: before.organization_id,
                kind: ChangeKind::ServiceAccountUpdated,
                principal_id: Some(id),
                node_id: None,
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let mut after = before.clone();
        if let Some(name) = change.name {
            after.name = name.as_str().to_owned();
            after.name_key = name_key(name);
        }
        if let Some(description) = change.description {
            after.description = description.map(str::to_owned);
        }
        if let Some(disabled) = change.disabled {
            after.disabled = disabled;
        }
        after.updated_at = self.clock.now();
        let mut active: service_account::ActiveModel = after.clone().into();
        active.id = sea_orm::ActiveValue::Unchanged(id);
        for column in [
            service_account::Column::Name,
            service_account::Column::NameKey,
            service_account::Column::Description,
            service_account::Column::Disabled,
            service_account::Column::UpdatedAt,
        ] {
            sea_orm::ActiveModelTrait::reset(&mut active, column);
        }
        service_account::Entity::update(active)
            .exec(&txn)
            .await
            .map_err(|e| StoreError::unique_or_db(e, || taken(&after.name)))?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(before.organization_id),
                action: match (before.disabled, after.disabled) {
                    (false, true) => "service_account.disable",
                    (true, false) => "service_account.enable",
                    _ => "service_account.update",
                },
                target_type: "service_account",
                target_id: Some(id),
                before: Some(account_json(&before)),
                after: Some(account_json(&after)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(after.into())
    }

    /// Deletes a service account with its keys, team memberships and bindings.
    pub async fn delete_service_account(
        &self,
        id: Uuid,
        actor: &Actor,
    ) -> Result<ServiceAccount, StoreError> {
        let txn = self.db.begin().await?;
        let found = account_row(&txn, id).await?;
        let org = found.organization_id;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: org,
                kind: ChangeKind::ServiceAccountDeleted,
                principal_id: Some(id),
                node_id: None,
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        let bindings = role_binding::Entity::delete_many()
            .filter(role_binding::Column::OrganizationId.eq(org))
            .filter(role_binding::Column::PrincipalId.eq(id))
            .exec(&txn)
            .await?;
        let teams = team_member::Entity::delete_many()
            .filter(team_member::Column::OrganizationId.eq(org))
            .filter(team_member::Column::PrincipalId.eq(id))
            .exec(&txn)
            .await?;
        let keys = api_key::Entity::delete_many()
            .filter(api_key::Column::ServiceAccountId.eq(id))
            .exec(&txn)
            .await?;
        service_account::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(org),
                action: "service_account.delete",
                target_type: "service_account",
                target_id: Some(id),
                before: Some(json!({
                    "name": found.name,
                    "description": found.description,
                    "disabled": found.disabled,
                    "bindings": bindings.rows_affected,
                    "teams": teams.rows_affected,
                    "apiKeys": keys.rows_affected,
                })),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(found.into())
    }

    pub async fn service_account(&self, id: Uuid) -> Result<Option<ServiceAccount>, StoreError> {
        Ok(service_account::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(ServiceAccount::from))
    }

    /// The organization's service accounts, by name.
    pub async fn service_accounts(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<ServiceAccount>, StoreError> {
        Ok(service_account::Entity::find()
            .filter(service_account::Column::OrganizationId.eq(organization_id))
            .order_by_asc(service_account::Column::NameKey)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ServiceAccount::from)
            .collect())
    }
}

/// Which of `ids` are service accounts of the organization.
pub(super) async fn service_accounts_among<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(service_account::Entity::find()
        .filter(service_account::Column::OrganizationId.eq(organization_id))
        .filter(service_account::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect())
}
