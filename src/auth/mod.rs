//! Who is calling: accounts with passwords, sessions and their bearer tokens.
//!
//! `Auth` holds the sign-in rules (open sign-up or not, session lifetime) and is the one path
//! to an account or a session, for the GraphQL API and for the `bootstrap` command alike.
//! `Accounts` (accounts.rs) adds what needs the instance's settings, mailer and metrics:
//! password sign-in with lockout, password reset by email and password change.

pub mod accounts;
pub mod api_key_format;
pub mod api_key_jobs;
pub mod limits;
pub mod password;
pub mod token;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::cache::{KeyCache, KeyEntry, SessionCache};

use crate::domain::{Actor, Email, InvalidInput, Name, NewPassword, Session, User};
use crate::store::{NewSession, SessionLookup, Store, StoreError};
use token::TokenKind;

pub use accounts::Accounts;

/// What can go wrong when signing up, in or out.
#[derive(Debug)]
pub enum AuthError {
    SignupDisabled,
    /// Unknown email or wrong password: deliberately one answer for both.
    InvalidCredentials,
    /// Too many failed attempts: the account is locked (until then, and for this much longer,
    /// when known).
    Locked(Option<(DateTime<Utc>, chrono::Duration)>),
    /// Password resets go out by email, and no SMTP server is configured.
    ResetUnavailable,
    /// An organization the user belongs to signs its members in through its identity
    /// provider only (its slug).
    SsoRequired(String),
    Invalid(InvalidInput),
    Store(StoreError),
    /// Randomness or hashing failed; the detail is for the logs.
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<InvalidInput> for AuthError {
    fn from(e: InvalidInput) -> Self {
        Self::Invalid(e)
    }
}

impl From<password::PasswordError> for AuthError {
    fn from(e: password::PasswordError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<getrandom::Error> for AuthError {
    fn from(e: getrandom::Error) -> Self {
        Self::Internal(format!("no randomness: {e}"))
    }
}

/// A new session and the bearer token that opens it (shown once, never stored).
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub token: String,
}

/// The outcome of presenting (or not) a bearer token.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User {
        user: Arc<User>,
        session: Arc<Session>,
    },
    /// An API key that may be used now (its owner's standing is decided with each check).
    Key(Arc<KeyEntry>),
    /// A token was presented but opens nothing; the reason is safe to show to the client.
    Rejected(&'static str),
}

#[derive(Clone)]
pub struct Auth {
    store: Store,
    sessions: SessionCache,
    pub keys: KeyCache,
    allow_signup: bool,
    session_ttl: Duration,
}

impl Auth {
    pub fn new(
        store: Store,
        sessions: SessionCache,
        keys: KeyCache,
        allow_signup: bool,
        session_ttl: std::time::Duration,
    ) -> Self {
        Self {
            store,
            sessions,
            keys,
            allow_signup,
            session_ttl: Duration::from_std(session_ttl).unwrap_or(Duration::days(14)),
        }
    }

    /// Open sign-up: creates an account and signs it in. Refused when sign-up is turned off.
    pub async fn sign_up(
        &self,
        email: &str,
        name: &str,
        password: &str,
        actor: &Actor,
    ) -> Result<SignedIn, AuthError> {
        if !self.allow_signup {
            return Err(AuthError::SignupDisabled);
        }
        let user = self
            .create_account(email, name, password, None, actor)
            .await?;
        self.open_session(user, "password", "auth.sign_in", actor)
            .await
    }

    /// Creates an account, whatever the sign-up setting (for `bootstrap`).
    pub async fn create_account(
        &self,
        email: &str,
        name: &str,
        password: &str,
        managed_by: Option<uuid::Uuid>,
        actor: &Actor,
    ) -> Result<User, AuthError> {
        let email = Email::parse("email", email)?;
        let name = Name::parse("name", name)?;
        let password = NewPassword::parse("password", password, &email)?;
        let phc = password::hash(password.expose().to_owned()).await?;
        Ok(self
            .store
            .create_user(&email, &name, phc, managed_by, actor)
            .await?)
    }

    /// Opens a session for an account whose identity was proven some other way (bootstrap).
    pub async fn open_session(
        &self,
        user: User,
        method: &str,
        action: &'static str,
        actor: &Actor,
    ) -> Result<SignedIn, AuthError> {
        self.start_session(user, method, action, false, None, actor)
            .await
    }

    /// Opens a session for a user an organization's identity provider just signed in.
    pub async fn open_sso_session(
        &self,
        user: User,
        organization_id: uuid::Uuid,
        actor: &Actor,
    ) -> Result<SignedIn, AuthError> {
        self.start_session(
            user,
            "sso",
            "auth.sso_sign_in",
            false,
            Some(organization_id),
            actor,
        )
        .await
    }

