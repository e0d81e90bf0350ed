//! The identity provider as the gateway knows it, from a SAML provider's settings: its metadata
//! (XML given, or fetched from a URL through [`Outbound`] and kept for [`METADATA_TTL`]), or its entity
//! id, single sign-on URL and signing certificate given one by one (which override what the
//! metadata says); and the plain-words check of all that for administrators
//! ([`test_connection`]).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::nid::Nid;
use openssl::x509::X509;
use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{
    EntityDescriptor, EntityDescriptorType, HTTP_REDIRECT_BINDING, IdpSsoDescriptor, KeyDescriptor,
};
use url::Url;

use super::PROTOCOL;
use crate::outbound::{Outbound, Redirects};
use crate::sso::{SamlSettings, SsoError};

/// How long fetched IdP metadata is kept before it is fetched again.
pub const METADATA_TTL: StdDuration = StdDuration::from_secs(300);

const NOTHING_GIVEN: &str = "give the identity provider's metadata (by URL or as XML), or its entity id, single sign-on URL and signing certificate";
pub(super) const NO_REDIRECT_SSO: &str = "the identity provider has no single sign-on service with the HTTP-Redirect binding; give its single sign-on URL";
pub(super) const NO_CERTIFICATE: &str =
    "the identity provider has no signing certificate; give the certificate it signs with";

/// The identity provider as the gateway knows it.
#[derive(Debug, Clone)]
pub(super) struct Idp {
    pub(super) entity_id: String,
    /// Where SP-initiated sign-ins are sent (HTTP-Redirect binding).
    pub(super) redirect_sso_url: Option<String>,
    /// DER X.509 certificates the IdP signs with.
    pub(super) certificates: Vec<Vec<u8>>,
}

impl Idp {
    /// The IdP as samael's service provider wants it.
    pub(super) fn descriptor(&self) -> EntityDescriptor {
        let key_descriptors = self
            .certificates
            .iter()
            .map(|der| KeyDescriptor {
                key_use: Some("signing".to_owned()),
                key_info: KeyInfo {
                    id: None,
                    x509_data: Some(X509Data {
                        certificates: vec![STANDARD.encode(der)],
                    }),
                },
                encryption_methods: None,
            })
            .collect();
        EntityDescriptor {
            entity_id: Some(self.entity_id.clone()),
            idp_sso_descriptors: Some(vec![IdpSsoDescriptor {
                id: None,
                valid_until: None,
                cache_duration: None,
                protocol_support_enumeration: Some(PROTOCOL.to_owned()),
                error_url: None,
                signature: None,
                key_descriptors,
                organization: None,
                contact_people: Vec::new(),
                artifact_resolution_service: Vec::new(),
                single_logout_services: Vec::new(),
                manage_name_id_services: Vec::new(),
                name_id_formats: Vec::new(),
                want_authn_requests_signed: None,
                single_sign_on_services: Vec::new(),
                name_id_mapping_services: Vec::new(),
                assertion_id_request_services: Vec::new(),
                attribute_profiles: Vec::new(),
                attributes: Vec::new(),
            }]),
            ..EntityDescriptor::default()
        }
    }
}

/// Why the IdP cannot be described, in words for an administrator.
pub(super) enum Problem {
    /// Its metadata URL could not be read.
    Upstream(String),
    /// What is configured (or what the metadata says) is unusable.
    Config(String),
}

impl Problem {
    fn into_message(self) -> String {
        match self {
            Self::Upstream(m) | Self::Config(m) => m,
        }
    }
}

impl From<Problem> for SsoError {
    fn from(p: Problem) -> Self {
        match p {
            Problem::Upstream(m) => Self::Upstream(m),
            Problem::Config(m) => Self::Config(m),
        }
    }
}

/// Fetches (fresh) and reads the IdP's description; says in plain words what is wrong with it,
/// or what was found.
pub async fn test_connection(
    outbound: &Outbound,
    cache: &MetadataCache,
    settings: &SamlSettings,
) -> Result<String, String> {
    let idp = describe(outbound, cache, settings, true)
        .await
        .map_err(Problem::into_message)?;
    let sso_url = idp.redirect_sso_url.ok_or(NO_REDIRECT_SSO)?;
    if idp.certificates.is_empty() {
        return Err(NO_CERTIFICATE.to_owned());
    }
    let certificates: Vec<String> = idp
        .certificates
        .iter()
        .map(|der| certificate_summary(der))
        .collect();
    Ok(format!(
        "identity provider `{}`: single sign-on at `{sso_url}` (HTTP-Redirect); signs with {}",
        idp.entity_id,
        certificates.join(", ")
    ))
}

