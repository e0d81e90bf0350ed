use sea_orm::entity::prelude::*;

/// An invitation into an organization. Only the SHA-256 of the accept token is stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    /// `pending`, `accepted`, `revoked`.
    pub status: String,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub accepted_at: Option<DateTimeUtc>,
    pub accepted_by: Option<Uuid>,
    /// The invitee's name, as the inviter typed it.
    pub name: Option<String>,
    /// A message from the inviter, shown in the email.
    pub message: Option<String>,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_by: Option<Uuid>,
    /// When the email was last handed to the SMTP server (`None`: no SMTP, link shared by hand).
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
