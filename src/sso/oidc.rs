//! OpenID Connect sign-in (authorization code + PKCE, state, nonce) with the openidconnect crate.
//!
//! [`start`] discovers the provider (`{issuer}/.well-known/openid-configuration` and its JWKS,
//! remembered for [`DISCOVERY_TTL`] per issuer), remembers a pending sign-in under a random
//! `state` (with the nonce and the PKCE verifier, encrypted) and returns the IdP's
//! authorization URL. [`finish`] takes that pending sign-in back (once: a replayed or unknown
//! `state` is refused), exchanges the code with the verifier and the client secret, checks the
//! ID token (signature against the JWKS, issuer, audience, expiry, nonce, and the access-token
//! hash when there is one) and reads who signed in: `sub`, `email`, `name` and the groups claim
//! named in the settings, from the ID token, else from userinfo. [`test_connection`] tells an
//! admin in plain words what is wrong with an issuer.
//!
//! Messages in the [`SsoError`]s made here are written for the person signing in; the
//! underlying errors are logged.

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::url::Url;
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, DiscoveryError, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Sso;
use super::{Identity, OidcSettings, Provider, ProviderSettings, ServiceUrls, SsoError};
use crate::outbound::{FetchError, Outbound, Redirects};
use crate::store::SsoRequest;

/// How long discovered provider metadata (with its JWKS) is reused. A signature that does not
/// verify against remembered keys is checked again against freshly fetched ones, so a key
/// rotation at the IdP is picked up at once.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// The scopes asked for when the settings name none.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// What the person signing in is told when an address the IdP's settings lead to is refused
/// (the admin's `testSsoConnection` names it).
const REFUSED: &str =
    "refused: its address is not a public one, and this server does not reach private networks";

/// Claims besides the standard ones, kept as JSON: which one holds the groups is a setting.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type IdFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;

/// A client from discovered metadata: authorization endpoint known, token and userinfo
/// endpoints maybe.
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Provider metadata (with the JWKS) by issuer URL, for [`DISCOVERY_TTL`]: one per instance,
/// in its services.
pub struct Discovered(moka::sync::Cache<String, Arc<CoreProviderMetadata>>);

impl Default for Discovered {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(DISCOVERY_TTL)
                .build(),
        )
    }
}

fn oidc_settings(provider: &Provider) -> Result<&OidcSettings, SsoError> {
    match &provider.settings {
        ProviderSettings::Oidc(settings) => Ok(settings),
        ProviderSettings::Saml(_) => Err(SsoError::Refused(
            "this sign-in method is not an OpenID Connect provider".to_owned(),
        )),
    }
}

fn issuer_of(settings: &OidcSettings) -> Result<IssuerUrl, SsoError> {
    IssuerUrl::new(settings.issuer_url.trim().to_owned())
        .map_err(|_| SsoError::Config(format!("`{}` is not a URL", settings.issuer_url)))
}

/// The provider's metadata and keys: remembered ones when fresh enough, else discovered now.
/// The flag tells whether they were remembered.
pub async fn discover(
    sso: &Sso,
    settings: &OidcSettings,
) -> Result<(Arc<CoreProviderMetadata>, bool), SsoError> {
    let issuer = issuer_of(settings)?;
    if let Some(found) = sso.idp_documents.oidc.0.get(issuer.as_str()) {
        return Ok((found, true));
    }
    Ok((discover_fresh(sso, &issuer).await?, false))
}

