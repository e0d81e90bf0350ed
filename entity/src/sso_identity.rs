use sea_orm::entity::prelude::*;

/// An identity of an IdP linked to an account: the provider and the IdP's own stable id of
/// the person (`sub`, or the SAML NameID). A sign-in finds its account through this, not by
/// email.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider_id: Uuid,
    pub subject: String,
    pub user_id: Uuid,
    /// The email the IdP sent when the link was made.
    pub email: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
