//! Password resets: a single-use token, stored only as its SHA-256, that works until it
//! expires; emailed on request, or issued by an admin of the organization that manages the
//! account (`resetMemberPassword`). Using one sets the new password, ends the lockout, retires the account's other
//! reset links and revokes every session of the account.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TransactionTrait, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{password_reset, user};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::{Actor, InvalidInput, User};

/// Who a reset link is for.
#[derive(Debug, Clone, Copy)]
pub enum ResetIssue {
    /// Asked for by email, sent to the account's address.
    Requested,
    /// Issued by an admin of `organization_id`: emailed to the member, or (`handed_to`) answered
    /// to the admin when the server sends no email.
    ByAdmin {
        organization_id: Uuid,
        handed_to: Option<Uuid>,
    },
}

/// What a presented reset token opens.
#[derive(Debug)]
pub enum ResetLookup {
    /// Usable: reset `id` of this (live) account.
    Valid {
        id: Uuid,
        user: User,
    },
    Used,
    Expired,
    /// No such token, or its account is gone.
    Unknown,
}

impl Store {
    /// Records a reset for `user_id` whose token hashes to `token_hash`, valid for `ttl`.
    pub async fn create_password_reset(
        &self,
        user_id: Uuid,
        token_hash: String,
        ttl: Duration,
        issue: ResetIssue,
        actor: &Actor,
    ) -> Result<DateTime<Utc>, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let expires_at = now + ttl;
        password_reset::Entity::insert(password_reset::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            token_hash: Set(token_hash),
            ip: Set(actor.ip.clone()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            used_at: Set(None),
            handed_to: Set(match issue {
                ResetIssue::ByAdmin { handed_to, .. } => handed_to,
                ResetIssue::Requested => None,
            }),
        })
        .exec_without_returning(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            match issue {
                ResetIssue::Requested => Entry {
                    organization_id: None,
                    action: "auth.password_reset_requested",
                    target_type: "user",
                    target_id: Some(user_id),
                    before: None,
                    after: Some(json!({ "reset_id": id, "expires_at": expires_at })),
                },
                ResetIssue::ByAdmin {
                    organization_id,
                    handed_to,
                } => Entry {
                    organization_id: Some(organization_id),
                    action: "member.password_reset_issue",
                    target_type: "user",
                    target_id: Some(user_id),
                    before: None,
                    after: Some(json!({
                        "reset_id": id,
                        "expires_at": expires_at,
                        "delivery": if handed_to.is_some() { "link" } else { "email" },
                    })),
                },
            },
        )
        .await?;
        txn.commit().await?;
        Ok(expires_at)
    }

    /// The database work of a reset request for an email that names no account, without
    /// writing anything: a transaction with as many statements as a real request, so that
    /// both take about as long.
    pub async fn password_reset_decoy(&self, token_hash: &str) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        password_reset::Entity::find()
            .filter(password_reset::Column::TokenHash.eq(token_hash))
            .one(&txn)
            .await?;
        user::Entity::find_by_id(Uuid::nil()).one(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// What the reset token hashing to `token_hash` opens at `now`.
    pub async fn password_reset(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ResetLookup, StoreError> {
        let Some(reset) = password_reset::Entity::find()
            .filter(password_reset::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
        else {
            return Ok(ResetLookup::Unknown);
        };
        if reset.used_at.is_some() {
            return Ok(ResetLookup::Used);
        }
        if reset.expires_at <= now {
            return Ok(ResetLookup::Expired);
        }
        match self.user(reset.user_id).await? {
            Some(user) => Ok(ResetLookup::Valid { id: reset.id, user }),
            None => Ok(ResetLookup::Unknown),
        }
    }

    /// Uses reset `reset_id` of `user_id`: sets the password, ends the lockout, retires the
    /// account's other reset links and revokes all its sessions. Returns how many sessions were
    /// revoked. BAD_USER_INPUT when the reset was used (or expired) in the meantime.
    ///
    /// INVARIANT: a reset is used once, even under concurrent requests: it is claimed by a
    /// conditional update that only one transaction can win.
    pub async fn use_password_reset(
        &self,
        reset_id: Uuid,
        user_id: Uuid,
        password_hash: String,
        actor: &Actor,
    ) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let claimed = password_reset::Entity::update_many()
            .col_expr(password_reset::Column::UsedAt, Expr::value(now))
            .filter(password_reset::Column::Id.eq(reset_id))
            .filter(password_reset::Column::UserId.eq(user_id))
            .filter(password_reset::Column::UsedAt.is_null())
            .filter(password_reset::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(StoreError::Invalid(InvalidInput::new(
                "token",
                "this password-reset link has already been used or has expired; ask for a new one",
            )));
        }
        retire_resets(&txn, user_id, now).await?;
        super::users::set_password(&txn, user_id, password_hash, now).await?;
        super::users::clear_lockout(&txn, user_id, now).await?;
        // An emailed link proves that its owner reads the address; one handed to an admin
        // proves nothing.
        let emailed = password_reset::Entity::find_by_id(reset_id)
            .one(&txn)
            .await?
            .is_some_and(|r| r.handed_to.is_none());
        // A link handed to an admin works only while their organization still manages the
        // account alone: it must not take over an account another organization now trusts.
        if !emailed && !super::accounts::still_managed(&txn, user_id).await? {
            return Err(StoreError::Invalid(InvalidInput::new(
                "token",
                "this password-reset link no longer works: the account now belongs to another organization too; ask for a reset by email",
            )));
        }
        if emailed {
            super::email_verifications::verify_email_on(&txn, user_id, now).await?;
        }
        let revoked = super::sessions::revoke_sessions_of(&txn, user_id, None, now).await?;
        audit::record(
            &txn,
            &Actor {
                user_id: actor.user_id.or(Some(user_id)),
                ..actor.clone()
            },
            Entry {
                organization_id: None,
                action: "auth.password_reset",
                target_type: "user",
                target_id: Some(user_id),
                before: None,
                after: Some(json!({ "reset_id": reset_id, "sessions_revoked": revoked })),
            },
        )
        .await?;
        txn.commit().await?;
        self.sessions_revoked(user_id, revoked);
        Ok(revoked)
    }
}

/// Retires, on `conn`, every unused reset link of `user_id` (they are marked used): once the
/// password has changed, an older link must not change it again.
pub(super) async fn retire_resets<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::UserId.eq(user_id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}