/// The IdP from the settings: the metadata (given, or fetched: from the cache unless `fresh`),
/// then what was given one by one on top.
pub(super) async fn describe(
    outbound: &Outbound,
    cache: &MetadataCache,
    settings: &SamlSettings,
    fresh: bool,
) -> Result<Idp, Problem> {
    let given_entity = non_empty(settings.idp_entity_id.as_deref());
    let mut idp = if let Some(xml) = non_empty(settings.idp_metadata_xml.as_deref()) {
        from_metadata(xml, given_entity)
            .map_err(|e| Problem::Config(format!("the metadata XML: {e}")))?
    } else if let Some(url) = non_empty(settings.idp_metadata_url.as_deref()) {
        let xml = fetch_metadata(outbound, cache, url, fresh)
            .await
            .map_err(Problem::Upstream)?;
        from_metadata(&xml, given_entity)
            .map_err(|e| Problem::Config(format!("the document at `{url}`: {e}")))?
    } else {
        let entity_id = given_entity.ok_or_else(|| Problem::Config(NOTHING_GIVEN.to_owned()))?;
        Idp {
            entity_id: entity_id.to_owned(),
            redirect_sso_url: None,
            certificates: Vec::new(),
        }
    };
    if let Some(url) = non_empty(settings.idp_sso_url.as_deref()) {
        match Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                idp.redirect_sso_url = Some(url.to_owned());
            }
            _ => {
                return Err(Problem::Config(format!(
                    "the single sign-on URL `{url}` is not an http(s) URL"
                )));
            }
        }
    }
    if let Some(text) = non_empty(settings.idp_certificate.as_deref()) {
        idp.certificates = parse_certificates(text).map_err(Problem::Config)?;
    }
    Ok(idp)
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The IdP described by metadata: an EntityDescriptor, or an EntitiesDescriptor holding it
/// (picked by `entity_id` when there are several).
fn from_metadata(xml: &str, entity_id: Option<&str>) -> Result<Idp, String> {
    let document: EntityDescriptorType = xml.parse().map_err(|_| {
        "it is not SAML metadata (an EntityDescriptor or EntitiesDescriptor)".to_owned()
    })?;
    let idps: Vec<&EntityDescriptor> = document
        .iter()
        .filter(|e| {
            e.idp_sso_descriptors
                .as_ref()
                .is_some_and(|d| !d.is_empty())
        })
        .collect();
    let entity = match (entity_id, idps.as_slice()) {
        (Some(wanted), _) => idps
            .iter()
            .find(|e| e.entity_id.as_deref() == Some(wanted))
            .copied()
            .ok_or_else(|| {
                format!("it describes no identity provider with entity id `{wanted}`")
            })?,
        (None, []) => {
            return Err("it describes no identity provider (no IDPSSODescriptor)".to_owned());
        }
        (None, [one]) => *one,
        (None, _) => {
            return Err(
                "it describes several identity providers; give the entity id of the one to use"
                    .to_owned(),
            );
        }
    };
    let entity_id = non_empty(entity.entity_id.as_deref())
        .ok_or("its identity provider has no entity id")?
        .to_owned();
    let descriptors = entity.idp_sso_descriptors.as_deref().unwrap_or_default();
    let redirect_sso_url = descriptors
        .iter()
        .flat_map(|d| &d.single_sign_on_services)
        .find(|s| s.binding == HTTP_REDIRECT_BINDING)
        .map(|s| s.location.trim().to_owned());
    // Keys marked for signing; else those marked for no use in particular (as samael does).
    let keys: Vec<&KeyDescriptor> = descriptors
        .iter()
        .flat_map(|d| &d.key_descriptors)
        .collect();
    let signing: Vec<&KeyDescriptor> = keys
        .iter()
        .copied()
        .filter(|k| k.key_use.as_deref() == Some("signing"))
        .collect();
    let chosen = if signing.is_empty() {
        keys.into_iter()
            .filter(|k| k.key_use.as_deref().is_none_or(str::is_empty))
            .collect()
    } else {
        signing
    };
    let mut certificates = Vec::new();
    for key in chosen {
        for cert in key.key_info.x509_data.iter().flat_map(|d| &d.certificates) {
            certificates.push(decode_certificate(cert)?);
        }
    }
    Ok(Idp {
        entity_id,
        redirect_sso_url,
        certificates,
    })
}

