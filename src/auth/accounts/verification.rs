//! Proving an account's email: a single-use link sent at sign-up and on request. An account
//! whose email is not proven can sign in, but no identity provider ever reaches it (so that
//! registering someone else's address before they do gains nothing).

use std::sync::Arc;

use chrono::Duration;

use super::Accounts;
use crate::auth::AuthError;
use crate::auth::token::{self, TokenKind};
use crate::domain::{Actor, Email, User};
use crate::mail::Mail;

impl Accounts<'_> {
    /// Emails `user` a link that proves their address, valid `email_verification_ttl`; older
    /// links stop working. `Ok(false)` when no SMTP server is configured (nothing is sent) or
    /// the email is already verified.
    pub async fn send_email_verification(&self, user: &User) -> Result<bool, AuthError> {
        if user.email_verified || !self.mailer.configured() {
            return Ok(false);
        }
        let minted = token::mint(TokenKind::EmailVerification)?;
        let ttl = Duration::from_std(self.config.email_verification_ttl)
            .map_err(|e| AuthError::Internal(format!("email_verification_ttl: {e}")))?;
        self.auth
            .store
            .create_email_verification(user, minted.hash, ttl)
            .await?;
        let link = format!(
            "{}/verify-email?token={}",
            self.config.public_url.trim_end_matches('/'),
            minted.plaintext
        );
        let hours = self.config.email_verification_ttl.as_secs().div_ceil(3600);
        let body = format!(
            "Hello {name},\n\n\
             Please confirm that {email} is your address by opening this link within {hours}\n\
             hours:\n\n\
             {link}\n\n\
             If you did not create an account, ignore this message.\n",
            name = user.name,
            email = user.email,
        );
        let email = Email::parse("email", &user.email)?;
        let mailer = Arc::clone(self.mailer);
        let (id, name) = (user.id, user.name.clone());
        // In the background: the sign-up's answer does not wait for the SMTP server.
        tokio::spawn(async move {
            let mail = Mail {
                to: &email,
                to_name: Some(&name),
                subject: "Confirm your email address".to_owned(),
                body,
            };
            if let Err(e) = mailer.send(mail).await {
                tracing::error!(user = %id, error = %e, "email verification not sent");
            }
        });
        Ok(true)
    }

    /// Uses an emailed verification link: the account's email is verified.
    pub async fn verify_email(&self, token: &str, actor: &Actor) -> Result<User, AuthError> {
        Ok(self
            .auth
            .store
            .use_email_verification(&token::hash(token.trim()), actor)
            .await?)
    }
}
