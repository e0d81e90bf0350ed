//! Permissions, `resource:scope:action`, parsed against a [`Catalog`] into integers.
//!
//! Parsing happens once, when a role's policies are compiled; the engine then only compares
//! [`TypeIx`], [`ActionIx`] and UUIDs. A parse error names the part at fault
//! ([`PermissionPart`]) and says what would be accepted, so that the API can hand it to the
//! client as it is.

use uuid::Uuid;

use super::catalog::{ActionIx, Catalog, TypeIx, is_valid_name, shorten};

/// Whether a policy grants or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    /// `"allow"` or `"deny"`, as stored and as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }

    /// The inverse of [`Effect::as_str`]; nothing else is accepted.
    pub fn parse(s: &str) -> Option<Effect> {
        match s {
            "allow" => Some(Effect::Allow),
            "deny" => Some(Effect::Deny),
            _ => None,
        }
    }
}

/// Where a permission applies: `*` (anywhere the role is bound), or the id of a node (that node
/// and everything under it) or of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Any,
    Target(Target),
}

/// The id a scope names: a resource id (the application's own string), which names a node too
/// when it is a UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The id as the gateway writes it (a UUID hyphenated and lowercase).
    pub id: std::sync::Arc<str>,
    /// The id as a UUID, when it is one: the node it may name.
    pub node: Option<Uuid>,
}

impl Target {
    /// The target `text` names, if it is a valid resource id (see [`resource_id`]).
    pub fn parse(text: &str) -> Option<Target> {
        let id = resource_id(text)?;
        let node = parse_uuid(&id);
        Some(Target {
            id: id.into(),
            node,
        })
    }

    /// A target that is a node's (or a resource's) UUID.
    pub fn uuid(id: Uuid) -> Target {
        Target {
            id: id.hyphenated().to_string().into(),
            node: Some(id),
        }
    }

    /// Whether the target is the checked node, one of its ancestors (`path`), or the checked
    /// resource.
    pub fn matches(&self, path: &[Uuid], resource_id: Option<&str>) -> bool {
        self.node.is_some_and(|n| path.contains(&n)) || resource_id == Some(&*self.id)
    }
}

/// Longest resource id, in characters.
pub const MAX_RESOURCE_ID: usize = 200;

/// A resource id in the gateway's spelling: 1 to 200 printable characters without `:` or
/// whitespace (SEMANTICS "The hierarchy"), not only stars, a UUID written hyphenated and
/// lowercase so that one id has one spelling. `None` when `text` is not one.
pub fn resource_id(text: &str) -> Option<String> {
    let len = text.chars().count();
    // Only stars is refused too: `**` is a typo of `*`, and as an id it would make a deny
    // meant for everything deny nothing.
    if !(1..=MAX_RESOURCE_ID).contains(&len)
        || text.chars().all(|c| c == '*')
        || text
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return None;
    }
    Some(match parse_uuid(text) {
        Some(id) => id.hyphenated().to_string(),
        None => text.to_owned(),
    })
}

/// A parsed permission. `None` stands for `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub resource: Option<TypeIx>,
    pub scope: Scope,
    pub action: Option<ActionIx>,
}

/// The part of a permission an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionPart {
    /// The text as a whole (e.g. not three parts).
    Whole,
    Resource,
    Scope,
    Action,
}

/// A permission (or a check's type and action) that the catalog does not accept. The message
/// is written for the client: lowercase, no final period, user input in backticks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PermissionError {
    pub part: PermissionPart,
    pub message: String,
}

impl PermissionError {
    pub fn new(part: PermissionPart, message: impl Into<String>) -> Self {
        Self {
            part,
            message: message.into(),
        }
    }
}