/// Fetches the discovery document and the JWKS (through `outbound`: every address checked),
/// and remembers them.
async fn discover_fresh(
    sso: &Sso,
    issuer: &IssuerUrl,
) -> Result<Arc<CoreProviderMetadata>, SsoError> {
    let outbound: &Outbound = &sso.outbound;
    let metadata = CoreProviderMetadata::discover_async(issuer.clone(), outbound)
        .await
        .map_err(|e| {
            tracing::warn!(issuer = issuer.as_str(), error = ?e, "oidc discovery failed");
            match e {
                DiscoveryError::Request(FetchError::Refused { .. }) => {
                    SsoError::Config(REFUSED.to_owned())
                }
                DiscoveryError::Request(_) => SsoError::Upstream(
                    "its discovery document or keys could not be fetched".to_owned(),
                ),
                DiscoveryError::Validation(_) => {
                    SsoError::Upstream("its discovery document names another issuer".to_owned())
                }
                DiscoveryError::Parse(_) => {
                    SsoError::Upstream("its discovery document could not be read".to_owned())
                }
                // Not the body: what an address answers is not shown to whoever named it.
                DiscoveryError::Response(status, ..) => SsoError::Upstream(format!(
                    "its discovery document or keys could not be fetched (HTTP {})",
                    status.as_u16()
                )),
                // The enum is non-exhaustive: what it may grow is said the plain way.
                _ => SsoError::Upstream(
                    "its discovery document or keys could not be fetched".to_owned(),
                ),
            }
        })?;
    let metadata = Arc::new(metadata);
    sso.idp_documents
        .oidc
        .0
        .insert(issuer.as_str().to_owned(), metadata.clone());
    Ok(metadata)
}

/// A client of the provider, with the gateway's redirect URI.
fn client_of(
    metadata: &CoreProviderMetadata,
    settings: &OidcSettings,
    secret: Option<String>,
    redirect_uri: &str,
) -> Result<OidcClient, SsoError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| SsoError::Config("the gateway's public URL is not a URL".to_owned()))?;
    Ok(OidcClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(settings.client_id.clone()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(redirect))
}

