use sea_orm::entity::prelude::*;

/// A sign-in the gateway sent to an IdP and has not seen come back: the OIDC `state` (or the
/// SAML request id) as `id`, the nonce, the PKCE verifier (encrypted). Single use.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub provider_id: Uuid,
    pub nonce: Option<String>,
    pub verifier_ciphertext: Option<String>,
    pub return_to: Option<String>,
    /// The signed-in account this round trip links the identity to, instead of signing in.
    pub link_user_id: Option<Uuid>,
    /// A link round trip's proven identity (JSON), waiting for the account to confirm it; the
    /// row's `id` is then the hash of the confirmation code, and no callback can take it.
    #[sea_orm(column_type = "Text", nullable)]
    pub pending_identity: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
