//! Account administration: a person changes their email or deletes their account (each
//! confirmed with the current password), and an admin issues a password reset for an account
//! their organization manages.
//!
//! - A new email takes effect only when the link sent to it is used; the old address is told.
//! - An admin's reset link is emailed to the member when the server sends email; otherwise it
//!   is answered to the admin, and then it proves nothing about the member's email and works
//!   only while the organization still manages the account alone.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::Accounts;
use crate::auth::AuthError;
use crate::auth::token::{self, TokenKind};
use crate::domain::{Actor, Email, InvalidInput, User};
use crate::mail::Mail;
use crate::store::{DeletedAccount, ResetIssue};

/// A reset link an admin issued.
pub struct IssuedReset {
    /// The link itself, when it could not be emailed (the admin hands it over).
    pub link: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl Accounts<'_> {
    /// Sends `user` a link to `new_email` that makes it their email when used; the current
    /// address is told. Needs the current password, and an SMTP server. Returns the address
    /// as stored (normalized) and when the link expires.
    pub async fn request_email_change(
        &self,
        user: &User,
        password: &str,
        new_email: &str,
        actor: &Actor,
    ) -> Result<(Email, DateTime<Utc>), AuthError> {
        let new_email = Email::parse("newEmail", new_email)?;
        if new_email.as_str() == user.email {
            return Err(InvalidInput::new("newEmail", "this is already your email").into());
        }
        if !self.mailer.configured() {
            return Err(InvalidInput::new(
                "newEmail",
                "this server sends no email, so it cannot prove a new address; ask its operator",
            )
            .into());
        }
        self.confirm_password(
            user,
            "password",
            password,
            "user.email_change_failed",
            actor,
        )
        .await?;
        let minted = token::mint(TokenKind::EmailVerification)?;
        let ttl = Duration::from_std(self.config.email_verification_ttl)
            .map_err(|e| AuthError::Internal(format!("email_verification_ttl: {e}")))?;
        let expires_at = self
            .auth
            .store
            .create_email_change(user, &new_email, minted.hash, ttl, actor)
            .await?;
        let link = format!(
            "{}/verify-email?token={}",
            self.config.public_url.trim_end_matches('/'),
            minted.plaintext
        );
        let hours = self.config.email_verification_ttl.as_secs().div_ceil(3600);
        let confirm = format!(
            "Hello {name},\n\n\
             To make {new} the email of your account (now {old}), open this link within\n\
             {hours} hours:\n\n\
             {link}\n\n\
             If you did not ask for this, ignore this message: nothing changes.\n",
            name = user.name,
            new = new_email.as_str(),
            old = user.email,
        );
        let notice = format!(
            "Hello {name},\n\n\
             Someone signed in to your account asked to change its email from {old} to\n\
             {new}. It changes only when the link sent to the new address is opened.\n\n\
             If this was not you, change your password now: your session may be in\n\
             someone else's hands.\n",
            name = user.name,
            new = new_email.as_str(),
            old = user.email,
        );
        let old = Email::parse("email", &user.email)?;
        self.send_in_background(
            user,
            new_email.clone(),
            "Confirm your new email address",
            confirm,
        );
        self.send_in_background(user, old, "Your account's email is being changed", notice);
        Ok((new_email, expires_at))
    }

    /// Deletes `user`'s account, given their password (see [`crate::store::Store::delete_account`]).
    pub async fn delete_account(
        &self,
        user: &User,
        password: &str,
        actor: &Actor,
    ) -> Result<DeletedAccount, AuthError> {
        self.confirm_password(user, "password", password, "user.delete_failed", actor)
            .await?;
        Ok(self.auth.store.delete_account(user.id, actor).await?)
    }

    /// Issues a single-use reset link for `member`, an account `organization_id` manages (the
    /// caller checked it), on behalf of the admin `admin_id`: emailed to the member when the
    /// server sends email, else answered.
    pub async fn issue_member_reset(
        &self,
        member: &User,
        organization_id: Uuid,
        admin_id: Uuid,
        actor: &Actor,
    ) -> Result<IssuedReset, AuthError> {
        let minted = token::mint(TokenKind::PasswordReset)?;
        let ttl = Duration::from_std(self.config.password_reset_ttl)
            .map_err(|e| AuthError::Internal(format!("password_reset_ttl: {e}")))?;
        let emailed = self.mailer.configured();
        let expires_at = self
            .auth
            .store
            .create_password_reset(
                member.id,
                minted.hash,
                ttl,
                ResetIssue::ByAdmin {
                    organization_id,
                    handed_to: (!emailed).then_some(admin_id),
                },
                actor,
            )
            .await?;
        let link = format!(
            "{}/password-reset?token={}",
            self.config.public_url.trim_end_matches('/'),
            minted.plaintext
        );
        if !emailed {
            return Ok(IssuedReset {
                link: Some(link),
                expires_at,
            });
        }
        let minutes = self.config.password_reset_ttl.as_secs().div_ceil(60);
        let body = format!(
            "Hello {name},\n\n\
             An administrator of your organization started a password reset for your\n\
             account {email}. To choose a new password, open this link within {minutes}\n\
             minutes:\n\n\
             {link}\n\n\
             The link works once. Until it is used your password stays as it is.\n",
            name = member.name,
            email = member.email,
        );
        let to = Email::parse("email", &member.email)?;
        self.send_in_background(member, to, "Reset your password", body);
        Ok(IssuedReset {
            link: None,
            expires_at,
        })
    }

    /// Sends one message to `to` in the background (the answer does not wait for the SMTP
    /// server); a failure is logged.
    fn send_in_background(&self, user: &User, to: Email, subject: &'static str, body: String) {
        let mailer = Arc::clone(self.mailer);
        let (id, name) = (user.id, user.name.clone());
        tokio::spawn(async move {
            let mail = Mail {
                to: &to,
                to_name: Some(&name),
                subject: subject.to_owned(),
                body,
            };
            if let Err(e) = mailer.send(mail).await {
                tracing::error!(user = %id, error = %e, subject, "email not sent");
            }
        });
    }
}
