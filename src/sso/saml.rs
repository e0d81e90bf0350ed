//! SAML 2.0 sign-in with samael: the SP metadata an IdP is configured with, SP-initiated
//! sign-in (an unsigned AuthnRequest over the HTTP-Redirect binding, its id remembered as a
//! pending sign-in), and the checks on what comes back to the assertion consumer service
//! (HTTP-POST; SP- or IdP-initiated).
//!
//! A response is accepted only when all of these hold:
//! - the Response or its Assertion carries an XML signature that verifies against one of the
//!   IdP's signing certificates, with RSA or ECDSA over SHA-256 or stronger; whatever a verified
//!   signature does not cover is dropped before anything is read (samael's reduction);
//! - its issuer is the IdP's entity id; the audience is our SP entity id; the Destination (of a
//!   signed Response) and the bearer confirmation's Recipient are our ACS URL;
//! - it is inside NotBefore / NotOnOrAfter and was issued recently, give or take
//!   [`CLOCK_SKEW_SECS`];
//! - its InResponseTo, when it has one, names a pending sign-in of this provider, which it uses
//!   up; without one it is IdP-initiated, which is allowed;
//! - its assertion id was not accepted before (replay).
//!
//! The IdP is known by its metadata (XML given, or fetched from a URL through
//! [`crate::outbound`] and kept for
//! [`METADATA_TTL`]), or by its entity id, SSO URL and certificate given one by one; those given
//! one by one override what the metadata says (`idp.rs`).

mod idp;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::{HTTP_POST_BINDING, NameIdFormat};
use samael::schema::{Assertion, AuthnRequest, Issuer, NameIdPolicy, Response};
use samael::service_provider::{Error as SamlError, ServiceProvider};
use url::Url;

pub use idp::MetadataCache;
pub use idp::{METADATA_TTL, test_connection};
use idp::{NO_CERTIFICATE, NO_REDIRECT_SSO, describe};

use super::Sso;
use super::{
    Identity, Provider, ProviderSettings, REQUEST_TTL_SECS, SamlSettings, ServiceUrls, SsoError,
    safe_return_to,
};
use crate::store::SsoRequest;

/// How far the IdP's clock may be from ours (NotBefore, NotOnOrAfter).
pub const CLOCK_SKEW_SECS: i64 = 60;
/// How long after its IssueInstant a response is still taken.
const MAX_ISSUE_DELAY_SECS: i64 = 180;

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// Signatures over SHA-1 are refused (collisions are practical).
const ALLOWED_ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// What a SAML response vouched for, and where the person meant to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub identity: Identity,
    /// The `return_to` of the sign-in this answers, or the RelayState of an IdP-initiated one
    /// when it is a path on this site.
    pub return_to: Option<String>,
    /// The account the round trip was started to link (see `startSsoLink`).
    pub link_user_id: Option<uuid::Uuid>,
}

fn refused(message: impl Into<String>) -> SsoError {
    SsoError::Refused(message.into())
}

fn saml_settings(provider: &Provider) -> Result<&SamlSettings, SsoError> {
    match &provider.settings {
        ProviderSettings::Saml(settings) => Ok(settings),
        ProviderSettings::Oidc(_) => Err(SsoError::Config(
            "this identity provider does not use SAML".to_owned(),
        )),
    }
}

/// The SP metadata to give the IdP: our entity id, and the assertion consumer service (HTTP-POST)
/// that takes email NameIDs. AuthnRequests are not signed; assertions should be.
pub fn sp_metadata(sso: &Sso, provider: &Provider) -> String {
    let urls = ServiceUrls::of(&sso.config.public_url, provider);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="{PROTOCOL}">
    <md:NameIDFormat>{email_format}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{HTTP_POST_BINDING}" Location="{acs_url}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity_id = xml_escape(&urls.sp_entity_id),
        email_format = NameIdFormat::EmailAddressNameIDFormat.value(),
        acs_url = xml_escape(&urls.acs_url),
    )
}

