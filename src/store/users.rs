//! Accounts and their password credentials.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use entity::{credential, user};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::{Actor, Email, Name, User};

pub(super) const PASSWORD: &str = "password";

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            name: m.name,
            created_at: m.created_at,
        }
    }
}

impl Store {
    /// Creates an account with a password credential (`password_hash` is a PHC string).
    pub async fn create_user(
        &self,
        email: &Email,
        name: &Name,
        password_hash: String,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let model = user::ActiveModel {
            id: Set(id),
            email: Set(email.as_str().to_owned()),
            name: Set(name.as_str().to_owned()),
            failed_sign_ins: Set(0),
            locked_until: Set(None),
            deleted_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let created = user::Entity::insert(model)
            .exec_with_returning(&txn)
            .await
            .map_err(|e| {
                StoreError::unique_or_db(e, || {
                    format!("an account with email `{}` already exists", email.as_str())
                })
            })?;
        credential::Entity::insert(credential::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(id),
            kind: Set(PASSWORD.to_owned()),
            secret_hash: Set(password_hash),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let actor = Actor {
            user_id: actor.user_id.or(Some(id)),
            ..actor.clone()
        };
        audit::record(
            &txn,
            &actor,
            Entry {
                organization_id: None,
                action: "user.sign_up",
                target_type: "user",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "email": created.email, "name": created.name })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(created.into())
    }

    /// The live (not deleted) account with this email, and its password hash if it has one.
    pub async fn user_with_password(
        &self,
        email: &Email,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let Some(found) = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let password = credential::Entity::find()
            .filter(credential::Column::UserId.eq(found.id))
            .filter(credential::Column::Kind.eq(PASSWORD))
            .one(&self.db)
            .await?
            .map(|c| c.secret_hash);
        Ok(Some((found.into(), password)))
    }

    /// The live account with this id.
    pub async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find_by_id(id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .map(User::from))
    }

    /// Several live accounts by id, in no particular order.
    pub async fn users(&self, ids: &[Uuid]) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::Id.is_in(ids.iter().copied()))
            .filter(user::Column::DeletedAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }
}

/// The id of the live account with this email, read inside `conn` (a transaction).
pub(super) async fn user_id_by_email<C: sea_orm::ConnectionTrait>(
    conn: &C,
    email: &Email,
) -> Result<Option<Uuid>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .filter(user::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .map(|u| u.id))
}