/// The scopes to ask for: the settings' (default `openid profile email`). `openid` is always
/// asked for by the client itself, so it is left out here.
fn scopes_of(settings: &OidcSettings) -> Vec<Scope> {
    let named: Vec<&str> = settings
        .scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .collect();
    let chosen: Vec<&str> = if named.is_empty() {
        DEFAULT_SCOPES.to_vec()
    } else {
        named
    };
    let mut scopes: Vec<String> = Vec::new();
    for s in chosen {
        if s != "openid" && !scopes.iter().any(|t| t == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes.into_iter().map(Scope::new).collect()
}

fn crypto_error(e: crate::crypto::CryptoError) -> SsoError {
    match e {
        crate::crypto::CryptoError::NoKey | crate::crypto::CryptoError::BadKey => {
            SsoError::Config("the gateway has no key to protect sign-in secrets".to_owned())
        }
        crate::crypto::CryptoError::Undecryptable => SsoError::Config(
            "the stored client secret cannot be read with this gateway's key".to_owned(),
        ),
        crate::crypto::CryptoError::Random => SsoError::Internal(e.to_string()),
    }
}

/// Starts a sign-in with `provider`: the IdP's authorization URL to send the browser to.
/// `return_to` is kept with the pending sign-in and handed back by [`finish`].
pub async fn start(
    sso: &Sso,
    provider: &Provider,
    return_to: Option<String>,
    link_user_id: Option<uuid::Uuid>,
) -> Result<Url, SsoError> {
    let settings = oidc_settings(provider)?;
    if !provider.enabled {
        return Err(SsoError::Refused(
            "this sign-in method is turned off for the organization".to_owned(),
        ));
    }
    let (metadata, _) = discover(sso, settings).await?;
    let urls = ServiceUrls::of(&sso.config.public_url, provider);
    let client = client_of(&metadata, settings, None, &urls.redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scopes(scopes_of(settings))
        .set_pkce_challenge(challenge)
        .url();
    let verifier_ciphertext = sso
        .secrets
        .encrypt(verifier.secret())
        .map_err(crypto_error)?;
    sso.store()
        .create_sso_request(
            SsoRequest {
                id: state.secret().clone(),
                provider_id: provider.id,
                nonce: Some(nonce.secret().clone()),
                verifier_ciphertext: Some(verifier_ciphertext),
                return_to,
                link_user_id,
            },
            chrono::Duration::seconds(super::REQUEST_TTL_SECS),
        )
        .await?;
    Ok(url)
}

/// What [`finish`] found: the provider, who signed in, and the `return_to` given to [`start`].
pub struct Finished {
    pub provider: Provider,
    pub identity: Identity,
    pub return_to: Option<String>,
    /// The account the round trip was started to link (see `startSsoLink`).
    pub link_user_id: Option<uuid::Uuid>,
}

/// Ends a sign-in that the IdP sent back with `state` and `code`: checks everything the IdP
/// said and returns who signed in, with the pending sign-in's `return_to` (not yet signed in
/// at the gateway: see [`super::complete_login`]).
pub async fn finish(sso: &Sso, state: &str, code: &str) -> Result<Finished, SsoError> {
    let request = take_request(sso, state).await?;
    let provider = sso
        .store()
        .provider(request.provider_id)
        .await?
        .ok_or_else(|| SsoError::Refused("this sign-in method no longer exists".to_owned()))?;
    let settings = oidc_settings(&provider)?;
    if !provider.enabled {
        return Err(SsoError::Refused(
            "this sign-in method is turned off for the organization".to_owned(),
        ));
    }
    let secret = sso
        .store()
        .provider_secret(provider.id)
        .await?
        .map(|c| sso.secrets.decrypt(&c))
        .transpose()
        .map_err(crypto_error)?;
    let verifier = request
        .verifier_ciphertext
        .as_deref()
        .map(|c| sso.secrets.decrypt(c))
        .transpose()
        .map_err(crypto_error)?
        .ok_or_else(|| SsoError::Internal("pending oidc sign-in without a verifier".to_owned()))?;
    let nonce = request
        .nonce
        .clone()
        .ok_or_else(|| SsoError::Internal("pending oidc sign-in without a nonce".to_owned()))?;
    let redirect_uri = ServiceUrls::of(&sso.config.public_url, &provider).redirect_uri;
    let (metadata, remembered) = discover(sso, settings).await?;
    let client = client_of(&metadata, settings, secret.clone(), &redirect_uri)?;
    let http: &Outbound = &sso.outbound;

    let tokens = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|_| SsoError::Config("the identity provider has no token endpoint".to_owned()))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(http)
        .await
        .map_err(|e| token_error(&provider, e))?;

    let id_token = tokens
        .id_token()
        .ok_or_else(|| SsoError::Upstream("the identity provider sent no ID token".to_owned()))?;
    let nonce = Nonce::new(nonce);
    let verified = id_token.claims(&client.id_token_verifier(), &nonce);
    // Keys may have rotated since they were remembered: check once more with fresh ones.
    let (client, claims) = match verified {
        Err(ClaimsVerificationError::SignatureVerification(_)) if remembered => {
            let fresh = discover_fresh(sso, &issuer_of(settings)?).await?;
            let client = client_of(&fresh, settings, secret, &redirect_uri)?;
            let claims = id_token
                .claims(&client.id_token_verifier(), &nonce)
                .map_err(|e| claims_error(&provider, e))?
                .clone();
            (client, claims)
        }
        other => (
            client,
            other.map_err(|e| claims_error(&provider, e))?.clone(),
        ),
    };
    if let Some(expected) = claims.access_token_hash() {
        let verifier = client.id_token_verifier();
        let matches = id_token
            .signing_alg()
            .ok()
            .zip(id_token.signing_key(&verifier).ok())
            .and_then(|(alg, key)| {
                AccessTokenHash::from_token(tokens.access_token(), alg, key).ok()
            })
            .is_some_and(|actual| actual == *expected);
        if !matches {
            tracing::warn!(provider_id = %provider.id, "oidc: at_hash does not match the access token");
            return Err(SsoError::Upstream(
                "the ID token does not belong to the access token it came with".to_owned(),
            ));
        }
    }

    let subject = claims.subject().as_str().to_owned();
    let mut email = claims.email().map(|e| e.as_str().to_owned());
    let mut email_verified = claims.email_verified();
    let mut name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned());
    let mut groups = claims
        .additional_claims()
        .claims
        .get(&settings.groups_claim)
        .map(groups_of);

    if (email.is_none() || groups.is_none() || name.is_none()) && client.user_info_url().is_some() {
        let info = userinfo(&client, http, &tokens, &claims, &provider).await;
        match info {
            Ok(info) => {
                if email.is_none() {
                    email = info.email().map(|e| e.as_str().to_owned());
                    email_verified = info.email_verified();
                }
                if name.is_none() {
                    name = info
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned());
                }
                if groups.is_none() {
                    groups = info
                        .additional_claims()
                        .claims
                        .get(&settings.groups_claim)
                        .map(groups_of);
                }
            }
            // Without the groups the member's roles cannot be brought in line: refuse rather
            // than revoke what the IdP may still grant.
            Err(e) => return Err(e),
        }
    }
    let email = email.filter(|e| !e.trim().is_empty()).ok_or_else(|| {
        SsoError::Refused(
            "the identity provider sent no email address; ask it to release the `email` claim"
                .to_owned(),
        )
    })?;
    // INVARIANT: accounts are matched by email, so an address the IdP says it has not verified
    // could take over someone else's account; it is refused.
    if email_verified == Some(false) {
        return Err(SsoError::Refused(
            "the identity provider has not verified your email address".to_owned(),
        ));
    }
    Ok(Finished {
        provider,
        identity: Identity {
            subject,
            email,
            name,
            groups: groups.unwrap_or_default(),
        },
        return_to: request.return_to,
        link_user_id: request.link_user_id,
    })
}

