use sea_orm::entity::prelude::*;

/// A named set of policies. Built-in roles have no organization and `builtin = true`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    /// Stable key of a built-in role (the profile's, e.g. `admin`, `chain-builder`).
    pub key: Option<String>,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    /// Where the role may be bound: `organization`, `workspace`, `project` joined by `,`;
    /// null for everywhere.
    pub bindable_at: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
