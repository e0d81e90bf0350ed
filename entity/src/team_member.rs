use sea_orm::entity::prelude::*;

/// A principal's membership of a team. Deleting the team deletes its memberships.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "team_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub team_id: Uuid,
    /// The team's organization (a principal's teams are one index lookup).
    pub organization_id: Uuid,
    /// `user` (later `service_account`).
    pub principal_type: String,
    pub principal_id: Uuid,
    /// `manual` or `sso`.
    pub source: String,
    /// For `source = "sso"`: the provider whose group mapping added the member.
    pub sso_provider_id: Option<Uuid>,
    pub added_by: Option<Uuid>,
    pub added_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
