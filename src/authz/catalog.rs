//! The permission catalog: which resource types exist and which actions each one has.
//!
//! Names are interned once, when the catalog is built, so that the engine compares small
//! integers instead of strings: a [`TypeIx`] indexes the list of types, an [`ActionIx`] indexes
//! ONE action-name table shared by every type (so `read` has the same index for `apps` and for
//! `models`, which is what lets a `*:*:read` policy match any type's `read` with one integer
//! comparison). Each type has a title and a description, each action a description. A
//! catalog is part of a profile (`profile.rs`; the default one holds the table of SEMANTICS.md,
//! [`Catalog::builtin`]); a deployment may also load a bare catalog from TOML
//! ([`Catalog::from_toml_str`]).

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
    /// What a platform's own permission also means among the gateway's (see [`Alias`]).
    aliases: Vec<Alias>,
    /// The shorthands accepted on input besides `resource:scope:action`.
    notations: Notations,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeEntry {
    name: String,
    title: String,
    description: String,
    /// In the order the catalog lists them.
    // INVARIANT: every index is < `Catalog::actions.len()`, and none repeats.
    actions: Vec<ActionIx>,
    /// `action_descriptions[i]` describes `actions[i]`.
    action_descriptions: Vec<String>,
}

/// A resource type as a profile or a catalog file writes it, before interning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    pub name: String,
    /// Shown to people, e.g. "Config profiles".
    pub title: String,
    pub description: String,
    /// `(name, description)` in order.
    pub actions: Vec<(String, String)>,
}

/// A permission of a platform that also means some of the gateway's own: MAR's
/// `access:read` is `members:read` and `roles:read` too. A policy that covers `from` carries
/// each of `to`, with the same effect and scope, so that a platform's built-in roles govern
/// members and roles as its documentation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub from: (TypeIx, ActionIx),
    pub to: Vec<(TypeIx, ActionIx)>,
}

/// The shorthands a catalog accepts on input: `type:action` and `type.action` for
/// `type:*:action`. What the gateway writes is always `resource:scope:action`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notations {
    pub colon: bool,
    pub dot: bool,
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
    /// The default catalog of SEMANTICS.md, in the table's order: the catalog of the
    /// `mechamental` profile.
    pub fn builtin() -> Catalog {
        super::profile::Profile::mechamental().catalog
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
        Catalog::from_specs(Catalog::specs_from_toml_str(s)?)
    }

    /// The types of a catalog file, read but not yet validated (see [`Catalog::from_specs`]).
    pub fn specs_from_toml_str(s: &str) -> Result<Vec<TypeSpec>, CatalogError> {
        let file: CatalogFile =
            Toml::from_str(s).map_err(|e| CatalogError::Toml(toml_error(s, &e)))?;
        Ok(file
            .types
            .0
            .into_iter()
            .map(|(name, actions)| TypeSpec::plain(name, actions))
            .collect())
    }

    /// A catalog of `specs`, validated: names of 1 to 64 lowercase ASCII letters, digits, `-`
    /// or `_`, at least one type, each with at least one action, nothing listed twice.
    pub fn from_specs(specs: Vec<TypeSpec>) -> Result<Catalog, CatalogError> {
        if specs.is_empty() {
            return Err(CatalogError::NoTypes);
        }
        let mut seen_types = HashSet::new();
        let mut distinct_actions = HashSet::new();
        for spec in &specs {
            let name = &spec.name;
            if !is_valid_name(name) {
                return Err(CatalogError::BadTypeName(name.clone()));
            }
            if !seen_types.insert(name.as_str()) {
                return Err(CatalogError::DuplicateType(name.clone()));
            }
            if spec.actions.is_empty() {
                return Err(CatalogError::NoActions(name.clone()));
            }
            let mut seen_actions = HashSet::new();
            for (action, _) in &spec.actions {
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
        if specs.len() > limit || distinct_actions.len() > limit {
            return Err(CatalogError::TooLarge);
        }
        Ok(Self::build(specs))
    }

    /// Interns already validated entries.
    fn build(specs: Vec<TypeSpec>) -> Catalog {
        let mut catalog = Catalog {
            types: Vec::new(),
            actions: Vec::new(),
            type_by_name: HashMap::new(),
            action_by_name: HashMap::new(),
            aliases: Vec::new(),
            notations: Notations::default(),
        };
        for spec in specs {
            // INVARIANT: callers validated names, uniqueness and size; an entry that would
            // overflow the u16 indexes (unreachable after validation) is left out rather than
            // given a wrong index.
            let Ok(type_ix) = u16::try_from(catalog.types.len()).map(TypeIx) else {
                break;
            };
            if catalog.type_by_name.contains_key(&spec.name) {
                continue;
            }
            let mut entry = TypeEntry {
                name: spec.name,
                title: spec.title,
                description: spec.description,
                actions: Vec::new(),
                action_descriptions: Vec::new(),
            };
            for (action, description) in spec.actions {
                let ix = match catalog.action_by_name.get(&action) {
                    Some(ix) => *ix,
                    None => {
                        let Ok(ix) = u16::try_from(catalog.actions.len()).map(ActionIx) else {
                            continue;
                        };
                        catalog.actions.push(action.clone());
                        catalog.action_by_name.insert(action, ix);
                        ix
                    }
                };
                if !entry.actions.contains(&ix) {
                    entry.actions.push(ix);
                    entry.action_descriptions.push(description);
                }
            }
            catalog.type_by_name.insert(entry.name.clone(), type_ix);
            catalog.types.push(entry);
        }
        catalog
    }

    /// The same catalog, reading `notations` on input and expanding `aliases` in policies.
    pub(super) fn with_extras(self, aliases: Vec<Alias>, notations: Notations) -> Catalog {
        Catalog {
            aliases,
            notations,
            ..self
        }
    }

    /// The aliases: platform permissions that also mean gateway permissions.
    pub fn aliases(&self) -> &[Alias] {
        &self.aliases
    }

    /// The shorthands accepted on input.
    pub fn notations(&self) -> Notations {
        self.notations
    }

    /// The title and description of a type, and each action's description (for the
    /// `permissionCatalog` query); empty strings for an index from another catalog.
    pub fn describe(&self, ix: TypeIx) -> (&str, &str, &[String]) {
        self.types
            .get(usize::from(ix.0))
            .map_or(("", "", &[]), |t| {
                (
                    t.title.as_str(),
                    t.description.as_str(),
                    t.action_descriptions.as_slice(),
                )
            })
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

/// A TOML parse error on one line, with the line it is on.
pub(super) fn toml_error(text: &str, e: &<Toml as Format>::Error) -> String {
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
        .and_then(|span| text.get(..span.start))
        .map(|before| before.matches('\n').count() + 1);
    match line {
        Some(line) => format!("{message} (line {line})"),
        None => message,
    }
}

impl TypeSpec {
    /// A type named by a catalog file, which gives neither titles nor descriptions.
    pub fn plain(name: String, actions: Vec<String>) -> TypeSpec {
        TypeSpec {
            title: title_of(&name),
            description: String::new(),
            actions: actions.into_iter().map(|a| (a, String::new())).collect(),
            name,
        }
    }
}

/// `config-profiles` → "Config profiles".
pub(super) fn title_of(name: &str) -> String {
    let spaced = name.replace(['-', '_'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
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