async fn take_request(sso: &Sso, state: &str) -> Result<SsoRequest, SsoError> {
    let unknown = || {
        SsoError::Refused(
            "this sign-in state is unknown, expired or already used; start signing in again"
                .to_owned(),
        )
    };
    if state.is_empty() || state.len() > 512 {
        return Err(unknown());
    }
    sso.store()
        .take_sso_request(state, None)
        .await?
        .ok_or_else(unknown)
}

/// The claims at the userinfo endpoint, checked to be about the same subject.
async fn userinfo(
    client: &OidcClient,
    http: &Outbound,
    tokens: &Tokens,
    claims: &openidconnect::IdTokenClaims<OtherClaims, CoreGenderClaim>,
    provider: &Provider,
) -> Result<UserInfoClaims<OtherClaims, CoreGenderClaim>, SsoError> {
    let request = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .map_err(|_| SsoError::Config("the identity provider has no userinfo endpoint".into()))?;
    request.request_async(http).await.map_err(|e| {
        tracing::warn!(provider_id = %provider.id, error = ?e, "oidc userinfo failed");
        match e {
            openidconnect::UserInfoError::Request(FetchError::Refused { .. }) => {
                SsoError::Config(format!("its userinfo endpoint: {REFUSED}"))
            }
            _ => SsoError::Upstream("its userinfo endpoint did not answer as expected".to_owned()),
        }
    })
}

/// The groups in a claim: a list of strings (others are skipped) or one string.
fn groups_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn token_error(
    provider: &Provider,
    e: RequestTokenError<FetchError, StandardErrorResponse<CoreErrorResponseType>>,
) -> SsoError {
    tracing::warn!(provider_id = %provider.id, error = ?e, "oidc code exchange failed");
    match e {
        RequestTokenError::ServerResponse(response) => match response.error() {
            CoreErrorResponseType::InvalidClient | CoreErrorResponseType::UnauthorizedClient => {
                SsoError::Config(
                    "the identity provider did not accept the gateway's client id or secret"
                        .to_owned(),
                )
            }
            CoreErrorResponseType::InvalidGrant => SsoError::Refused(
                "the identity provider refused the sign-in code (expired or already used); start signing in again"
                    .to_owned(),
            ),
            _ => SsoError::Upstream("its token endpoint refused the sign-in".to_owned()),
        },
        RequestTokenError::Request(FetchError::Refused { .. }) => {
            SsoError::Config(format!("its token endpoint: {REFUSED}"))
        }
        RequestTokenError::Request(_) => {
            SsoError::Upstream("its token endpoint could not be reached".to_owned())
        }
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            SsoError::Upstream("its token endpoint answered something unreadable".to_owned())
        }
    }
}

