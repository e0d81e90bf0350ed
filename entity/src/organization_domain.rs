use sea_orm::entity::prelude::*;

/// An email domain an organization claims: verified once a DNS TXT record carries `token`.
/// `verified_domain` repeats `domain` while verified and is unique, so that one organization
/// at a time holds a domain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organization_domains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub domain: String,
    pub token: String,
    pub verified_at: Option<DateTimeUtc>,
    pub verified_domain: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
