use sea_orm::entity::prelude::*;

/// An organization's identity provider: `kind` is `oidc` or `saml`. `settings` holds what is
/// not secret; an OIDC client secret is kept only encrypted, in `secret_ciphertext`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    pub settings: Json,
    pub secret_ciphertext: Option<String>,
    /// The role (at the organization) given to users none of whose groups is mapped.
    pub default_role_id: Option<Uuid>,
    /// Email domains (JSON list) the provider may create accounts for; `None`: any.
    pub jit_domains: Option<Json>,
    /// Whether unsolicited (IdP-initiated) SAML responses are accepted.
    pub allow_idp_initiated: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
