//! Proving an account's email: a single-use link emailed at sign-up (or on request), and the
//! other proofs that the owner reads the address (an emailed invitation, a password reset).
//! SSO never reaches an account whose email is not proven (see `sso_identities.rs`).
//!
//! Changing the email is the same kind of link with the purpose `change`, sent to the new
//! address: the account takes the address only when its link is used, and then it is proven.

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
use crate::domain::{Actor, Email, InvalidInput, User};

/// A link that proves the account's current email.
const VERIFY: &str = "verify";
/// A link that makes its address the account's email.
const CHANGE: &str = "change";

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
        retire_links(&txn, user.id, Some(VERIFY), now).await?;
        email_verification::Entity::insert(email_verification::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user.id),
            email: Set(user.email.clone()),
            purpose: Set(VERIFY.to_owned()),
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

    /// Records a link that changes `user`'s email to `new_email` (only its token's hash),
    /// valid for `ttl`; an older pending change stops working. CONFLICT when another account
    /// has the address.
    pub async fn create_email_change(
        &self,
        user: &User,
        new_email: &Email,
        token_hash: String,
        ttl: Duration,
        actor: &Actor,
    ) -> Result<DateTime<Utc>, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        if super::users::user_id_by_email(&txn, new_email)
            .await?
            .is_some()
        {
            return Err(taken(new_email));
        }
        retire_links(&txn, user.id, Some(CHANGE), now).await?;
        let expires_at = now + ttl;
        email_verification::Entity::insert(email_verification::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user.id),
            email: Set(new_email.as_str().to_owned()),
            purpose: Set(CHANGE.to_owned()),
            token_hash: Set(token_hash),
            created_at: Set(now),
            expires_at: Set(expires_at),
            used_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: None,
                action: "user.email_change_request",
                target_type: "user",
                target_id: Some(user.id),
                before: Some(json!({ "email": user.email })),
                after: Some(json!({ "email": new_email.as_str(), "expires_at": expires_at })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(expires_at)
    }

    /// Uses the verification link whose token hashes to `token_hash`: the account's email is
    /// verified, or (a change link) becomes the link's address, verified. BAD_USER_INPUT when
    /// the link is unknown, used, expired, was sent to an address the account no longer has,
    /// or (a change) names an address another account took meanwhile.
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
            .filter(|u| u.deleted_at.is_none())
            .ok_or_else(invalid)?;
        if found.purpose == CHANGE {
            let changed = self
                .change_email_in(&txn, account, &found.email, actor)
                .await?;
            txn.commit().await?;
            // Cached sessions carry the account: they are read again, with the new address.
            self.sessions_revoked(changed.id, 1);
            return Ok(changed);
        }
        if account.email != found.email {
            return Err(invalid());
        }
        verify_email_on(&txn, account.id, now).await?;
        audit::record(
            &txn,
            &actor.or_person(account.id, &account.email),
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

impl Store {
    /// Makes `email` the (proven) email of `account`, in `txn`: the account's other pending
    /// links and its password-reset links stop working (they went to the old address).
    async fn change_email_in(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        account: user::Model,
        email: &str,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let now = self.clock.now();
        // Any row, deleted or not: the address is unique among all.
        let taken_by = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(txn)
            .await?;
        if taken_by.is_some_and(|u| u.id != account.id) {
            return Err(StoreError::Invalid(InvalidInput::new(
                "token",
                format!(
                    "another account has taken `{email}` meanwhile; this link cannot change your email to it"
                ),
            )));
        }
        user::Entity::update_many()
            .col_expr(user::Column::Email, Expr::value(email))
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(account.id))
            .exec(txn)
            .await
            .map_err(|e| {
                StoreError::unique_or_db(e, || {
                    format!("another account has taken `{email}` meanwhile")
                })
            })?;
        retire_links(txn, account.id, None, now).await?;
        super::password_resets::retire_resets(txn, account.id, now).await?;
        audit::record(
            txn,
            &actor.or_person(account.id, &account.email),
            Entry {
                organization_id: None,
                action: "user.email_change",
                target_type: "user",
                target_id: Some(account.id),
                before: Some(json!({ "email": account.email })),
                after: Some(json!({ "email": email, "proof": "link" })),
            },
        )
        .await?;
        Ok(User {
            email: email.to_owned(),
            email_verified: true,
            ..account.into()
        })
    }
}

fn taken(email: &Email) -> StoreError {
    StoreError::conflict(format!(
        "an account with email `{}` already exists",
        email.as_str()
    ))
}

/// Retires, on `conn`, every unused link of `user_id`.
pub(super) async fn retire_all_links<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    retire_links(conn, user_id, None, now).await
}

/// Retires, on `conn`, the unused links of `user_id` (of one purpose, or all).
async fn retire_links<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    purpose: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut q = email_verification::Entity::update_many()
        .col_expr(email_verification::Column::UsedAt, Expr::value(now))
        .filter(email_verification::Column::UserId.eq(user_id))
        .filter(email_verification::Column::UsedAt.is_null());
    if let Some(purpose) = purpose {
        q = q.filter(email_verification::Column::Purpose.eq(purpose));
    }
    q.exec(conn).await?;
    Ok(())
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
