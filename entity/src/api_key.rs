use sea_orm::entity::prelude::*;

/// An API key: a bearer credential of a member (personal, in one organization) or of a
/// service account. Only the SHA-256 of the secret is stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The owner of a personal key.
    pub user_id: Option<Uuid>,
    /// The owner of a service account's key (exactly one of the two is set).
    pub service_account_id: Option<Uuid>,
    pub name: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The secret's first characters, for lists (never enough to use it).
    pub display_prefix: String,
    /// `resource:scope:action` permissions (JSON array); `None`: all its owner holds.
    pub scopes: Option<Json>,
    /// CIDRs a request must come from (JSON array); `None`: any network.
    pub allowed_cidrs: Option<Json>,
    pub expires_at: DateTimeUtc,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_by: Option<Uuid>,
    /// `revoked`, `owner_removed`, `rotated`.
    pub revoked_reason: Option<String>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<Uuid>,
    /// On a key replaced by rotation: it works until then, or until its successor is used.
    pub overlap_until: Option<DateTimeUtc>,
    pub first_used_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    /// The last five distinct client IPs, newest first (JSON array).
    pub last_ips: Option<Json>,
    pub warned_week_at: Option<DateTimeUtc>,
    pub warned_day_at: Option<DateTimeUtc>,
    pub expiry_audited_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
