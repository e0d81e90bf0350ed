//! Identity providers as the rest of the gateway sees them: their settings, and who they say
//! signed in. The flows that use them are in `crate::sso`; the store keeps them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an OIDC provider needs besides its client secret (which is stored encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcSettings {
    /// The issuer; `{issuer}/.well-known/openid-configuration` is discovered.
    pub issuer_url: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The claim (in the ID token, else userinfo) that lists the user's groups.
    pub groups_claim: String,
}

/// What a SAML IdP is known by: its metadata (by URL or as XML), or its entity id, SSO URL and
/// signing certificate given one by one; and the attribute names of the assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlSettings {
    pub idp_metadata_url: Option<String>,
    pub idp_metadata_xml: Option<String>,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    /// PEM or bare base64 (DER) X.509 certificate the IdP signs with.
    pub idp_certificate: Option<String>,
    pub email_attribute: String,
    pub name_attribute: String,
    pub groups_attribute: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSettings {
    Oidc(OidcSettings),
    Saml(SamlSettings),
}

impl ProviderSettings {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Oidc(_) => "oidc",
            Self::Saml(_) => "saml",
        }
    }
}

/// An identity provider of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub settings: ProviderSettings,
    /// Whether a client secret is stored (never returned).
    pub has_secret: bool,
    /// The role given at the organization to users none of whose groups is mapped.
    pub default_role_id: Option<Uuid>,
    /// The email domains it may create accounts for (just in time); `None`: any.
    pub jit_domains: Option<Vec<String>>,
    /// Whether unsolicited (IdP-initiated) SAML responses are accepted: off unless turned on.
    pub allow_idp_initiated: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Who the IdP says signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The IdP's stable id of the person (`sub`, or the SAML NameID).
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    /// The IdP groups the person belongs to now (empty when the IdP sent none).
    pub groups: Vec<String>,
}
