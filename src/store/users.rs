//! Accounts, their password credentials and sign-in lockout.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use uuid::Uuid;

use entity::{credential, membership, user};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::{Actor, Email, InvalidInput, Name, User};

pub(super) const PASSWORD: &str = "password";

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            name: m.name,
            email_verified: m.email_verified_at.is_some(),
            created_at: m.created_at,
        }
    }
}

impl Store {
    /// Creates an account with a password credential (`password_hash` is a PHC string);
    /// `managed_by` the organization whose invitation created it.
    pub async fn create_user(
        &self,
        email: &Email,
        name: &Name,
        password_hash: String,
        managed_by: Option<Uuid>,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let model = user::ActiveModel {
            id: Set(id),
            email: Set(email.as_str().to_owned()),
            name: Set(name.as_str().to_owned()),
            failed_sign_ins: Set(0),
            locked_until: Set(None),
            deleted_at: Set(None),
            email_verified_at: Set(None),
            managed_by_organization_id: Set(managed_by),
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
        let actor = actor.or_person(id, email.as_str());
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

/// How many failed attempts in a row lock an account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LockoutRule {
    pub threshold: u32,
    pub duration: Duration,
}

/// Whether a password attempt on an account may be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted as attempt `number` since the last success: verify the password. When this is
    /// the last attempt the threshold allows, the account is already locked until
    /// `locks_until`; a correct password lifts the lock again.
    Reserved {
        number: u32,
        locks_until: Option<DateTime<Utc>>,
    },
    /// The account is locked (until then, when known): do not evaluate the password.
    Locked { until: Option<DateTime<Utc>> },
}

/// A password attempt that failed, for the audit trail.
pub struct FailedAttempt<'a> {
    /// `auth.sign_in_failed`, `auth.sign_in_refused` (locked), `auth.password_change_failed`.
    pub action: &'static str,
    /// The account, when the email names one.
    pub user_id: Option<Uuid>,
    pub email: Option<&'a str>,
    /// `wrong_password`, `unknown_account`, `locked`.
    pub reason: &'static str,
    /// The attempt's reservation, when it had one.
    pub attempt: Option<Attempt>,
}

