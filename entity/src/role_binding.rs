use sea_orm::entity::prelude::*;

/// A role granted to a principal at a node: the organization, one of its workspaces or one of
/// its projects (the deepest non-null column names the node). Deleting the node or the role
/// deletes the binding: the foreign keys cascade.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "role_bindings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    /// `user` (later `api_key`, `service_account`).
    pub principal_type: String,
    pub principal_id: Uuid,
    pub role_id: Uuid,
    pub granted_by: Option<Uuid>,
    pub granted_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    /// `manual`, `bootstrap`, `creator`, `invitation`, later `sso`.
    pub source: String,
    /// For `source = "sso"`: the identity provider whose group mapping made the binding.
    pub sso_provider_id: Option<Uuid>,
    /// The one resource the binding names (a catalog type and the application's id), if any.
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
