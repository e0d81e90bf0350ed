use sea_orm::entity::prelude::*;

/// A principal of one organization that is no person: an agent, a pipeline, a CI job. It is
/// bound to roles and teams like a user and acts through its API keys. Deleting the
/// organization deletes it; deleting it deletes its keys.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "service_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// `name` folded (trimmed, lowercase): unique within the organization.
    pub name_key: String,
    pub description: Option<String>,
    /// A disabled account is denied everything, and so are its keys.
    pub disabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
