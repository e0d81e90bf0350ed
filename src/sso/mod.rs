//! Single sign-on: an organization's identity providers (OIDC, SAML), and what happens when
//! one of them vouches for a person: the account is found or created (just in time), made an
//! active member, their SSO-derived roles synchronised with the IdP groups they have now, and
//! a session opened exactly like a password sign-in's.
//!
//! - `oidc.rs`: the authorization-code flow with PKCE, state and nonce (openidconnect).
//! - `saml.rs`: SP-initiated and IdP-initiated SAML 2.0 (samael), replay protection.
//! - this file: [`Sso`], what the flows need of the instance, and [`complete_login`], which
//!   both flows end in.

pub mod oidc;
pub mod saml;

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::{Auth, SignedIn};
use crate::config::Config;
use crate::crypto::SecretBox;
use crate::domain::{Actor, Email};
use crate::outbound::Outbound;
use crate::store::{Store, StoreError};

pub use crate::domain::sso::{Identity, OidcSettings, Provider, ProviderSettings, SamlSettings};

/// How long a sign-in started at the gateway may take at the IdP.
pub const REQUEST_TTL_SECS: i64 = 600;

/// The gateway's own addresses for a provider, to configure at the IdP.
pub struct ServiceUrls {
    /// OIDC: the redirect URI to register.
    pub redirect_uri: String,
    /// SAML: the SP entity id (also where its metadata is served).
    pub sp_entity_id: String,
    /// SAML: the assertion consumer service URL.
    pub acs_url: String,
    /// SAML: the SP metadata XML.
    pub metadata_url: String,
    /// Where a browser starts signing in with this provider.
    pub login_url: String,
}

impl ServiceUrls {
    pub fn of(public_url: &str, provider: &Provider) -> Self {
        let base = public_url.trim_end_matches('/');
        let id = provider.id;
        let kind = provider.settings.kind();
        Self {
            redirect_uri: format!("{base}/auth/oidc/callback"),
            sp_entity_id: format!("{base}/auth/saml/{id}/metadata"),
            acs_url: format!("{base}/auth/saml/{id}/acs"),
            metadata_url: format!("{base}/auth/saml/{id}/metadata"),
            login_url: format!("{base}/auth/{kind}/{id}/login"),
        }
    }
}

/// Why an SSO sign-in failed. The message is for the person signing in (shown on the error
/// page or in the redirect), never internal detail.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("{0}")]
    Refused(String),
    #[error("the identity provider is not configured correctly: {0}")]
    Config(String),
    #[error("the identity provider could not be reached or answered wrongly: {0}")]
    Upstream(String),
    #[error("the sign-in could not be recorded")]
    Store(StoreError),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for SsoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(why) => Self::Refused(why.message),
            StoreError::NotFound(what) => Self::Refused(format!("{what} not found")),
            other => Self::Store(other),
        }
    }
}

/// `raw` when it is a path on this site (`/…`, not `//host/…`), so that no sign-in ends on
/// another site: the only `return_to` either flow hands back to the landing page.
pub fn safe_return_to(raw: &str) -> Option<String> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && raw.len() <= 2048
        && !raw.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| raw.to_owned())
}

/// What the SSO flows need of the instance: its store, its sessions, its public URL, the key
/// of secrets at rest, the one outbound HTTP client and what it fetched. One per instance, in
/// its services; nothing is kept in process globals.
pub struct Sso {
    store: Store,
    auth: Auth,
    config: Arc<Config>,
    secrets: Arc<SecretBox>,
    outbound: Arc<Outbound>,
    idp_documents: IdpDocuments,
}

impl Sso {
    pub fn new(
        store: Store,
        auth: Auth,
        config: Arc<Config>,
        secrets: Arc<SecretBox>,
        outbound: Arc<Outbound>,
    ) -> Self {
        Self {
            store,
            auth,
            config,
            secrets,
            outbound,
            idp_documents: IdpDocuments::default(),
        }
    }

    fn store(&self) -> &Store {
        &self.store
    }
}

/// What this instance remembers of the documents identity providers publish (fetched through
/// its outbound client): OIDC discovery documents with their keys, by issuer, and SAML
/// metadata, by URL.
#[derive(Default)]
pub struct IdpDocuments {
    pub oidc: oidc::Discovered,
    pub saml: saml::MetadataCache,
}

/// Fetches the provider's discovery document (OIDC) or metadata (SAML) and says what was found,
/// or what is wrong, in plain words.
pub async fn test_connection(sso: &Sso, provider: &Provider) -> Result<String, String> {
    match &provider.settings {
        ProviderSettings::Oidc(settings) => oidc::test_connection(sso, settings).await,
        ProviderSettings::Saml(settings) => {
            saml::test_connection(&sso.outbound, &sso.idp_documents.saml, settings).await
        }
    }
}

