//! The permission catalog: which resource types exist and which actions each one has.
//!
//! Names are interned once, when the catalog is built, so that the engine compares small
//! integers instead of strings: a [`TypeIx`] indexes the list of types, an [`ActionIx`] indexes
//! ONE action-name table shared by every type (so `read` has the same index for `apps` and for
//! `models`, which is what lets a `*:*:read` policy match any type's `read` with one integer
//! comparison). The default catalog is the table of SEMANTICS.md ([`Catalog::builtin`]); a
//! deployment may load its own from TOML ([`Catalog::from_toml_str`]).

use std::collections::{HashMap, HashSet};
use std::fmt;

use figment::providers::{Format, Toml};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::permission::{PermissionError, PermissionPart};

/// Interned index of a resource type within the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeIx(pub u16);

/// Interned index of an action name in the catalog's one global action table: the same action
/// name has the same `ActionIx` whatever the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionIx(pub u16);

/// The default catalog of SEMANTICS.md, in the table's order.
const BUILTIN: [(&str, &[&str]); 13] = [
    ("workspace", &["read", "write", "manage"]),
    ("apps", &["read", "write", "manage", "delete"]),
    ("endpoints", &["read", "write", "trigger"]),
    ("augmentations", &["read", "write", "execute"]),
    ("secrets", &["read", "write", "delete", "reference"]),
    ("models", &["read", "write", "manage"]),
    ("tools", &["read", "write", "manage"]),
    ("sources", &["read", "write", "delete"]),
    ("analytics", &["view"]),
    (
        "members",
        &["read", "invite", "remove", "manage", "impersonate"],
    ),
    ("roles", &["read", "write"]),
    ("audit", &["read", "export"]),
    ("sso", &["read", "manage"]),
];

/// The longest type or action name.
pub const MAX_NAME_LEN: usize = 64;

/// Shown for an index that does not belong to this catalog (it can never be a valid name).
const UNKNOWN_NAME: &str = "?";

/// Resource types and their actions, with names interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// In catalog order; `TypeIx(i)` is `types[i]`.
    types: Vec<TypeEntry>,
    /// Every action name of every type, in order of first appearance; `ActionIx(i)` is
    /// `actions[i]`.
    actions: Vec<String>,
    type_by_name: HashMap<String, TypeIx>,
    action_by_name: HashMap<String, ActionIx>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeEntry {
    name: String,
    /// In the order the catalog lists them.
    // INVARIANT: every index is < `Catalog::actions.len()`, and none repeats.
    actions: Vec<ActionIx>,
}

/// Why a deployment's catalog cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid toml: {0}")]
    Toml(String),
    #[error(
        "catalog lists no resource types; add a `[types]` table such as `apps = [\"read\", \"write\"]`"
    )]
    NoTypes,
    #[error(
        "resource type `{0}` is not a valid name: use 1 to 64 lowercase letters, digits, `-` or `_`"
    )]
    BadTypeName(String),
    #[error(
        "action `{action}` of `{resource_type}` is not a valid name: use 1 to 64 lowercase letters, digits, `-` or `_`"
    )]
    BadActionName {
        resource_type: String,
        action: String,
    },
    #[error("resource type `{0}` lists no actions")]
    NoActions(String),
    #[error("resource type `{0}` is listed twice")]
    DuplicateType(String),
    #[error("resource type `{resource_type}` lists action `{action}` twice")]
    DuplicateAction {
        resource_type: String,
        action: String,
    },
    #[error("catalog is too large: at most 65535 resource types and 65535 distinct action names")]
    TooLarge,
}

