//! Proving an account's email: a single-use link emailed at sign-up (or on request), and the
//! other proofs that the owner reads the address (an emailed invitation, a password reset).
//! SSO never reaches an account whose email is not proven (see `sso_identities.rs`).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TransactionTrait, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{email_verification, user};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::{Actor, InvalidInput, User};

impl Store {
    /// Records a verification link for `user`'s current email (only its token's hash), valid
    /// for `ttl`; older unused links of the account stop working.
    pub async fn create_email_verification(
        &self,
        user: &User,
        token_hash: String,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        email_verification::Entity::update_many()
            .col_expr(email_verification::Column::UsedAt, Expr::value(now))
            .filter(email_verification::Column::UserId.eq(user.id))
            .filter(email_verification::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        email_verification::Entity::insert(email_verification::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user.id),
            email: Set(user.email.clone()),
            token_hash: Set(token_hash),
            created_at: Set(now),
            expires_at: Set(now + ttl),
            used_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Uses the verification link whose token hashes to `token_hash`: the account's email is
    /// verified. BAD_USER_INPUT when the link is unknown, used, expired, or was sent to an
    /// address the account no longer has.
    ///
    /// INVARIANT: a link is used once: it is claimed by a conditional update.
    pub async fn use_email_verification(
        &self,
        token_hash: &str,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let invalid = || {
            StoreError::Invalid(InvalidInput::new(
                "token",
                "this verification link is not valid any more; ask for a new one",
            ))
        };
        let found = email_verification::Entity::find()
            .filter(email_verification::Column::TokenHash.eq(token_hash))
            .one(&txn)
            .await?
            .ok_or_else(invalid)?;
        let claimed = email_verification::Entity::update_many()
            .col_expr(email_verification::Column::UsedAt, Expr::value(now))
            .filter(email_verification::Column::Id.eq(found.id))
            .filter(email_verification::Column::UsedAt.is_null())
            .filter(email_verification::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(invalid());
        }
        let account = user::Entity::find_by_id(found.user_id)
            .one(&txn)
            .await?
            .filter(|u| u.deleted_at.is_none() && u.email == found.email)
            .ok_or_else(invalid)?;
        verify_email_on(&txn, account.id, now).await?;
        audit::record(
            &txn,
            &Actor {
                user_id: actor.user_id.or(Some(account.id)),
                ..actor.clone()
            },
            Entry {
                organization_id: None,
                action: "user.email_verify",
                target_type: "user",
                target_id: Some(account.id),
                before: None,
                after: Some(json!({ "email": account.email, "proof": "link" })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(User {
            email_verified: true,
            ..account.into()
        })
    }
}

/// Marks, on `conn`, the email of `user_id` verified at `now` (kept when it already was).
pub(super) async fn verify_email_on<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}