/// Certificates given as PEM (one or more `BEGIN CERTIFICATE` blocks) or as bare base64 DER.
fn parse_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    if !text.contains("-----") {
        return Ok(vec![decode_certificate(text)?]);
    }
    let blocks: Vec<&str> = text
        .split(BEGIN)
        .skip(1)
        .map(|rest| rest.split(END).next().unwrap_or_default())
        .collect();
    if blocks.is_empty() {
        return Err(
            "the certificate must be an X.509 certificate: PEM (`BEGIN CERTIFICATE`) or base64"
                .to_owned(),
        );
    }
    blocks.into_iter().map(decode_certificate).collect()
}

/// A base64 X.509 certificate (whitespace allowed) as DER, checked to be one.
fn decode_certificate(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(compact)
        .map_err(|_| "a signing certificate is not valid base64".to_owned())?;
    X509::from_der(&der).map_err(|_| "a signing certificate is not an X.509 certificate")?;
    Ok(der)
}

/// "`CN=…` (valid until …)" for test_connection.
fn certificate_summary(der: &[u8]) -> String {
    let Ok(cert) = X509::from_der(der) else {
        return "an unreadable certificate".to_owned();
    };
    let name = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .map(|cn| format!("the certificate of `{cn}`"))
        .unwrap_or_else(|| "a certificate".to_owned());
    let expired = openssl::asn1::Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| cert.not_after().compare(&now).ok())
        .is_some_and(|o| o.is_lt());
    if expired {
        format!(
            "{name} (expired on {}; signatures still verify with it, but the IdP should renew it)",
            cert.not_after()
        )
    } else {
        format!("{name} (valid until {})", cert.not_after())
    }
}

/// Fetched metadata by URL, for [`METADATA_TTL`]: one per instance (in its services), shared
/// by its providers, since the same URL gives the same document.
pub struct MetadataCache(moka::sync::Cache<String, Arc<str>>);

impl Default for MetadataCache {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(1000)
                .time_to_live(METADATA_TTL)
                .build(),
        )
    }
}

/// The metadata at `url`: from the cache, unless `fresh` or not there. Redirects are followed
/// (a few, each checked like the first address).
async fn fetch_metadata(
    outbound: &Outbound,
    cache: &MetadataCache,
    url: &str,
    fresh: bool,
) -> Result<Arc<str>, String> {
    if !fresh && let Some(xml) = cache.0.get(url) {
        return Ok(xml);
    }
    let answer = outbound
        .get(
            url,
            "application/samlmetadata+xml, application/xml, text/xml, */*",
            Redirects::Follow,
        )
        .await
        .map_err(|e| format!("the metadata URL: {e}"))?;
    if !answer.status.is_success() {
        return Err(format!(
            "the metadata URL `{url}` answered HTTP {}",
            answer.status
        ));
    }
    let xml: Arc<str> = String::from_utf8(answer.body)
        .map_err(|_| format!("the document at `{url}` is not text: not SAML metadata"))?
        .into();
    cache.0.insert(url.to_owned(), xml.clone());
    Ok(xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_without_metadata_need_an_entity_id() {
        let settings = SamlSettings {
            idp_metadata_url: None,
            idp_metadata_xml: None,
            idp_entity_id: None,
            idp_sso_url: Some("https://idp.example/sso".into()),
            idp_certificate: None,
            email_attribute: "email".into(),
            name_attribute: "name".into(),
            groups_attribute: "groups".into(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let outbound = Outbound::new(crate::outbound::AddressPolicy::public_only()).unwrap();
        let err = rt
            .block_on(test_connection(
                &outbound,
                &MetadataCache::default(),
                &settings,
            ))
            .unwrap_err();
        assert_eq!(err, NOTHING_GIVEN);
    }

    #[test]
    fn not_metadata_is_said_so() {
        let err = from_metadata("<html><body>hello</body></html>", None).unwrap_err();
        assert!(err.contains("not SAML metadata"), "{err}");
        let err =
            parse_certificates("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .unwrap_err();
        assert!(err.contains("X.509"), "{err}");
        assert!(decode_certificate("bm90IGEgY2VydA==").is_err());
    }
}