/// Whether `s` is a valid type or action name: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Catalog {
    /// The default catalog of SEMANTICS.md, in the table's order (workspace, apps, endpoints,
    /// augmentations, secrets, models, tools, sources, analytics, members, roles, audit, sso).
    pub fn builtin() -> Catalog {
        Self::build(
            BUILTIN
                .iter()
                .map(|(t, actions)| (*t, actions.iter().copied())),
        )
    }

    /// A deployment's own catalog from TOML, types in the order they are written:
    ///
    /// ```toml
    /// [types]
    /// apps = ["read", "write"]
    /// models = ["read", "manage"]
    /// ```
    ///
    /// Names are 1 to 64 lowercase ASCII letters, digits, `-` or `_`. The catalog must list at
    /// least one type, each type at least one action, and no action twice for one type. Other
    /// top-level keys are rejected, so that a typo does not go unnoticed.
    pub fn from_toml_str(s: &str) -> Result<Catalog, CatalogError> {
        // `Format::from_str` deserializes straight from the TOML document, whose tables keep
        // the order they are written in; `Figment::extract` would go through a sorted map.
        let file: CatalogFile = Toml::from_str(s).map_err(|e| {
            // One line: the parser's message may span several.
            let message = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            let line = e
                .span()
                .and_then(|span| s.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            CatalogError::Toml(match line {
                Some(line) => format!("{message} (line {line})"),
                None => message,
            })
        })?;
        let entries = file.types.0;
        if entries.is_empty() {
            return Err(CatalogError::NoTypes);
        }
        let mut seen_types = HashSet::new();
        let mut distinct_actions = HashSet::new();
        for (name, actions) in &entries {
            if !is_valid_name(name) {
                return Err(CatalogError::BadTypeName(name.clone()));
            }
            if !seen_types.insert(name.as_str()) {
                return Err(CatalogError::DuplicateType(name.clone()));
            }
            if actions.is_empty() {
                return Err(CatalogError::NoActions(name.clone()));
            }
            let mut seen_actions = HashSet::new();
            for action in actions {
                if !is_valid_name(action) {
                    return Err(CatalogError::BadActionName {
                        resource_type: name.clone(),
                        action: action.clone(),
                    });
                }
                if !seen_actions.insert(action.as_str()) {
                    return Err(CatalogError::DuplicateAction {
                        resource_type: name.clone(),
                        action: action.clone(),
                    });
                }
                distinct_actions.insert(action.as_str());
            }
        }
        let limit = usize::from(u16::MAX);
        if entries.len() > limit || distinct_actions.len() > limit {
            return Err(CatalogError::TooLarge);
        }
        Ok(Self::build(entries.iter().map(|(t, actions)| {
            (t.as_str(), actions.iter().map(String::as_str))
        })))
    }

    /// Interns already validated entries.
    fn build<'s, A>(entries: impl Iterator<Item = (&'s str, A)>) -> Catalog
    where
        A: Iterator<Item = &'s str>,
    {
        let mut catalog = Catalog {
            types: Vec::new(),
            actions: Vec::new(),
            type_by_name: HashMap::new(),
            action_by_name: HashMap::new(),
        };
        for (name, actions) in entries {
            // INVARIANT: callers validated names, uniqueness and size; an entry that would
            // overflow the u16 indexes (unreachable after validation) is left out rather than
            // given a wrong index.
            let Ok(type_ix) = u16::try_from(catalog.types.len()).map(TypeIx) else {
                break;
            };
            if catalog.type_by_name.contains_key(name) {
                continue;
            }
            let mut entry = TypeEntry {
                name: name.to_owned(),
                actions: Vec::new(),
            };
            for action in actions {
                let ix = match catalog.action_by_name.get(action) {
                    Some(ix) => *ix,
                    None => {
                        let Ok(ix) = u16::try_from(catalog.actions.len()).map(ActionIx) else {
                            continue;
                        };
                        catalog.actions.push(action.to_owned());
                        catalog.action_by_name.insert(action.to_owned(), ix);
                        ix
                    }
                };
                if !entry.actions.contains(&ix) {
                    entry.actions.push(ix);
                }
            }
            catalog.type_by_name.insert(name.to_owned(), type_ix);
            catalog.types.push(entry);
        }
        catalog
    }

    /// Types with their actions, in catalog order (for the `permissionCatalog` query).
    pub fn types(&self) -> Vec<(&str, Vec<&str>)> {
        self.types
            .iter()
            .map(|t| {
                let actions = t.actions.iter().map(|a| self.action_name(*a)).collect();
                (t.name.as_str(), actions)
            })
            .collect()
    }

    /// The index of the type named `name`, if the catalog has it.
    pub fn type_ix(&self, name: &str) -> Option<TypeIx> {
        self.type_by_name.get(name).copied()
    }

    /// The index of the action named `name`, if any type has it.
    pub fn action_ix(&self, name: &str) -> Option<ActionIx> {
        self.action_by_name.get(name).copied()
    }

    /// The name of a type; `?` for an index from another catalog.
    pub fn type_name(&self, ix: TypeIx) -> &str {
        self.types
            .get(usize::from(ix.0))
            .map_or(UNKNOWN_NAME, |t| t.name.as_str())
    }

    /// The name of an action; `?` for an index from another catalog.
    pub fn action_name(&self, ix: ActionIx) -> &str {
        self.actions
            .get(usize::from(ix.0))
            .map_or(UNKNOWN_NAME, String::as_str)
    }

    /// The actions of one type, in catalog order (empty for an index from another catalog).
    pub fn type_actions(&self, ix: TypeIx) -> &[ActionIx] {
        self.types
            .get(usize::from(ix.0))
            .map_or(&[], |t| t.actions.as_slice())
    }

    /// Whether `action` is one of the actions of `resource_type`.
    pub fn has_action(&self, resource_type: TypeIx, action: ActionIx) -> bool {
        self.type_actions(resource_type).contains(&action)
    }

    /// Resolves a concrete (type, action) pair named in a check. The errors name the bad part,
    /// e.g. "unknown resource type `foo`", "`apps` has no action `fly`; it has read, write,
    /// manage, delete".
    pub fn resolve(
        &self,
        resource_type: &str,
        action: &str,
    ) -> Result<(TypeIx, ActionIx), PermissionError> {
        if resource_type == "*" {
            return Err(PermissionError::new(
                PermissionPart::Resource,
                "a check names one resource type, not `*`",
            ));
        }
        let Some(t) = self.type_ix(resource_type) else {
            return Err(PermissionError::new(
                PermissionPart::Resource,
                format!("unknown resource type `{}`", shorten(resource_type)),
            ));
        };
        match self.action_ix(action) {
            Some(a) if self.has_action(t, a) => Ok((t, a)),
            _ => Err(PermissionError::new(
                PermissionPart::Action,
                self.no_such_action(t, action),
            )),
        }
    }

    /// "`apps` has no action `fly`; it has read, write, manage, delete".
    pub(super) fn no_such_action(&self, t: TypeIx, action: &str) -> String {
        let has: Vec<&str> = self
            .type_actions(t)
            .iter()
            .map(|a| self.action_name(*a))
            .collect();
        format!(
            "`{}` has no action `{}`; it has {}",
            self.type_name(t),
            shorten(action),
            has.join(", ")
        )
    }

    /// Every concrete (type, action) pair, in catalog order.
    pub fn pairs(&self) -> Vec<(TypeIx, ActionIx)> {
        self.types
            .iter()
            .zip(0u16..)
            .flat_map(|(t, i)| t.actions.iter().map(move |a| (TypeIx(i), *a)))
            .collect()
    }
}

/// User input echoed in a message, cut to a readable length.
pub(super) fn shorten(s: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: usize = 80;
    if s.chars().count() <= KEEP {
        return s.into();
    }
    let cut: String = s.chars().take(KEEP).collect();
    format!("{cut}…").into()
}

/// The TOML file: one `[types]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    types: OrderedTypes,
}

/// The `[types]` table as its entries in document order (a map type would sort or scramble
/// them).
struct OrderedTypes(Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for OrderedTypes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = OrderedTypes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of resource types, each with a list of action names")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<OrderedTypes, M::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Vec<String>>()? {
                    entries.push(entry);
                }
                Ok(OrderedTypes(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}