impl Store {
    /// Counts one password attempt on `user_id` before the password is verified, or says
    /// the account is locked. A lock that has run out by `now` ends here, and the count
    /// starts again.
    ///
    /// INVARIANT: at most `rule.threshold` attempts are evaluated per lock period, however many
    /// arrive at once. The count goes up in a conditional update that only matches an unlocked
    /// row, and the transaction that makes it reach the threshold also locks the row; the row
    /// stays write-locked from that update to the commit, so a concurrent reservation waits,
    /// then sees the lock (PostgreSQL re-checks the condition on the updated row; SQLite has
    /// one writer at a time).
    pub async fn reserve_password_attempt(
        &self,
        user_id: Uuid,
        rule: LockoutRule,
        now: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        let txn = self.db.begin().await?;
        user::Entity::update_many()
            .col_expr(user::Column::FailedSignIns, Expr::value(0))
            .col_expr(user::Column::LockedUntil, Expr::value(NO_TIME))
            .filter(user::Column::Id.eq(user_id))
            .filter(user::Column::LockedUntil.lte(now))
            .exec(&txn)
            .await?;
        let counted = user::Entity::update_many()
            .col_expr(
                user::Column::FailedSignIns,
                Expr::col(user::Column::FailedSignIns).add(1),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id))
            .filter(user::Column::DeletedAt.is_null())
            .filter(user::Column::LockedUntil.is_null())
            .exec(&txn)
            .await?;
        let row = user::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        if counted.rows_affected == 0 {
            txn.commit().await?;
            return Ok(Attempt::Locked {
                until: row.locked_until,
            });
        }
        let number = u32::try_from(row.failed_sign_ins).unwrap_or(u32::MAX);
        let locks_until = if number >= rule.threshold {
            let until = now + rule.duration;
            user::Entity::update_many()
                .col_expr(user::Column::LockedUntil, Expr::value(until))
                .filter(user::Column::Id.eq(user_id))
                .exec(&txn)
                .await?;
            Some(until)
        } else {
            None
        };
        txn.commit().await?;
        Ok(Attempt::Reserved {
            number,
            locks_until,
        })
    }

    /// Records a failed password attempt (and the lock it caused, if any).
    pub async fn record_failed_attempt(
        &self,
        failed: FailedAttempt<'_>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let (number, locks_until, locked_until) = match failed.attempt {
            Some(Attempt::Reserved {
                number,
                locks_until,
            }) => (Some(number), locks_until, None),
            Some(Attempt::Locked { until }) => (None, None, until),
            None => (None, None, None),
        };
        audit::record_failure(
            &txn,
            actor,
            Entry {
                organization_id: None,
                action: failed.action,
                target_type: "user",
                target_id: failed.user_id,
                before: None,
                after: Some(json!({
                    "email": failed.email,
                    "reason": failed.reason,
                    "attempt": number,
                    "locked_until": locked_until,
                })),
            },
        )
        .await?;
        if let Some(until) = locks_until {
            audit::record(
                &txn,
                actor,
                Entry {
                    organization_id: None,
                    action: "auth.locked",
                    target_type: "user",
                    target_id: failed.user_id,
                    before: None,
                    after: Some(json!({ "failed_attempts": number, "locked_until": until })),
                },
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Lifts the lock of a member of `organization_id` and starts their count again (an
    /// administrator's unlock). Returns whether the account was locked.
    pub async fn unlock_member(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        ensure_member(&txn, organization_id, user_id).await?;
        // The lockout guards the whole account: only an organization that manages it lifts it.
        if !self.manages_account(&txn, organization_id, user_id).await? {
            return Err(StoreError::Invalid(InvalidInput::new(
                "userId",
                "this account is not managed by the organization (its email domain is not one the organization verified), so only the account's owner can end its lockout, by resetting the password",
            )));
        }
        let row = user::Entity::find_by_id(user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("member"))?;
        let was_locked = row.locked_until.is_some_and(|until| until > now);
        clear_lockout(&txn, user_id, now).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "auth.unlocked",
                target_type: "user",
                target_id: Some(user_id),
                before: Some(json!({
                    "failed_sign_ins": row.failed_sign_ins,
                    "locked_until": row.locked_until,
                })),
                after: Some(json!({ "was_locked": was_locked })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(was_locked)
    }

    /// The password hash of a live account, if it has a password.
    pub async fn password_hash(&self, user_id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(credential::Entity::find()
            .filter(credential::Column::UserId.eq(user_id))
            .filter(credential::Column::Kind.eq(PASSWORD))
            .one(&self.db)
            .await?
            .map(|c| c.secret_hash))
    }

    /// Replaces the password of `user_id` (who proved the current one), ends the lockout count,
    /// retires outstanding password-reset links and revokes every other session than `keep`.
    /// Returns how many sessions were revoked.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        keep: Uuid,
        password_hash: String,
        actor: &Actor,
    ) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        set_password(&txn, user_id, password_hash, now).await?;
        clear_lockout(&txn, user_id, now).await?;
        super::password_resets::retire_resets(&txn, user_id, now).await?;
        let revoked = super::sessions::revoke_sessions_of(&txn, user_id, Some(keep), now).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: None,
                action: "auth.password_changed",
                target_type: "user",
                target_id: Some(user_id),
                before: None,
                after: Some(json!({ "sessions_revoked": revoked })),
            },
        )
        .await?;
        txn.commit().await?;
        self.sessions_revoked(user_id, revoked);
        Ok(revoked)
    }
}

impl Store {
    /// Forgets failed sign-ins and any lock: the password was just proven.
    pub async fn clear_failed_attempts(&self, user_id: Uuid) -> Result<(), StoreError> {
        clear_lockout(&self.db, user_id, self.clock.now()).await?;
        Ok(())
    }
}

/// A null timestamp, to clear a column.
const NO_TIME: Option<DateTime<Utc>> = None;

/// Ends a lockout: no lock, no failed attempts counted.
pub(super) async fn clear_lockout<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::FailedSignIns, Expr::value(0))
        .col_expr(user::Column::LockedUntil, Expr::value(NO_TIME))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Sets the password credential of `user_id` (creating it when the account has none).
pub(super) async fn set_password<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    password_hash: String,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let updated = credential::Entity::update_many()
        .col_expr(
            credential::Column::SecretHash,
            Expr::value(password_hash.clone()),
        )
        .col_expr(credential::Column::UpdatedAt, Expr::value(now))
        .filter(credential::Column::UserId.eq(user_id))
        .filter(credential::Column::Kind.eq(PASSWORD))
        .exec(conn)
        .await?;
    if updated.rows_affected == 0 {
        credential::Entity::insert(credential::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            kind: Set(PASSWORD.to_owned()),
            secret_hash: Set(password_hash),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// NOT_FOUND (`member`) unless `user_id` has a membership (any status) in `organization_id`.
pub(super) async fn ensure_member<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<(), StoreError> {
    membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(conn)
        .await?
        .map(|_| ())
        .ok_or(StoreError::NotFound("member"))
}