    /// Opens a session acting as `subject` in one organization for `ttl`, for `impersonator`
    /// (who was checked to hold at least what the subject holds there), audited as theirs.
    pub async fn open_impersonation(
        &self,
        subject: User,
        organization_id: uuid::Uuid,
        impersonator: uuid::Uuid,
        reason: &str,
        ttl: Duration,
        actor: &Actor,
    ) -> Result<SignedIn, AuthError> {
        let minted = token::mint(TokenKind::Session)?;
        let session = self
            .store
            .create_session(
                NewSession {
                    user_id: subject.id,
                    token_hash: minted.hash,
                    method: "impersonation",
                    ttl,
                    action: "impersonation.start",
                    clears_lockout: false,
                    organization_id: Some(organization_id),
                    impersonation: Some((impersonator, reason)),
                },
                actor,
            )
            .await?;
        Ok(SignedIn {
            user: subject,
            session,
            token: minted.plaintext,
        })
    }

    /// Opens a session; `clears_lockout` when a password was just proven.
    async fn start_session(
        &self,
        user: User,
        method: &str,
        action: &'static str,
        clears_lockout: bool,
        organization_id: Option<uuid::Uuid>,
        actor: &Actor,
    ) -> Result<SignedIn, AuthError> {
        let minted = token::mint(TokenKind::Session)?;
        let session = self
            .store
            .create_session(
                NewSession {
                    user_id: user.id,
                    token_hash: minted.hash,
                    method,
                    ttl: self.session_ttl,
                    action,
                    clears_lockout,
                    organization_id,
                    impersonation: None,
                },
                &actor.as_person(user.id, &user.email),
            )
            .await?;
        Ok(SignedIn {
            user,
            session,
            token: minted.plaintext,
        })
    }

    /// Resolves a bearer token (a session's or an API key) into the caller, and records the
    /// activity. `actor` is the request's (its address is where a key's networks are checked).
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        actor: &Actor,
    ) -> Result<Caller, StoreError> {
        let Some(bearer) = bearer else {
            return Ok(Caller::Anonymous);
        };
        if api_key_format::looks_like_key(bearer) {
            return self.authenticate_key(bearer, actor).await;
        }
        match self
            .sessions
            .lookup(&self.store, &token::hash(bearer))
            .await?
        {
            SessionLookup::Valid(session, user) => Ok(Caller::User { user, session }),
            SessionLookup::Expired => {
                Ok(Caller::Rejected("the session has expired; sign in again"))
            }
            SessionLookup::Revoked => Ok(Caller::Rejected(
                "the session has been revoked; sign in again",
            )),
            SessionLookup::Unknown => Ok(Caller::Rejected("the bearer token is not valid")),
        }
    }

    /// An API key: its shape (no database read for a typo), then the cached or stored key and
    /// whether it may be used now from the request's address. A refusal is audited (once a
    /// minute per key and reason); the first use of a rotated key's successor ends the old
    /// key's overlap.
    async fn authenticate_key(&self, secret: &str, actor: &Actor) -> Result<Caller, StoreError> {
        if !api_key_format::well_formed(secret) {
            return Ok(Caller::Rejected(
                "the API key is malformed (its checksum does not match): copy it again, whole",
            ));
        }
        let hash = token::hash(secret);
        let Some(entry) = self.keys.lookup(&self.store, &hash).await? else {
            return Ok(Caller::Rejected("the bearer token is not valid"));
        };
        let now = self.store.clock().now();
        let ip = actor.ip.as_deref().and_then(|ip| ip.parse().ok());
        if let Some(why) = entry.key.refusal(now, ip) {
            if self.keys.refusal_to_audit(entry.key.id, why) {
                let actor = key_actor(&entry, actor);
                if let Err(e) = self.store.audit_key_refusal(&entry.key, why, &actor).await {
                    tracing::warn!(error = ?e, key = %entry.key.id, "could not audit a refused API key");
                }
            }
            return Ok(Caller::Rejected(why.message()));
        }
        if entry.key.rotated_from.is_some() && entry.key.first_used_at.is_none() {
            self.store
                .first_use_of_successor(&entry.key, &key_actor(&entry, actor))
                .await?;
            // Read again next time: it has a first use now.
            self.keys.forget(&hash);
        }
        self.keys.used(&entry.key, actor.ip.as_deref(), now);
        Ok(Caller::Key(entry))
    }

    /// Ends a session (sign-out).
    pub async fn sign_out(&self, session: &Session, actor: &Actor) -> Result<(), StoreError> {
        self.store.sign_out(session, actor).await
    }
}

/// The audit actor of a request made with `key`: its owner, through the key.
pub fn key_actor(key: &KeyEntry, request: &Actor) -> Actor {
    Actor {
        user_id: Some(key.key.owner.principal_id()),
        email: key.user.as_ref().map(|u| u.email.clone()),
        kind: match key.key.owner {
            crate::domain::KeyOwner::User(_) => crate::domain::ActorKind::User,
            crate::domain::KeyOwner::ServiceAccount(_) => crate::domain::ActorKind::ServiceAccount,
        },
        credential_id: Some(key.key.id),
        ..request.clone()
    }
}