/// Starts an SP-initiated sign-in: the IdP URL to send the browser to, carrying an AuthnRequest
/// (HTTP-Redirect binding: deflated, base64, with the request id as RelayState). The request id
/// is remembered for [`REQUEST_TTL_SECS`] with `return_to` (a path on this site).
pub async fn start(
    sso: &Sso,
    provider: &Provider,
    return_to: Option<String>,
    link_user_id: Option<uuid::Uuid>,
) -> Result<Url, SsoError> {
    let settings = saml_settings(provider)?;
    if let Some(path) = &return_to
        && safe_return_to(path).is_none()
    {
        return Err(refused(RETURN_TO_SHAPE));
    }
    let idp = describe(&sso.outbound, &sso.idp_documents.saml, settings, false).await?;
    let sso_url = idp
        .redirect_sso_url
        .ok_or_else(|| SsoError::Config(NO_REDIRECT_SSO.to_owned()))?;
    if idp.certificates.is_empty() {
        return Err(SsoError::Config(NO_CERTIFICATE.to_owned()));
    }
    let urls = ServiceUrls::of(&sso.config.public_url, provider);
    let id = request_id()?;
    let request = AuthnRequest {
        id: id.clone(),
        version: "2.0".to_owned(),
        issue_instant: sso.store().clock().now(),
        destination: Some(sso_url),
        issuer: Some(Issuer {
            value: Some(urls.sp_entity_id),
            ..Issuer::default()
        }),
        // No Format: the IdP sends the NameID it is configured to (the email comes from an
        // attribute when the NameID is not one).
        name_id_policy: Some(NameIdPolicy {
            allow_create: Some(true),
            ..NameIdPolicy::default()
        }),
        assertion_consumer_service_url: Some(urls.acs_url),
        protocol_binding: Some(HTTP_POST_BINDING.to_owned()),
        ..AuthnRequest::default()
    };
    let url = request
        .redirect(&id)
        .map_err(|e| SsoError::Config(format!("the single sign-on URL cannot be used: {e}")))?
        .ok_or_else(|| SsoError::Config(NO_REDIRECT_SSO.to_owned()))?;
    sso.store()
        .create_sso_request(
            SsoRequest {
                id,
                provider_id: provider.id,
                nonce: None,
                verifier_ciphertext: None,
                return_to,
                link_user_id,
            },
            Duration::seconds(REQUEST_TTL_SECS),
        )
        .await?;
    Ok(url)
}

/// Verifies a SAML response posted to the assertion consumer service (the `SAMLResponse` form
/// field, base64) and says who it vouches for. See the module docs for what is checked.
pub async fn finish(
    sso: &Sso,
    provider: &Provider,
    saml_response_b64: &str,
    relay_state: Option<&str>,
) -> Result<Finished, SsoError> {
    let settings = saml_settings(provider)?;
    let idp = describe(&sso.outbound, &sso.idp_documents.saml, settings, false).await?;
    // INVARIANT: the IdP has a signing certificate when samael verifies: without one, samael
    // would not check signatures at all.
    if idp.certificates.is_empty() {
        return Err(SsoError::Config(NO_CERTIFICATE.to_owned()));
    }
    let xml = decode_response(saml_response_b64)?;
    let outer = precheck(&xml)?;
    let urls = ServiceUrls::of(&sso.config.public_url, provider);
    let sp = ServiceProvider {
        entity_id: Some(urls.sp_entity_id.clone()),
        metadata_url: Some(urls.metadata_url.clone()),
        acs_url: Some(urls.acs_url.clone()),
        slo_url: None,
        idp_metadata: idp.descriptor(),
        // InResponseTo is checked below, against the pending sign-ins in the store.
        allow_idp_initiated: true,
        max_clock_skew: Duration::seconds(CLOCK_SKEW_SECS),
        max_issue_delay: Duration::seconds(MAX_ISSUE_DELAY_SECS),
        allowed_signature_algorithms: Some(ALLOWED_ALGORITHMS.to_vec()),
        ..ServiceProvider::default()
    };
    // xmlsec is CPU work (and C code): off the async threads, and a panic stays in its task.
    let verified = tokio::task::spawn_blocking(move || {
        sp.parse_xml_response(&xml, None)
            .map_err(|e| (refusal(&e), format!("{e:?}")))
    })
    .await
    .map_err(|e| SsoError::Internal(format!("SAML verification task: {e}")))?;
    let assertion = verified.map_err(|(message, detail)| {
        tracing::warn!(provider_id = %provider.id, %detail, "SAML response refused");
        refused(message)
    })?;
    check_audience(&assertion, &urls.sp_entity_id)?;
    let identity = identity_of(&assertion, settings)?;
    let in_response_to = bearer_in_response_to(&assertion).or(outer.in_response_to);
    // An unsolicited response answers no request of this browser: anyone holding one could
    // sign a victim in to it (login CSRF). Only a provider that asks for them accepts them.
    if in_response_to.is_none() && !provider.allow_idp_initiated {
        return Err(refused(
            "this identity provider may not start sign-ins here: start signing in at the gateway",
        ));
    }

    if !sso
        .store()
        .remember_assertion(provider.id, &assertion.id, replay_horizon(&assertion))
        .await?
    {
        return Err(refused("this assertion was already used"));
    }
    let (return_to, link_user_id) = match in_response_to {
        Some(id) => {
            let request = sso
                .store()
                .take_sso_request(&id, Some(provider.id))
                .await?
                .ok_or_else(|| {
                    refused(
                        "this sign-in was not started here, took too long or was already completed; please start again",
                    )
                })?;
            (request.return_to, request.link_user_id)
        }
        // IdP-initiated: RelayState, when it is a path on this site, is where to go.
        None => (relay_state.and_then(safe_return_to), None),
    };
    Ok(Finished {
        identity,
        return_to,
        link_user_id,
    })
}