fn claims_error(provider: &Provider, e: ClaimsVerificationError) -> SsoError {
    tracing::warn!(provider_id = %provider.id, error = ?e, "oidc ID token refused");
    match e {
        ClaimsVerificationError::InvalidNonce(_) => SsoError::Refused(
            "the identity provider's answer does not belong to this sign-in (nonce mismatch); start signing in again"
                .to_owned(),
        ),
        ClaimsVerificationError::Expired(_) => SsoError::Refused(
            "the identity provider's ID token has expired (are the clocks right?); start signing in again"
                .to_owned(),
        ),
        ClaimsVerificationError::SignatureVerification(_) => {
            SsoError::Upstream("its ID token signature is not valid".to_owned())
        }
        ClaimsVerificationError::InvalidIssuer(_) => {
            SsoError::Upstream("its ID token names another issuer".to_owned())
        }
        ClaimsVerificationError::InvalidAudience(_) => {
            SsoError::Upstream("its ID token is meant for another client".to_owned())
        }
        _ => SsoError::Upstream("its ID token could not be verified".to_owned()),
    }
}

/// Checks an issuer as an admin configures it: discovery, the endpoints a sign-in needs and
/// the signing keys. `Ok` is a short summary; `Err` says in plain words what is wrong.
pub async fn test_connection(sso: &Sso, settings: &OidcSettings) -> Result<String, String> {
    let issuer = IssuerUrl::new(settings.issuer_url.trim().to_owned())
        .map_err(|_| format!("`{}` is not a URL", settings.issuer_url))?;
    let discovery_url = issuer
        .join(".well-known/openid-configuration")
        .map_err(|_| format!("`{}` is not a URL", settings.issuer_url))?;
    let http: &Outbound = &sso.outbound;

    let document = fetch_json(http, discovery_url.as_str(), "the discovery document").await?;
    let named = document.get("issuer").and_then(Value::as_str);
    match named {
        None => return Err(format!("`{discovery_url}` names no issuer")),
        Some(n) if n != issuer.as_str() => {
            return Err(format!(
                "the discovery document names the issuer `{n}`, not `{}`: use exactly the issuer it names",
                issuer.as_str()
            ));
        }
        Some(_) => {}
    }
    let endpoint = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_owned);
    if endpoint("authorization_endpoint").is_none() {
        return Err("the discovery document has no `authorization_endpoint`".to_owned());
    }
    if endpoint("token_endpoint").is_none() {
        return Err("the discovery document has no `token_endpoint`".to_owned());
    }
    let jwks_uri =
        endpoint("jwks_uri").ok_or("the discovery document has no `jwks_uri` (signing keys)")?;
    let jwks = fetch_json(http, &jwks_uri, "the signing keys (JWKS)").await?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    if keys == 0 {
        return Err(format!("the signing keys at `{jwks_uri}` list no key"));
    }
    // Finally, what a sign-in itself will do (and remember for the next one).
    discover_fresh(sso, &issuer).await.map_err(|e| match e {
        SsoError::Upstream(why) => format!("the discovery document could not be used: {why}"),
        other => other.to_string(),
    })?;

    let mut summary = format!(
        "OK: issuer `{}`, {keys} signing key{}",
        issuer.as_str(),
        if keys == 1 { "" } else { "s" }
    );
    summary.push_str(if endpoint("userinfo_endpoint").is_some() {
        ", a userinfo endpoint"
    } else {
        ", no userinfo endpoint"
    });
    let claims: Vec<&str> = document
        .get("claims_supported")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !claims.is_empty() && !claims.contains(&settings.groups_claim.as_str()) {
        summary.push_str(&format!(
            "; note: the groups claim `{}` is not among the claims it lists",
            settings.groups_claim
        ));
    }
    Ok(summary)
}

/// GETs a JSON document (no redirect followed, as a sign-in follows none), or says in plain
/// words why not: never with what a refused answer contained.
async fn fetch_json(http: &Outbound, url: &str, what: &str) -> Result<Value, String> {
    let answer = http
        .get(url, "application/json", Redirects::Refuse)
        .await
        .map_err(|e| format!("{e} ({what})"))?;
    let status = answer.status;
    if status.is_redirection() {
        return Err(format!(
            "`{url}` answered with a redirect (HTTP {}); give the final address",
            status.as_u16()
        ));
    }
    if !status.is_success() {
        return Err(format!(
            "`{url}` answered HTTP {} ({what}): is the issuer URL right?",
            status.as_u16()
        ));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|_| format!("`{url}` did not answer JSON ({what})"))
}
