use sea_orm::entity::prelude::*;

/// A person who can sign in. `email` is stored lowercased and is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    /// Consecutive failed sign-ins since the last success (lockout).
    pub failed_sign_ins: i32,
    pub locked_until: Option<DateTimeUtc>,
    /// Set when the account is deleted; a deleted user is denied everything.
    pub deleted_at: Option<DateTimeUtc>,
    /// When the email was proven; SSO never reaches an account without it.
    pub email_verified_at: Option<DateTimeUtc>,
    /// The organization whose invitation or SSO created the account; its admins may reset the
    /// password while the account belongs to no other organization.
    pub managed_by_organization_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