pub const RETURN_TO_SHAPE: &str = "`return_to` must be a path on this site, such as `/projects`";

/// A random request id: an XML ID (`_` then 40 hex digits, 160 bits).
fn request_id() -> Result<String, SsoError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| SsoError::Internal(format!("random: {e}")))?;
    let mut id = String::with_capacity(41);
    id.push('_');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    Ok(id)
}

fn decode_response(b64: &str) -> Result<String, SsoError> {
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(compact)
        .map_err(|_| refused("the sign-in response is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| refused("the sign-in response is not a SAML response"))
}

/// What is read from the response before its signature is checked; it may only make the
/// checks stricter.
struct Outer {
    in_response_to: Option<String>,
}

/// Clear refusals for responses that cannot succeed anyway: not a Response, a failure status,
/// encrypted assertions, SHA-1 signatures.
fn precheck(xml: &str) -> Result<Outer, SsoError> {
    let response: Response = xml
        .parse()
        .map_err(|_| refused("the sign-in response is not a SAML response"))?;
    if let Some(code) = response
        .status
        .as_ref()
        .and_then(|s| s.status_code.value.as_deref())
        .filter(|code| *code != SUCCESS)
    {
        let message = response
            .status
            .as_ref()
            .and_then(|s| s.status_message.as_ref())
            .and_then(|m| m.value.as_deref())
            .unwrap_or_default();
        tracing::info!(
            status = code,
            message,
            "SAML response with a failure status"
        );
        let short = code.rsplit(':').next().unwrap_or(code);
        return Err(refused(format!(
            "the identity provider did not sign you in (status `{short}`)"
        )));
    }
    if response.encrypted_assertion.is_some() {
        return Err(refused(
            "the identity provider encrypted the assertion, which is not supported; turn assertion encryption off for this application",
        ));
    }
    if xml.contains("http://www.w3.org/2000/09/xmldsig#rsa-sha1")
        || xml.contains("http://www.w3.org/2000/09/xmldsig#sha1")
    {
        return Err(refused(
            "the response is signed with SHA-1, which is not accepted; have the identity provider sign with SHA-256",
        ));
    }
    Ok(Outer {
        in_response_to: response.in_response_to,
    })
}

/// The plain words for samael's refusal.
fn refusal(e: &SamlError) -> String {
    match e {
        SamlError::FailedToValidateSignature => "the response's signature does not verify",
        SamlError::AssertionExpired { .. }
        | SamlError::ResponseExpired { .. }
        | SamlError::AssertionConditionExpired { .. }
        | SamlError::AssertionSubjectConfirmationExpired { .. } => "the assertion has expired",
        SamlError::AssertionConditionExpiredBefore { .. }
        | SamlError::AssertionSubjectConfirmationExpiredBefore { .. } => {
            "the assertion is not valid yet (are the clocks right?)"
        }
        SamlError::AssertionConditionAudienceRestrictionFailed { .. } => {
            "the assertion is for another audience"
        }
        SamlError::DestinationValidationError { .. }
        | SamlError::AssertionRecipientMismatch { .. } => {
            "the response is addressed to another service"
        }
        SamlError::AssertionIssuerMismatch { .. } | SamlError::ResponseIssuerMismatch { .. } => {
            "the response comes from another identity provider"
        }
        SamlError::ResponseBadStatusCode { .. } => "the identity provider did not sign you in",
        SamlError::AssertionBearerSubjectConfirmationMissing
        | SamlError::AssertionSubjectConfirmationMissing => {
            "the assertion has no bearer subject confirmation"
        }
        SamlError::EncryptedAssertionsNotYetSupported | SamlError::MissingPrivateKeySP => {
            "the identity provider encrypted the assertion, which is not supported"
        }
        SamlError::FailedToParseSamlResponse(_)
        | SamlError::FailedToParseSamlAssertion(_)
        | SamlError::DeserializeResponseError
        | SamlError::CryptoXmlError(_) => "the sign-in response is not valid SAML",
        _ => "the sign-in response could not be verified",
    }
    .to_owned()
}

/// Every AudienceRestriction must name us, and there must be one (SAML profiles 4.1.4.2);
/// samael accepts any one restriction naming us, or none at all.
fn check_audience(assertion: &Assertion, sp_entity_id: &str) -> Result<(), SsoError> {
    let restrictions = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.audience_restrictions.as_deref())
        .unwrap_or_default();
    let ours = !restrictions.is_empty()
        && restrictions
            .iter()
            .all(|r| r.audience.iter().any(|a| a.trim() == sp_entity_id));
    if ours {
        Ok(())
    } else {
        Err(refused("the assertion is for another audience"))
    }
}

fn bearer_in_response_to(assertion: &Assertion) -> Option<String> {
    assertion
        .subject
        .as_ref()?
        .subject_confirmations
        .as_ref()?
        .iter()
        .filter(|c| c.method.as_deref() == Some(BEARER))
        .find_map(|c| c.subject_confirmation_data.as_ref()?.in_response_to.clone())
}

/// Until when the assertion could still be accepted, so until when its id must be remembered.
fn replay_horizon(assertion: &Assertion) -> DateTime<Utc> {
    let conditions = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after);
    let confirmations = assertion
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref()?.not_on_or_after);
    let issued = assertion.issue_instant + Duration::seconds(MAX_ISSUE_DELAY_SECS);
    confirmations.chain(conditions).fold(issued, DateTime::max) + Duration::seconds(CLOCK_SKEW_SECS)
}