/// How an SSO round trip ended.
pub enum Completed {
    SignedIn(Box<SignedIn>),
    /// The identity is proven for a link to the account that asked (`startSsoLink`); the
    /// account confirms it with `code` (`confirmSsoLink`, from its own session). No session.
    LinkPending {
        code: String,
    },
}

/// How long a proven identity waits for its account to confirm the link.
const LINK_CONFIRM_TTL_SECS: i64 = 600;

/// Ends every successful SSO round trip: links the identity to the account that started it
/// for that (see `link_identity`), or signs the person in ([`complete_login`]).
pub async fn complete(
    sso: &Sso,
    provider: &Provider,
    identity: Identity,
    link_user_id: Option<Uuid>,
    actor: &Actor,
) -> Result<Completed, SsoError> {
    match link_user_id {
        Some(user_id) => {
            // Not linked yet: the browser that came back may not be the account's (someone
            // could have sent it the link URL). The account's own session confirms.
            let minted = crate::auth::token::mint(crate::auth::token::TokenKind::SsoLink)
                .map_err(|e| SsoError::Internal(e.to_string()))?;
            let identity_json =
                serde_json::to_string(&identity).map_err(|e| SsoError::Internal(e.to_string()))?;
            sso.store()
                .park_sso_link(
                    provider.id,
                    user_id,
                    minted.hash,
                    identity_json,
                    chrono::Duration::seconds(LINK_CONFIRM_TTL_SECS),
                )
                .await?;
            Ok(Completed::LinkPending {
                code: minted.plaintext,
            })
        }
        None => Ok(Completed::SignedIn(Box::new(
            complete_login(sso, provider, identity, actor).await?,
        ))),
    }
}

/// Confirms a link parked by [`complete`]: account `user_id`, signed in with its own password
/// session, presents the code its browser was handed; the identity is then linked.
pub async fn confirm_link(
    sso: &Sso,
    code: &str,
    user_id: Uuid,
    actor: &Actor,
) -> Result<Provider, SsoError> {
    let refused = || {
        SsoError::Refused(
            "this link code is unknown, used, expired or was not started by this account: start the link again"
                .to_owned(),
        )
    };
    let hash = crate::auth::token::hash(code.trim());
    let (provider_id, identity_json) = sso
        .store()
        .take_sso_link(&hash, user_id)
        .await?
        .ok_or_else(refused)?;
    let identity: Identity =
        serde_json::from_str(&identity_json).map_err(|e| SsoError::Internal(e.to_string()))?;
    let provider = sso
        .store()
        .provider(provider_id)
        .await?
        .ok_or_else(|| SsoError::Refused("this sign-in method no longer exists".to_owned()))?;
    link_identity(sso, &provider, &identity, user_id, actor).await?;
    Ok(provider)
}

/// Links `identity` to account `user_id`, whose password session started the round trip and
/// confirmed it: the IdP proved the person controls the identity, and the gateway that they
/// hold the account. Later sign-ins of the identity reach the account whatever its email.
async fn link_identity(
    sso: &Sso,
    provider: &Provider,
    identity: &Identity,
    user_id: Uuid,
    actor: &Actor,
) -> Result<(), SsoError> {
    if !provider.enabled {
        return Err(SsoError::Refused(
            "this sign-in method is turned off for the organization".to_owned(),
        ));
    }
    let user = sso
        .store()
        .user(user_id)
        .await?
        .ok_or_else(|| SsoError::Refused("this account no longer exists".to_owned()))?;
    let actor = actor.as_person(user.id, &user.email);
    sso.store()
        .link_sso_identity(provider, identity, &user, &actor)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(why) => SsoError::Refused(why),
            other => other.into(),
        })
}

/// Ends every successful SSO sign-in: finds or creates the user by email, makes them an active
/// member of the provider's organization (a suspended or inactive member is refused), brings
/// their SSO-derived bindings in line with the mapped groups they have now (granted when
/// missing, revoked when their group is gone; bindings made by hand are never touched), and
/// opens a session like a password sign-in. Every change is audited (source `sso`, the
/// provider, the groups seen) and goes through the revision and change-event mechanism.
pub async fn complete_login(
    sso: &Sso,
    provider: &Provider,
    identity: Identity,
    actor: &Actor,
) -> Result<SignedIn, SsoError> {
    if !provider.enabled {
        return Err(SsoError::Refused(
            "this sign-in method is turned off for the organization".to_owned(),
        ));
    }
    let email = Email::parse("email", &identity.email).map_err(|_| {
        SsoError::Refused("the identity provider sent no valid email address".to_owned())
    })?;
    let user = sso
        .store()
        .sso_account(provider, &identity, &email, actor)
        .await?;
    let actor = actor.as_person(user.id, &user.email);
    sso.store()
        .sso_sync(provider, &user, &identity, &actor)
        .await?;
    sso.auth
        .open_sso_session(user, provider.organization_id, &actor)
        .await
        .map_err(|e| SsoError::Internal(format!("{e:?}")))
}
