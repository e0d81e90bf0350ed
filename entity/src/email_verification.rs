use sea_orm::entity::prelude::*;

/// A link emailed to prove that an account's owner reads `email`. Only the SHA-256 of the
/// token is stored; it can be used once, before `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_verifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    /// `verify`: proves that the owner reads the account's email; `change`: makes `email`
    /// the account's (proven) email.
    pub purpose: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
