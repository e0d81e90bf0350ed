use sea_orm::entity::prelude::*;

/// A signed-in session. Only the SHA-256 of the bearer token is stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    #[sea_orm(unique)]
    pub token_hash: String,
    /// `password`, `bootstrap`, later `sso`.
    pub method: String,
    /// The organization an SSO session was opened for; `None` for password sessions.
    pub organization_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_active_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// Who opened this session to act as `user_id` (an impersonation), if anyone.
    pub impersonator_id: Option<Uuid>,
    pub impersonation_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
