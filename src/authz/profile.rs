//! Profiles: what a platform brings to the gateway. A profile holds the permission catalog
//! (types and actions, with titles and descriptions), the built-in roles (stable key and id,
//! policies, where they may be bound), which of them is the administrator role (the one "last
//! admin" protects) and which one a new member gets when an invitation names none, the
//! shorthand notations accepted on input, and aliases that let the platform's own permissions
//! mean the gateway's (SEMANTICS.md "Profiles").
//!
//! Five profiles ship in `profiles/*.toml` ([`SHIPPED`]); a deployment names one of them or
//! the path of its own file (`IAM_PROFILE`). Every profile carries the gateway's own types
//! ([`GATEWAY_TYPES`]), merged into what the file lists, because the API authorizes itself
//! with them. A profile is validated as a whole when it loads; an error names the file, the
//! part and what would be accepted.

use std::collections::HashSet;

use figment::providers::{Format, Toml};
use serde::Deserialize;
use uuid::Uuid;

use super::catalog::{Alias, Catalog, Notations, TypeSpec, title_of, toml_error};
use super::permission::{Effect, Scope};
use super::role::{CompiledRole, Policy};

/// The shipped profiles, `(name, file)`; the first is the default.
pub const SHIPPED: [(&str, &str); 5] = [
    (
        "mechamental",
        include_str!("../../profiles/mechamental.toml"),
    ),
    ("mar", include_str!("../../profiles/mar.toml")),
    ("mentiko", include_str!("../../profiles/mentiko.toml")),
    ("inkeep", include_str!("../../profiles/inkeep.toml")),
    ("m3forge", include_str!("../../profiles/m3forge.toml")),
];

/// One of the gateway's own types.
#[derive(Debug, Clone, Copy)]
pub struct GatewayType {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// `(action, description)` in order.
    pub actions: &'static [(&'static str, &'static str)],
}

/// The gateway's own types, as SEMANTICS.md lists them: every profile has them, since the API
/// authorizes itself with them.
pub const GATEWAY_TYPES: [GatewayType; 8] = [
    GatewayType {
        name: "workspace",
        title: "Workspaces and projects",
        description: "The organization's tree: its workspaces and their projects",
        actions: &[
            ("read", "See workspaces and projects"),
            ("write", "Create, rename and delete projects"),
            ("manage", "Create, rename and delete workspaces"),
        ],
    },
    GatewayType {
        name: "members",
        title: "Members",
        description: "The people of the organization",
        actions: &[
            ("read", "See members, their roles and statuses"),
            ("invite", "Invite people and grant them roles"),
            ("remove", "Remove members"),
            ("manage", "Suspend, reactivate, unlock and sign out members"),
            ("impersonate", "Act as a member for a bounded time"),
        ],
    },
    GatewayType {
        name: "roles",
        title: "Roles",
        description: "Built-in and custom roles, and who holds them",
        actions: &[
            ("read", "See roles and role bindings"),
            (
                "write",
                "Create, change and delete roles; grant and revoke them",
            ),
        ],
    },
    GatewayType {
        name: "audit",
        title: "Audit trail",
        description: "The organization's record of changes",
        actions: &[
            ("read", "Read the audit trail"),
            ("export", "Export the audit trail"),
            ("write", "Record an application's own events in the trail"),
        ],
    },
    GatewayType {
        name: "sso",
        title: "Single sign-on",
        description: "Identity providers, verified domains and group mappings",
        actions: &[
            ("read", "See SSO settings"),
            (
                "manage",
                "Configure identity providers, domains and mappings",
            ),
        ],
    },
    GatewayType {
        name: "service_accounts",
        title: "Service accounts",
        description: "Principals for machines",
        actions: &[
            ("read", "See service accounts"),
            ("manage", "Create, disable and delete service accounts"),
        ],
    },
    GatewayType {
        name: "api_keys",
        title: "API keys",
        description: "Keys that act as a user or a service account, narrowed by scopes",
        actions: &[
            ("read", "See API keys (never their secrets)"),
            ("manage", "Create and revoke API keys"),
        ],
    },
    GatewayType {
        name: "teams",
        title: "Teams",
        description: "Named sets of members and service accounts that hold roles together",
        actions: &[
            ("read", "See teams and their members"),
            (
                "manage",
                "Create, change and delete teams and their members",
            ),
        ],
    },
];

