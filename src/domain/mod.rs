//! The gateway's vocabulary: validated values (slugs, emails, names, passwords) and the records
//! every layer passes around. Nothing here does I/O.
//!
//! `store/` converts its rows into these types; `graphql/` converts these types into its own
//! objects. A value of a validated type (`Slug`, `Email`, `Name`) is known to be well-formed.

pub mod change;
pub mod sso;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A value a client sent that cannot be used, with the input field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A node's short name: lowercase letters, digits and dashes, 1 to 63 characters, not starting
/// or ending with a dash. Unique among its siblings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub const MAX_LEN: usize = 63;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let bad = |why: &str| InvalidInput::new(field, format!("slug `{raw}` {why}"));
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(bad("must be 1 to 63 characters long"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("may contain only lowercase letters, digits and dashes"));
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(bad("must not start or end with a dash"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidInput::new(field, "a name is required"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("a name may have at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                field,
                "a name must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, trimmed and lowercased so that one mailbox is one account.
///
/// Only the shape is checked (one `@`, a non-empty local part, a domain with no spaces);
/// whether the mailbox exists is for the invitation or reset mail to find out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let email = raw.trim().to_lowercase();
        let bad = || InvalidInput::new(field, format!("`{}` is not an email address", raw.trim()));
        if email.len() > Self::MAX_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') =>
            {
                Ok(Self(email))
            }
            _ => Err(bad()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email domain as an organization claims it: lowercase DNS labels (letters, digits,
/// hyphens; 1–63 characters, no hyphen at either end), at least two, at most 253 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let domain = raw.trim().trim_end_matches('.').to_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let labels: Vec<&str> = domain.split('.').collect();
        if domain.len() > 253 || labels.len() < 2 || !labels.iter().all(|l| label_ok(l)) {
            return Err(InvalidInput::new(
                field,
                format!(
                    "`{}` is not a domain name such as `example.com`",
                    raw.trim()
                ),
            ));
        }
        Ok(Self(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password as the user typed it, checked against the password policy.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 10;
    /// Bounds the work of hashing a hostile input.
    pub const MAX_CHARS: usize = 256;

    pub fn parse(field: &'static str, raw: &str, email: &Email) -> Result<Self, InvalidInput> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("a password needs at least {} characters", Self::MIN_CHARS),
            ));
        }
        if chars > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("a password may have at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.trim().to_lowercase() == email.as_str() {
            return Err(InvalidInput::new(
                field,
                "a password must not be the email address",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Where a user stands in one organization. Only `Active` members are granted anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    Pending,
    Active,
    Suspended,
    Inactive,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Inactive => "inactive",
        }
    }

    /// Reads a stored status; an unknown value reads as `Inactive`, which grants nothing.
    pub fn from_stored(raw: &str) -> Self {
        match raw {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            _ => Self::Inactive,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// Whether the owner proved they read `email` (an emailed link or invitation, a password
    /// reset, or an identity provider of an organization that verified the domain).
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One node of an organization's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Organization(Organization),
    Workspace(Workspace),
    Project(Project),
}

impl Node {
    /// Organization, workspace or project.
    pub fn kind(&self) -> crate::authz::NodeKind {
        match self {
            Self::Organization(_) => crate::authz::NodeKind::Organization,
            Self::Workspace(_) => crate::authz::NodeKind::Workspace,
            Self::Project(_) => crate::authz::NodeKind::Project,
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Self::Organization(o) => o.id,
            Self::Workspace(w) => w.id,
            Self::Project(p) => p.id,
        }
    }

    pub fn organization_id(&self) -> Uuid {
        match self {
            Self::Organization(o) => o.id,
            Self::Workspace(w) => w.organization_id,
            Self::Project(p) => p.organization_id,
        }
    }

    /// The node's ancestors and itself, root first: `[org]`, `[org, ws]` or `[org, ws, project]`.
    pub fn path_ids(&self) -> Vec<Uuid> {
        match self {
            Self::Organization(o) => vec![o.id],
            Self::Workspace(w) => vec![w.organization_id, w.id],
            Self::Project(p) => vec![p.organization_id, p.workspace_id, p.id],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub status: MemberStatus,
    pub created_at: DateTime<Utc>,
}

/// A member as an admin sees them: the account and its standing in the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub status: MemberStatus,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    /// Still pending in the store, but past its expiry: it can no longer be accepted.
    Expired,
}

impl InvitationStatus {
    pub fn from_stored(raw: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        match raw {
            "accepted" => Self::Accepted,
            "revoked" => Self::Revoked,
            _ if expires_at <= now => Self::Expired,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub message: Option<String>,
    pub status: InvitationStatus,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the email was last handed to the SMTP server.
    pub sent_at: Option<DateTime<Utc>>,
    /// The roles the invitee gets on acceptance.
    pub grants: Vec<InvitationGrant>,
}

/// A role an invitation grants at a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationGrant {
    pub role_id: Uuid,
    /// The organization, a workspace or a project.
    pub node_id: Uuid,
}

/// An email domain an organization claims; its identity providers speak for accounts in it
/// once verified (by a DNS TXT record carrying `token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationDomain {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub domain: String,
    pub token: String,
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A signed-in session (never its token: only the token's hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub method: String,
    /// The organization an SSO session was opened for: it authorizes only there, and
    /// nothing account-wide.
    pub organization_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// An impersonation: who acts as `user_id` through this session, and why.
    pub impersonator_id: Option<Uuid>,
    pub impersonation_reason: Option<String>,
}

impl Session {
    /// Whether this session may act in `organization_id` (an SSO session only in its own).
    pub fn reaches(&self, organization_id: Uuid) -> bool {
        self.organization_id
            .is_none_or(|own| own == organization_id)
    }
}

/// A role: built-in (no organization, immutable, policies defined in code) or an
/// organization's own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Role {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    /// The stable key of a built-in role (the profile's: `admin`, `chain-builder`…).
    pub key: Option<String>,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub policies: Vec<crate::authz::Policy>,
    /// Where the role may be bound, in tree order (every kind unless the role says).
    #[serde(default = "crate::authz::NodeKind::all")]
    pub bindable_at: Vec<crate::authz::NodeKind>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A role granted to a principal at a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub principal_kind: PrincipalKind,
    pub principal_id: Uuid,
    pub role_id: Uuid,
    pub granted_by: Option<Uuid>,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: String,
    /// The one resource the binding names, if any.
    pub resource: Option<crate::authz::BoundResource>,
}

impl RoleBinding {
    /// The node the role is bound at: the deepest of organization, workspace, project.
    pub fn node_id(&self) -> Uuid {
        self.project_id
            .or(self.workspace_id)
            .unwrap_or(self.organization_id)
    }

    /// Whether the binding still applies at `now` (SEMANTICS: expired at `expires_at`).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
}

/// What kind of principal a binding names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    /// Every member of the team holds the binding.
    Team,
    ServiceAccount,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Team => "team",
            Self::ServiceAccount => "service_account",
        }
    }

    /// As stored; an unknown kind reads as a user (the only kind older rows have).
    pub fn from_stored(s: &str) -> Self {
        match s {
            "team" => Self::Team,
            "service_account" => Self::ServiceAccount,
            _ => Self::User,
        }
    }
}

/// A named set of an organization's users: a binding to the team is held by each member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A principal's membership of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub team_id: Uuid,
    pub principal_id: Uuid,
    /// `manual`, or `sso` (kept in step with an SSO group at each sign-in).
    pub source: String,
    pub added_by: Option<Uuid>,
    pub added_at: DateTime<Utc>,
}

/// A principal of one organization that is no person (an agent, a pipeline, a CI job): bound
/// to roles and teams like a user, acting through its API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub disabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Whose power an API key carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyOwner {
    /// A member's personal key, in the key's organization.
    User(Uuid),
    ServiceAccount(Uuid),
}

impl KeyOwner {
    /// The principal the key acts as.
    pub fn principal_id(self) -> Uuid {
        match self {
            Self::User(id) | Self::ServiceAccount(id) => id,
        }
    }
}

/// An API key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub owner: KeyOwner,
    pub name: String,
    /// The secret's first characters, to recognise it in lists.
    pub display_prefix: String,
    /// `resource:scope:action` permissions; `None`: everything its owner holds.
    pub scopes: Option<Vec<String>>,
    /// Networks a request must come from; `None`: any.
    pub allowed_cidrs: Option<Vec<ipnet::IpNet>>,
    pub expires_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub rotated_from: Option<Uuid>,
    /// On a key replaced by rotation: the end of its overlap with its successor.
    pub overlap_until: Option<DateTime<Utc>>,
    pub first_used_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The last distinct client IPs, newest first.
    pub last_ips: Vec<String>,
}

/// Why a key opens nothing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Revoked,
    Expired,
    /// Replaced by rotation, and the overlap is over.
    Replaced,
    /// The request came from outside `allowed_cidrs`.
    Network,
}

impl KeyRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Replaced => "replaced",
            Self::Network => "network",
        }
    }

    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::Revoked => "the API key has been revoked",
            Self::Expired => "the API key has expired",
            Self::Replaced => {
                "the API key was rotated and its overlap has ended: use its replacement"
            }
            Self::Network => "the API key is not allowed from this network (see its allowedCidrs)",
        }
    }
}

