//! Sign-in safety and password recovery: password sign-in with lockout, password reset by
//! email, password change.
//!
//! Lockout: every password attempt on an account is first counted in the store, and only a
//! counted attempt is verified; the attempt that reaches `lockout_threshold` locks the account
//! for `lockout_duration` (a correct password lifts it again). So however many attempts arrive
//! at once, at most `lockout_threshold` passwords are verified per lock period. A wrong current
//! password given to `changePassword` counts too: it is the same secret being guessed, and a
//! stolen session must not become an unlimited guessing oracle.
//!
//! Unknown emails cost the same verification (against a dummy hash) and get the same answer as
//! a wrong password. A reset request gets the same answer whether or not the email names an
//! account, does comparable database work either way, and sends its email in the background,
//! so that neither the answer nor its timing tells.

mod administration;
pub use administration::IssuedReset;
mod verification;

use std::sync::Arc;

use chrono::Duration;

use super::token::{self, TokenKind};
use super::{Auth, AuthError, SignedIn, password};
use crate::config::Config;
use crate::domain::{Actor, Email, InvalidInput, NewPassword, Session, User};
use crate::mail::{Mail, Mailer};
use crate::metrics::Metrics;
use crate::store::{Attempt, FailedAttempt, LockoutRule, ResetIssue, ResetLookup};

/// The account flows that need the instance's settings, mailer and metrics besides [`Auth`];
/// borrowed for one request.
pub struct Accounts<'a> {
    auth: &'a Auth,
    config: &'a Config,
    mailer: &'a Arc<Mailer>,
    metrics: &'a Metrics,
}

impl<'a> Accounts<'a> {
    pub fn new(
        auth: &'a Auth,
        config: &'a Config,
        mailer: &'a Arc<Mailer>,
        metrics: &'a Metrics,
    ) -> Self {
        Self {
            auth,
            config,
            mailer,
            metrics,
        }
    }

