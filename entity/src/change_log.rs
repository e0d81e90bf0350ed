use sea_orm::entity::prelude::*;

/// One decision-relevant change of an organization, at the revision it committed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: Uuid,
    pub revision: i64,
    pub kind: String,
    pub principal_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
