use sea_orm::entity::prelude::*;

/// One audited change, written in the same transaction as the change it records. It has no
/// foreign keys, so that it outlives what it describes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    /// The acting person's email when the event was written (kept after the account changes
    /// its email or is deleted).
    pub actor_email: Option<String>,
    /// `user`, `service_account`, `api_key`; `None` on rows older than machine identities.
    pub actor_kind: Option<String>,
    /// The API key the actor acted through.
    pub actor_credential_id: Option<Uuid>,
    /// The person acting as `actor_id` through an impersonation session.
    pub impersonator_id: Option<Uuid>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub result: String,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTimeUtc,
    /// The chain the event is in: its organization, or the nil UUID (no organization); null on
    /// events written before chains.
    pub chain_id: Option<Uuid>,
    /// Its place in the chain, from 1.
    pub seq: Option<i64>,
    /// The hash of the event before it (zeros for the first).
    pub prev_hash: Option<String>,
    /// SHA-256 (hex) of a tag, `prev_hash` and the event's canonical form (`audit_chain.rs`).
    pub hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