    /// Checks an email and password and opens a session. Unknown email and wrong password get
    /// one answer; a locked account is refused without its password being checked.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        actor: &Actor,
    ) -> Result<SignedIn, AuthError> {
        let store = &self.auth.store;
        // A malformed email cannot belong to an account: same answer as an unknown one.
        let email = Email::parse("email", email).ok();
        let found = match &email {
            Some(email) => store.user_with_password(email).await?,
            None => None,
        };
        let Some((user, phc)) = found else {
            self.verify(password, None).await?;
            store
                .record_failed_attempt(
                    FailedAttempt {
                        action: "auth.sign_in_failed",
                        user_id: None,
                        email: email.as_ref().map(Email::as_str),
                        reason: "unknown_account",
                        attempt: None,
                    },
                    actor,
                )
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        let attempt = store
            .reserve_password_attempt(user.id, self.lockout_rule(), self.auth.store.clock().now())
            .await?;
        if let Attempt::Locked { until } = attempt {
            store
                .record_failed_attempt(
                    FailedAttempt {
                        action: "auth.sign_in_refused",
                        user_id: Some(user.id),
                        email: Some(&user.email),
                        reason: "locked",
                        attempt: Some(attempt),
                    },
                    actor,
                )
                .await?;
            return Err(AuthError::Locked(
                until.map(|until| (until, until - self.auth.store.clock().now())),
            ));
        }
        if self.verify(password, phc).await? {
            // Enforced SSO: members of such an organization sign in through its IdP; its
            // admins keep password sign-in (the break-glass path).
            if let Some(slug) = store.sso_required_by(user.id).await? {
                store.clear_failed_attempts(user.id).await?;
                return Err(AuthError::SsoRequired(slug));
            }
            return self
                .auth
                .start_session(user, "password", "auth.sign_in", true, None, actor)
                .await;
        }
        store
            .record_failed_attempt(
                FailedAttempt {
                    action: "auth.sign_in_failed",
                    user_id: Some(user.id),
                    email: Some(&user.email),
                    reason: "wrong_password",
                    attempt: Some(attempt),
                },
                actor,
            )
            .await?;
        Err(AuthError::InvalidCredentials)
    }

    /// Sends a password-reset link to `email` when it names an account; the same answer, and
    /// about the same work, when it does not. Refused (whatever the email) when no SMTP server
    /// is configured.
    pub async fn request_password_reset(
        &self,
        email: &str,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let store = &self.auth.store;
        let email = Email::parse("email", email)?;
        if !self.mailer.configured() {
            return Err(AuthError::ResetUnavailable);
        }
        let minted = token::mint(TokenKind::PasswordReset)?;
        let ttl = Duration::from_std(self.config.password_reset_ttl)
            .map_err(|e| AuthError::Internal(format!("password_reset_ttl: {e}")))?;
        let Some((user, _)) = store.user_with_password(&email).await? else {
            store.password_reset_decoy(&minted.hash).await?;
            return Ok(());
        };
        store
            .create_password_reset(user.id, minted.hash, ttl, ResetIssue::Requested, actor)
            .await?;
        let link = format!(
            "{}/password-reset?token={}",
            self.config.public_url.trim_end_matches('/'),
            minted.plaintext
        );
        self.send_reset_mail(user, email, link);
        Ok(())
    }

    /// Sends the reset email in the background: how long an SMTP server takes must not tell
    /// whether the account exists. For the same reason a failure cannot be reported to the
    /// client; it is logged, and the user can ask again.
    fn send_reset_mail(&self, user: User, email: Email, link: String) {
        let minutes = self.config.password_reset_ttl.as_secs().div_ceil(60);
        let body = format!(
            "Hello {name},\n\n\
             Someone (hopefully you) asked to reset the password of your account {email}.\n\
             To choose a new password, open this link within {minutes} minutes:\n\n\
             {link}\n\n\
             The link works once. If you did not ask for this, ignore this message: your\n\
             password stays as it is.\n",
            name = user.name,
            email = email.as_str(),
        );
        let mailer = Arc::clone(self.mailer);
        tokio::spawn(async move {
            let mail = Mail {
                to: &email,
                to_name: Some(&user.name),
                subject: "Reset your password".to_owned(),
                body,
            };
            match mailer.send(mail).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(user = %user.id, "password reset not sent: no SMTP server")
                }
                Err(e) => {
                    tracing::error!(user = %user.id, error = %e, "password reset email not sent")
                }
            }
        });
    }

    /// Sets a new password with a reset token: single use; ends the lockout and revokes every
    /// session of the account. Returns how many sessions were revoked.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        actor: &Actor,
    ) -> Result<u64, AuthError> {
        let store = &self.auth.store;
        let invalid = |message: &str| AuthError::Invalid(InvalidInput::new("token", message));
        let (reset_id, user) = match store
            .password_reset(&token::hash(token.trim()), self.auth.store.clock().now())
            .await?
        {
            ResetLookup::Valid { id, user } => (id, user),
            ResetLookup::Used => {
                return Err(invalid(
                    "this password-reset link has already been used; ask for a new one",
                ));
            }
            ResetLookup::Expired => {
                return Err(invalid(
                    "this password-reset link has expired; ask for a new one",
                ));
            }
            ResetLookup::Unknown => return Err(invalid("this password-reset link is not valid")),
        };
        let email = Email::parse("email", &user.email)?;
        let password = NewPassword::parse("newPassword", new_password, &email)?;
        let phc = password::hash(password.expose().to_owned()).await?;
        Ok(store
            .use_password_reset(
                reset_id,
                user.id,
                phc,
                &actor.or_person(user.id, &user.email),
            )
            .await?)
    }

    /// Changes the caller's password, given the current one (a wrong one counts toward the
    /// lockout); keeps `session` and revokes the account's other sessions. Returns how many
    /// were revoked.
    pub async fn change_password(
        &self,
        user: &User,
        session: &Session,
        current: &str,
        new: &str,
        actor: &Actor,
    ) -> Result<u64, AuthError> {
        let store = &self.auth.store;
        let email = Email::parse("email", &user.email)?;
        let new = NewPassword::parse("newPassword", new, &email)?;
        if new.expose() == current {
            return Err(AuthError::Invalid(InvalidInput::new(
                "newPassword",
                "the new password must differ from the current one",
            )));
        }
        self.confirm_password(
            user,
            "currentPassword",
            current,
            "auth.password_change_failed",
            actor,
        )
        .await?;
        let phc = password::hash(new.expose().to_owned()).await?;
        Ok(store
            .change_password(user.id, session.id, phc, actor)
            .await?)
    }

    /// Checks that the signed-in `user` knows their password before an account-wide change
    /// (`field` names it in the error). A wrong one is audited as `failed_action` and counts
    /// toward the lockout: a stolen session must not become an unlimited guessing oracle.
    async fn confirm_password(
        &self,
        user: &User,
        field: &'static str,
        password: &str,
        failed_action: &'static str,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let store = &self.auth.store;
        let phc = store.password_hash(user.id).await?;
        let attempt = store
            .reserve_password_attempt(user.id, self.lockout_rule(), store.clock().now())
            .await?;
        if let Attempt::Locked { until } = attempt {
            return Err(AuthError::Locked(
                until.map(|until| (until, until - store.clock().now())),
            ));
        }
        if self.verify(password, phc).await? {
            store.clear_failed_attempts(user.id).await?;
            return Ok(());
        }
        store
            .record_failed_attempt(
                FailedAttempt {
                    action: failed_action,
                    user_id: Some(user.id),
                    email: Some(&user.email),
                    reason: "wrong_password",
                    attempt: Some(attempt),
                },
                actor,
            )
            .await?;
        Err(AuthError::Invalid(InvalidInput::new(
            field,
            "the current password is wrong",
        )))
    }

    /// Verifies a password against `phc` (a dummy hash when `None`), counted in the metrics.
    async fn verify(&self, password: &str, phc: Option<String>) -> Result<bool, AuthError> {
        self.metrics.password_verifications.inc();
        Ok(password::verify(password.to_owned(), phc).await?)
    }

    fn lockout_rule(&self) -> LockoutRule {
        LockoutRule {
            threshold: self.config.lockout_threshold,
            duration: Duration::from_std(self.config.lockout_duration)
                .unwrap_or(Duration::minutes(15)),
        }
    }
}