impl ApiKey {
    /// Why the key may not be used at `now` from `ip`, if it may not.
    pub fn refusal(&self, now: DateTime<Utc>, ip: Option<std::net::IpAddr>) -> Option<KeyRefusal> {
        if self.revoked_at.is_some_and(|at| at <= now) {
            return Some(KeyRefusal::Revoked);
        }
        if self.expires_at <= now {
            return Some(KeyRefusal::Expired);
        }
        if self.overlap_until.is_some_and(|at| at <= now) {
            return Some(KeyRefusal::Replaced);
        }
        if let Some(nets) = &self.allowed_cidrs
            && !ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
        {
            return Some(KeyRefusal::Network);
        }
        None
    }
}

/// What kind of principal acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActorKind {
    #[default]
    User,
    ServiceAccount,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ServiceAccount => "service_account",
        }
    }
}

/// Who made a change and from where: what every audit event records.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The acting principal: a user, or a service account (`kind` says which).
    pub user_id: Option<Uuid>,
    /// The acting person's email as it is now (kept on the event: it outlives the account).
    pub email: Option<String>,
    pub kind: ActorKind,
    /// The API key (or impersonation session) the principal acted through, if any.
    pub credential_id: Option<Uuid>,
    /// Who acted as `user_id` through an impersonation session.
    pub impersonator_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// This request's actor, now known to be the person `id` (a sign-in, a sign-up).
    pub fn as_person(&self, id: Uuid, email: &str) -> Self {
        Self {
            user_id: Some(id),
            email: Some(email.to_owned()),
            ..self.clone()
        }
    }

    /// This actor, or the person `id` when the request came from nobody signed in (a link
    /// whose token is the proof).
    pub fn or_person(&self, id: Uuid, email: &str) -> Self {
        match self.user_id {
            Some(_) => self.clone(),
            None => self.as_person(id, email),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        for ok in ["a", "prod", "team-1", "0", &"a".repeat(63)] {
            assert!(Slug::parse("slug", ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "Prod",
            "-a",
            "a-",
            "a_b",
            "a b",
            "ü",
            &"a".repeat(64),
            "a/b",
        ] {
            assert!(
                Slug::parse("slug", bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        let e = Email::parse("email", "  Ada@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "ada@example.com");
        for bad in [
            "", "ada", "@x.io", "ada@", "a b@x.io", "a@b@c", "a@.x", "a@x.",
        ] {
            assert!(
                Email::parse("email", bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn names_are_trimmed_and_required() {
        assert_eq!(Name::parse("name", "  Acme ").unwrap().as_str(), "Acme");
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", "a\u{0}b").is_err());
        assert!(Name::parse("name", &"x".repeat(201)).is_err());
    }

    #[test]
    fn passwords_follow_the_policy() {
        let email = Email::parse("email", "ada@example.com").unwrap();
        assert!(NewPassword::parse("password", "short", &email).is_err());
        assert!(NewPassword::parse("password", "ADA@example.com", &email).is_err());
        assert!(NewPassword::parse("password", &"p".repeat(257), &email).is_err());
        assert!(NewPassword::parse("password", "correct horse battery", &email).is_ok());
    }

    #[test]
    fn expired_pending_invitations_read_as_expired() {
        let now = Utc::now();
        let past = now - chrono::Duration::seconds(1);
        assert_eq!(
            InvitationStatus::from_stored("pending", past, now),
            InvitationStatus::Expired
        );
        assert_eq!(
            InvitationStatus::from_stored("accepted", past, now),
            InvitationStatus::Accepted
        );
    }
}