/// Who the (verified) assertion names: the NameID as subject; the email from its attribute, or
/// the NameID when that is an email; the name and the groups from theirs. Attributes are
/// matched by Name or FriendlyName, ignoring case.
fn identity_of(assertion: &Assertion, settings: &SamlSettings) -> Result<Identity, SsoError> {
    let name_id = assertion.subject.as_ref().and_then(|s| s.name_id.as_ref());
    let subject = name_id
        .map(|n| n.value.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| refused("the assertion names no subject (NameID)"))?
        .to_owned();
    let values = |wanted: &str| -> Vec<String> {
        let wanted = wanted.trim();
        if wanted.is_empty() {
            return Vec::new();
        }
        assertion
            .attribute_statements
            .iter()
            .flatten()
            .flat_map(|s| &s.attributes)
            .filter(|a| {
                [&a.name, &a.friendly_name]
                    .into_iter()
                    .flatten()
                    .any(|n| n.trim().eq_ignore_ascii_case(wanted))
            })
            .flat_map(|a| &a.values)
            .filter_map(|v| v.value.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let name_id_is_email = name_id.is_some_and(|n| match n.format.as_deref() {
        Some(f) if f == NameIdFormat::EmailAddressNameIDFormat.value() => true,
        None => subject.contains('@'),
        Some(f) => f == NameIdFormat::UnspecifiedNameIDFormat.value() && subject.contains('@'),
    });
    let email = values(&settings.email_attribute)
        .into_iter()
        .next()
        .or_else(|| name_id_is_email.then(|| subject.clone()))
        .ok_or_else(|| {
            refused(format!(
                "the identity provider sent no email address (no `{}` attribute, and the NameID is not an email)",
                settings.email_attribute
            ))
        })?;
    let name = values(&settings.name_attribute).into_iter().next();
    let mut groups = values(&settings.groups_attribute);
    groups.sort();
    groups.dedup();
    Ok(Identity {
        subject,
        email,
        name,
        groups,
    })
}

/// Escapes text for an XML attribute value or element.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_must_stay_on_this_site() {
        assert_eq!(
            safe_return_to("/projects?x=1"),
            Some("/projects?x=1".into())
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "projects",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_ids_are_xml_ids_and_unique() {
        let a = request_id().unwrap();
        let b = request_id().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with('_') && a.len() == 41);
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml_escape(r#"a&b"<c>'"#), "a&amp;b&quot;&lt;c&gt;&apos;");
    }
}