/// Where a role may be bound.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Organization,
    Workspace,
    Project,
}

impl NodeKind {
    pub const ALL: [NodeKind; 3] = [
        NodeKind::Organization,
        NodeKind::Workspace,
        NodeKind::Project,
    ];

    /// Every kind, in tree order.
    pub fn all() -> Vec<NodeKind> {
        NodeKind::ALL.to_vec()
    }

    /// `organization`, `workspace` or `project`, as written in a profile and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Organization => "organization",
            NodeKind::Workspace => "workspace",
            NodeKind::Project => "project",
        }
    }

    pub fn parse(s: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The stored form of a set of kinds: `None` for everywhere, else the names joined by
    /// `,` in tree order.
    pub fn store_set(kinds: &[NodeKind]) -> Option<String> {
        let mut sorted: Vec<NodeKind> = kinds.to_vec();
        sorted.sort();
        sorted.dedup();
        if sorted.is_empty() || sorted.len() == NodeKind::ALL.len() {
            return None;
        }
        Some(
            sorted
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// The inverse of [`NodeKind::store_set`]; unknown names are skipped.
    pub fn load_set(stored: Option<&str>) -> Vec<NodeKind> {
        match stored {
            None => NodeKind::ALL.to_vec(),
            Some(s) => s.split(',').filter_map(NodeKind::parse).collect(),
        }
    }
}

/// A built-in role of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinRole {
    /// Stable id: the file's, or derived from the profile's name and the key.
    pub id: Uuid,
    /// Stable key, e.g. `admin`, `chain-builder`.
    pub key: String,
    pub name: String,
    pub description: String,
    /// Canonical `resource:scope:action`, allows first then denies, as the file lists them.
    pub policies: Vec<Policy>,
    /// Where the role may be bound; every kind when the file does not say.
    pub bindable_at: Vec<NodeKind>,
}

/// A platform's catalog and built-in roles.
#[derive(Debug, Clone)]
pub struct Profile {
    /// `mechamental`, `mar`…; what the database records.
    pub name: String,
    pub title: String,
    pub description: String,
    pub catalog: Catalog,
    /// In the order the file lists them.
    pub roles: Vec<BuiltinRole>,
    /// Index into `roles` of the administrator role.
    admin: usize,
    /// Index into `roles` of the role given when an invitation names none.
    default: usize,
}

/// Why a profile cannot be loaded: the file, the part and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile {origin}: {part}{message}")]
pub struct ProfileError {
    /// `mar` for a shipped profile, the path for a file.
    pub origin: String,
    /// e.g. "role `operator`, allow policy 2: "; empty for the file as a whole.
    pub part: String,
    pub message: String,
}

/// Derived ids of built-in roles live under this namespace (a v5 UUID of
/// `{profile}/{key}`), so that one profile's roles have the same ids in every deployment.
const ROLE_ID_NAMESPACE: Uuid = uuid::uuid!("2b0f4f6e-5b7c-4c1e-9a43-6f1d3c1e7a10");

impl Profile {
    /// The default profile (`mechamental`): the catalog and built-in roles of SEMANTICS.md.
    #[expect(
        clippy::expect_used,
        reason = "the shipped file is checked by `shipped_profiles_load`; it cannot fail at run time"
    )]
    pub fn mechamental() -> Profile {
        Profile::shipped("mechamental")
            .expect("the shipped mechamental profile loads")
            .expect("the shipped mechamental profile is valid")
    }

    /// A shipped profile by name; `None` for a name that is not shipped.
    pub fn shipped(name: &str) -> Option<Result<Profile, ProfileError>> {
        SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Profile::from_toml_str(n, text))
    }

    /// The profile `name_or_path` names: a shipped profile, or a TOML file.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some(shipped) = Profile::shipped(name_or_path) {
            return shipped;
        }
        let looks_like_a_path = name_or_path.contains(['/', '.']);
        let text = std::fs::read_to_string(name_or_path).map_err(|e| ProfileError {
            origin: format!("`{name_or_path}`"),
            part: String::new(),
            message: if looks_like_a_path {
                format!("cannot read the file: {e}")
            } else {
                format!(
                    "is neither a shipped profile ({}) nor a readable file: {e}",
                    SHIPPED.map(|(n, _)| n).join(", ")
                )
            },
        })?;
        Profile::from_toml_str(&format!("`{name_or_path}`"), &text)
    }

    /// The default profile with another catalog (the deprecated `IAM_PERMISSION_CATALOG`): the
    /// gateway's types are merged in, and policies of the built-in roles that name what the
    /// catalog lacks are left out (they only allowed).
    pub fn mechamental_with_catalog(catalog_types: Vec<TypeSpec>) -> Result<Profile, ProfileError> {
        let fail = |message: String| ProfileError {
            origin: "mechamental (with IAM_PERMISSION_CATALOG)".to_owned(),
            part: String::new(),
            message,
        };
        let base = Profile::mechamental();
        let catalog = Catalog::from_specs(with_gateway_types(catalog_types))
            .map_err(|e| fail(e.to_string()))?;
        let roles = base
            .roles
            .iter()
            .map(|r| BuiltinRole {
                policies: r
                    .policies
                    .iter()
                    .filter(|p| catalog.parse_permission(&p.permission).is_ok())
                    .cloned()
                    .collect(),
                ..r.clone()
            })
            .collect();
        Ok(Profile {
            catalog,
            roles,
            ..base
        })
    }

    /// Parses and validates a profile; `origin` names it in errors.
    pub fn from_toml_str(origin: &str, text: &str) -> Result<Profile, ProfileError> {
        let at = |part: String, message: String| ProfileError {
            origin: origin.to_owned(),
            part,
            message,
        };
        let file: ProfileFile =
            Toml::from_str(text).map_err(|e| at(String::new(), toml_error(text, &e)))?;
        if !super::catalog::is_valid_name(&file.name) {
            return Err(at(
                "`name`: ".to_owned(),
                format!(
                    "`{}` is not a name of 1 to 64 lowercase letters, digits, `-` or `_`",
                    file.name
                ),
            ));
        }
        let mut specs = Vec::with_capacity(file.types.len());
        for t in file.types {
            let actions = t
                .actions
                .into_iter()
                .map(|a| match a {
                    ActionFile::Name(name) => (name, String::new()),
                    ActionFile::Described { name, description } => (name, description),
                })
                .collect();
            specs.push(TypeSpec {
                title: t.title.unwrap_or_else(|| title_of(&t.name)),
                description: t.description.unwrap_or_default(),
                name: t.name,
                actions,
            });
        }
        let bare = Catalog::from_specs(with_gateway_types(specs))
            .map_err(|e| at("`types`: ".to_owned(), e.to_string()))?;
        let notations =
            notations(&file.notations).map_err(|m| at("`notations`: ".to_owned(), m))?;
        // Aliases are read with the notations, and resolve against the bare catalog (an alias
        // is not itself expanded).
        let reader = bare.clone().with_extras(Vec::new(), notations);
        let mut aliases = Vec::new();
        for (from, to) in &file.aliases {
            let part = format!("alias `{from}`: ");
            let from_ix = concrete(&reader, from).map_err(|m| at(part.clone(), m))?;
            if GATEWAY_TYPES
                .iter()
                .any(|g| g.name == reader.type_name(from_ix.0))
            {
                return Err(at(
                    part,
                    "an alias names a platform permission, not one of the gateway's own types"
                        .to_owned(),
                ));
            }
            let mut targets = Vec::new();
            for target in to {
                let ix = concrete(&reader, target).map_err(|m| at(part.clone(), m))?;
                if !GATEWAY_TYPES
                    .iter()
                    .any(|g| g.name == reader.type_name(ix.0))
                {
                    return Err(at(
                        part,
                        format!(
                            "`{target}` is not a permission of the gateway's own types (workspace, members, roles, audit, sso, service_accounts, api_keys, teams)"
                        ),
                    ));
                }
                targets.push(ix);
            }
            aliases.push(Alias {
                from: from_ix,
                to: targets,
            });
        }
        let catalog = bare.with_extras(aliases, notations);

        if file.roles.is_empty() {
            return Err(at(
                "`roles`: ".to_owned(),
                "a profile lists at least one built-in role ([[roles]] with key, name, allow)"
                    .to_owned(),
            ));
        }
        let mut roles: Vec<BuiltinRole> = Vec::with_capacity(file.roles.len());
        let mut ids = HashSet::new();
        for r in file.roles {
            let part = format!("role `{}`: ", r.key);
            if !super::catalog::is_valid_name(&r.key) {
                return Err(at(
                    part,
                    "the key is not a name of 1 to 64 lowercase letters, digits, `-` or `_`"
                        .to_owned(),
                ));
            }
            if roles.iter().any(|b| b.key == r.key) {
                return Err(at(part, "the key is listed twice".to_owned()));
            }
            let name = r.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(at(part, "`name` must have 1 to 100 characters".to_owned()));
            }
            if roles.iter().any(|b| b.name.eq_ignore_ascii_case(name)) {
                return Err(at(part, format!("another role is already named `{name}`")));
            }
            let id = match r.id.as_deref() {
                None => Uuid::new_v5(
                    &ROLE_ID_NAMESPACE,
                    format!("{}/{}", file.name, r.key).as_bytes(),
                ),
                Some(text) => Uuid::try_parse(text)
                    .map_err(|_| at(part.clone(), format!("`id` `{text}` is not a UUID")))?,
            };
            if !ids.insert(id) {
                return Err(at(part, format!("`id` {id} is used by another role")));
            }
            let mut bindable_at = Vec::new();
            for kind in r.bindable_at.iter().flatten() {
                match NodeKind::parse(kind) {
                    Some(k) if !bindable_at.contains(&k) => bindable_at.push(k),
                    Some(_) => {}
                    None => {
                        return Err(at(
                            part,
                            format!(
                                "`bindable_at` names `{kind}`; use organization, workspace or project"
                            ),
                        ));
                    }
                }
            }
            if r.bindable_at.is_some() && bindable_at.is_empty() {
                return Err(at(
                    part,
                    "`bindable_at` is empty; leave it out to allow every kind of node".to_owned(),
                ));
            }
            if bindable_at.is_empty() {
                bindable_at = NodeKind::ALL.to_vec();
            }
            bindable_at.sort();
            let mut policies = Vec::new();
            for (effect, list) in [(Effect::Allow, &r.allow), (Effect::Deny, &r.deny)] {
                for (i, text) in list.iter().enumerate() {
                    let permission = catalog.parse_permission(text).map_err(|e| {
                        at(
                            format!("role `{}`, {} policy {}: ", r.key, effect.as_str(), i + 1),
                            e.message,
                        )
                    })?;
                    if let Scope::Target(_) = permission.scope {
                        return Err(at(
                            format!("role `{}`, {} policy {}: ", r.key, effect.as_str(), i + 1),
                            "a built-in role holds in every organization; its scopes are `*`"
                                .to_owned(),
                        ));
                    }
                    policies.push(Policy {
                        effect,
                        permission: catalog.format_permission(&permission),
                    });
                }
            }
            roles.push(BuiltinRole {
                id,
                key: r.key,
                name: name.to_owned(),
                description: r.description.trim().to_owned(),
                policies,
                bindable_at,
            });
        }
        let find = |field: &str, key: &str| {
            roles.iter().position(|r| r.key == key).ok_or_else(|| {
                at(
                    format!("`{field}`: "),
                    format!(
                        "`{key}` is not one of the profile's roles ({})",
                        roles
                            .iter()
                            .map(|r| r.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        };
        let admin = find("admin_role", &file.admin_role)?;
        let default = find("default_role", &file.default_role)?;
        if !roles[admin].bindable_at.contains(&NodeKind::Organization) {
            return Err(at(
                "`admin_role`: ".to_owned(),
                format!(
                    "`{}` cannot be bound at the organization, where the last admin is kept",
                    file.admin_role
                ),
            ));
        }
        if !roles[default].bindable_at.contains(&NodeKind::Organization) {
            return Err(at(
                "`default_role`: ".to_owned(),
                format!(
                    "`{}` cannot be bound at the organization, where a new member receives it",
                    file.default_role
                ),
            ));
        }
        let profile = Profile {
            name: file.name,
            title: file.title.unwrap_or_default(),
            description: file.description.unwrap_or_default(),
            catalog,
            roles,
            admin,
            default,
        };
        // The administrator role must hold everything the API checks, or "last admin" would
        // keep someone who cannot run the organization.
        let admin_role = profile.admin_role();
        let compiled = CompiledRole::compile(
            &profile.catalog,
            admin_role.id,
            &admin_role.name,
            &admin_role.policies,
        )
        .map_err(|(i, e)| {
            at(
                format!("role `{}`, policy {}: ", admin_role.key, i + 1),
                e.message,
            )
        })?;
        if compiled.policies.iter().any(|p| p.effect == Effect::Deny) {
            return Err(at(
                format!("role `{}`: ", admin_role.key),
                "the administrator role may not deny anything".to_owned(),
            ));
        }
        for (t, a) in profile.catalog.pairs() {
            let held = compiled.policies.iter().any(|p| {
                p.permission.resource.is_none_or(|r| r == t)
                    && p.permission.action.is_none_or(|x| x == a)
            });
            if !held {
                return Err(at(
                    format!("role `{}`: ", admin_role.key),
                    format!(
                        "the administrator role must allow everything; it lacks `{}:*:{}`",
                        profile.catalog.type_name(t),
                        profile.catalog.action_name(a)
                    ),
                ));
            }
        }
        Ok(profile)
    }

    /// The administrator role: the one "last admin" protects.
    pub fn admin_role(&self) -> &BuiltinRole {
        &self.roles[self.admin]
    }

    /// The role a new member receives when an invitation names none.
    pub fn default_role(&self) -> &BuiltinRole {
        &self.roles[self.default]
    }

    /// The built-in role with `key`.
    pub fn role(&self, key: &str) -> Option<&BuiltinRole> {
        self.roles.iter().find(|r| r.key == key)
    }

    /// The built-in role with `id`.
    pub fn role_by_id(&self, id: Uuid) -> Option<&BuiltinRole> {
        self.roles.iter().find(|r| r.id == id)
    }
}

/// `specs` with the gateway's types merged in: a type the profile lists gains the gateway's
/// actions it lacks (after its own); the others are added at the end.
fn with_gateway_types(mut specs: Vec<TypeSpec>) -> Vec<TypeSpec> {
    for GatewayType {
        name,
        title,
        description,
        actions,
    } in GATEWAY_TYPES
    {
        match specs.iter_mut().find(|s| s.name == name) {
            Some(spec) => {
                for (action, text) in actions {
                    if !spec.actions.iter().any(|(a, _)| a == action) {
                        spec.actions
                            .push(((*action).to_owned(), (*text).to_owned()));
                    }
                }
            }
            None => specs.push(TypeSpec {
                name: name.to_owned(),
                title: title.to_owned(),
                description: description.to_owned(),
                actions: actions
                    .iter()
                    .map(|(a, d)| ((*a).to_owned(), (*d).to_owned()))
                    .collect(),
            }),
        }
    }
    specs
}

fn notations(names: &[String]) -> Result<Notations, String> {
    let mut n = Notations::default();
    for name in names {
        match name.as_str() {
            "type:action" => n.colon = true,
            "type.action" => n.dot = true,
            other => {
                return Err(format!(
                    "`{other}` is not a notation; use `type:action` or `type.action`"
                ));
            }
        }
    }
    Ok(n)
}

/// A concrete `type:action` (any notation, scope `*`), as aliases name them.
fn concrete(catalog: &Catalog, text: &str) -> Result<(super::TypeIx, super::ActionIx), String> {
    let p = catalog.parse_permission(text).map_err(|e| e.message)?;
    match (p.resource, p.scope, p.action) {
        (Some(t), Scope::Any, Some(a)) => Ok((t, a)),
        _ => Err(format!(
            "`{text}` must name one type and one action, at scope `*`"
        )),
    }
}

/// A profile file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    title: Option<String>,
    description: Option<String>,
    #[serde(default)]
    notations: Vec<String>,
    admin_role: String,
    default_role: String,
    #[serde(default)]
    types: Vec<TypeFile>,
    #[serde(default)]
    roles: Vec<RoleFile>,
    /// Kept in the file's order (a `Vec` of pairs from an ordered table).
    #[serde(default, deserialize_with = "ordered_aliases")]
    aliases: Vec<(String, Vec<String>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeFile {
    name: String,
    title: Option<String>,
    description: Option<String>,
    actions: Vec<ActionFile>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ActionFile {
    Name(String),
    Described { name: String, description: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    key: String,
    id: Option<String>,
    name: String,
    #[serde(default)]
    description: String,
    bindable_at: Option<Vec<String>>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

fn ordered_aliases<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, Vec<String>)>, D::Error> {
    struct AliasVisitor;
    impl<'de> serde::de::Visitor<'de> for AliasVisitor {
        type Value = Vec<(String, Vec<String>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a table of platform permissions, each with a list of gateway permissions")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(
            self,
            mut map: M,
        ) -> Result<Self::Value, M::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry::<String, Vec<String>>()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    deserializer.deserialize_map(AliasVisitor)
}