impl Catalog {
    /// Parses `resource:scope:action`:
    /// - exactly three parts separated by `:`, none empty (or, where the catalog accepts them,
    ///   the shorthands `resource:action` and `resource.action` for `resource:*:action`);
    /// - `resource` is `*` or a type of the catalog;
    /// - `action` is `*` or one of that type's actions (with a `*` resource, an action of at
    ///   least one type);
    /// - `scope` is `*` or an id: a node's UUID (hyphenated, either case) or a resource's id
    ///   (1 to 200 printable characters without `:` or whitespace).
    ///
    /// Errors name the bad part, e.g. "permission `apps:*:fly`: `apps` has no action `fly`;
    /// it has read, write, manage, delete".
    pub fn parse_permission(&self, s: &str) -> Result<Permission, PermissionError> {
        let fail = |part, why: String| {
            PermissionError::new(part, format!("permission `{}`: {why}", shorten(s)))
        };
        let notations = self.notations();
        let colons = s.matches(':').count();
        let (resource, scope, action) = match (colons, s.split_once('.')) {
            (2, _) => {
                let mut parts = s.splitn(3, ':');
                (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                )
            }
            (1, _) if notations.colon => {
                let (resource, action) = s.split_once(':').unwrap_or_default();
                (resource, "*", action)
            }
            (0, Some((resource, action))) if notations.dot && !action.contains('.') => {
                (resource, "*", action)
            }
            _ => {
                let mut accepted =
                    String::from("`resource:scope:action`, three parts separated by `:`");
                if notations.colon {
                    accepted.push_str(", or `resource:action`");
                }
                if notations.dot {
                    accepted.push_str(", or `resource.action`");
                }
                return Err(fail(
                    PermissionPart::Whole,
                    format!("expected {accepted}, found {}", colons + 1),
                ));
            }
        };
        for (part, label, text) in [
            (PermissionPart::Resource, "resource type", resource),
            (PermissionPart::Scope, "scope", scope),
            (PermissionPart::Action, "action", action),
        ] {
            if text.is_empty() {
                return Err(fail(part, format!("the {label} is empty; use `*` for any")));
            }
        }
        for (part, label, text) in [
            (PermissionPart::Resource, "resource type", resource),
            (PermissionPart::Action, "action", action),
        ] {
            if text != "*" && !is_valid_name(text) {
                return Err(fail(
                    part,
                    format!(
                        "{label} `{}` is not `*` or a name of 1 to 64 lowercase letters, digits, `-` or `_`",
                        shorten(text)
                    ),
                ));
            }
        }

        let resource = match resource {
            "*" => None,
            name => match self.type_ix(name) {
                Some(t) => Some(t),
                None => {
                    return Err(fail(
                        PermissionPart::Resource,
                        format!("unknown resource type `{name}`"),
                    ));
                }
            },
        };
        let scope = match scope {
            "*" => Scope::Any,
            text => match Target::parse(text) {
                Some(target) => Scope::Target(target),
                None => {
                    return Err(fail(
                        PermissionPart::Scope,
                        format!(
                            "scope `{}` is neither `*` nor the id of a node or a resource (1 to 200 printable characters, without `:` or spaces, not only `*`)",
                            shorten(text)
                        ),
                    ));
                }
            },
        };
        let action = match (action, resource) {
            ("*", _) => None,
            (name, Some(t)) => match self.action_ix(name) {
                Some(a) if self.has_action(t, a) => Some(a),
                _ => return Err(fail(PermissionPart::Action, self.no_such_action(t, name))),
            },
            (name, None) => match self.action_ix(name) {
                Some(a) => Some(a),
                None => {
                    return Err(fail(
                        PermissionPart::Action,
                        format!("no resource type has action `{name}`"),
                    ));
                }
            },
        };
        Ok(Permission {
            resource,
            scope,
            action,
        })
    }

    /// The canonical text form, e.g. `apps:*:read`, `*:*:*`, `endpoints:<uuid>:trigger` (a
    /// UUID hyphenated, lowercase), `chains:chain-42:run`. Parsing it gives back the same
    /// permission.
    pub fn format_permission(&self, p: &Permission) -> String {
        let resource = p.resource.map_or("*", |t| self.type_name(t));
        let action = p.action.map_or("*", |a| self.action_name(a));
        match &p.scope {
            Scope::Any => format!("{resource}:*:{action}"),
            Scope::Target(t) => format!("{resource}:{}:{action}", t.id),
        }
    }
}

/// A UUID in its 36-character hyphenated form only, so that one id has one spelling up to case
/// (the `uuid` crate would also take the simple, braced and URN forms).
fn parse_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}
