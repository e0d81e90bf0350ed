//! The shipped profiles: each loads, each built-in role allows exactly what its platform's
//! documentation says (aliases included), and the loader refuses a bad profile with a message
//! that names the part.

use std::collections::BTreeSet;

use super::*;

fn shipped(name: &str) -> Profile {
    Profile::shipped(name)
        .unwrap_or_else(|| panic!("`{name}` is not shipped"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every `type:action` of the catalog that a role with `policies` allows, decided by the
/// engine: the role is bound at the highest node of `bindable_at` (the organization, else a
/// workspace, else a project) and checked at a project under it.
fn allowed(catalog: &Catalog, policies: &[Policy], bindable_at: &[NodeKind]) -> BTreeSet<String> {
    let role = CompiledRole::compile(catalog, role_id(1), "under test", policies)
        .unwrap_or_else(|(i, e)| panic!("policy {}: {e}", i + 1));
    let roles: RoleSet = [role].into_iter().collect();
    let bound_at = match bindable_at.iter().min() {
        Some(NodeKind::Organization) | None => Node::Org,
        Some(NodeKind::Workspace) => Node::WsA,
        Some(NodeKind::Project) => Node::PA1,
    };
    let bindings = bindings(&[(1, bound_at, None)]);
    let facts = Facts {
        principal_active: true,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let path = Node::PA1.path();
    catalog
        .pairs()
        .into_iter()
        .filter(|&(resource_type, action)| {
            let check = Check {
                resource_type_name: catalog.type_name(resource_type),
                resource_type,
                action,
                path: &path,
                resource_id: Some(R1),
                now: now(),
            };
            decide(&facts, &check).allowed
        })
        .map(|(t, a)| format!("{}:{}", catalog.type_name(t), catalog.action_name(a)))
        .collect()
}

fn set(pairs: &[&str]) -> BTreeSet<String> {
    pairs.iter().map(|s| (*s).to_owned()).collect()
}

/// Every `type:action` of the profile's catalog.
fn everything(profile: &Profile) -> BTreeSet<String> {
    let c = &profile.catalog;
    c.pairs()
        .into_iter()
        .map(|(t, a)| format!("{}:{}", c.type_name(t), c.action_name(a)))
        .collect()
}

/// The profile's roles are exactly `expected` (key, where it may be bound, what it allows), in
/// that order; a failure lists what a role allows beyond its expected set and what it lacks.
fn assert_roles(profile: &Profile, expected: &[(&str, &[NodeKind], BTreeSet<String>)]) {
    let keys: Vec<&str> = profile.roles.iter().map(|r| r.key.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(k, ..)| *k).collect();
    assert_eq!(keys, want, "roles of {}", profile.name);
    for (key, bindable_at, want) in expected {
        let role = profile.role(key).unwrap();
        assert_eq!(
            role.bindable_at, *bindable_at,
            "{} {key}: bindable_at",
            profile.name
        );
        let got = allowed(&profile.catalog, &role.policies, &role.bindable_at);
        let extra: Vec<_> = got.difference(want).collect();
        let missing: Vec<_> = want.difference(&got).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{} {key}: allows beyond its list {extra:?}; lacks {missing:?}",
            profile.name
        );
    }
}

const EVERYWHERE: &[NodeKind] = &NodeKind::ALL;
const ORG: &[NodeKind] = &[NodeKind::Organization];
const PROJECT: &[NodeKind] = &[NodeKind::Project];

#[test]
fn shipped_profiles_load() {
    for (name, _) in SHIPPED {
        let profile = Profile::shipped(name)
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(profile.name, name);
        assert!(!profile.title.is_empty(), "{name}: title");
        assert!(!profile.description.is_empty(), "{name}: description");
        // Every type and action is described, and every role.
        for (t, _) in profile.catalog.pairs() {
            let (title, description, actions) = profile.catalog.describe(t);
            let type_name = profile.catalog.type_name(t);
            assert!(
                !title.is_empty() && !description.is_empty(),
                "{name} {type_name}"
            );
            assert!(actions.iter().all(|d| !d.is_empty()), "{name} {type_name}");
        }
        for role in &profile.roles {
            assert!(!role.description.is_empty(), "{name} {}", role.key);
        }
    }
    assert!(Profile::shipped("nonesuch").is_none());
}

#[test]
fn mechamental_roles() {
    let p = shipped("mechamental");
    assert_eq!(
        (p.admin_role().key.as_str(), p.default_role().key.as_str()),
        ("admin", "viewer")
    );
    assert_roles(
        &p,
        &[
            ("admin", EVERYWHERE, everything(&p)),
            (
                "developer",
                EVERYWHERE,
                set(&[
                    "apps:read",
                    "apps:write",
                    "augmentations:read",
                    "augmentations:write",
                    "tools:read",
                    "tools:write",
                    "sources:read",
                    "sources:write",
                    "endpoints:read",
                    "endpoints:write",
                    "secrets:reference",
                    "workspace:read",
                    "models:read",
                    "members:read",
                    "roles:read",
                ]),
            ),
            (
                "operator",
                EVERYWHERE,
                set(&[
                    "endpoints:trigger",
                    "apps:read",
                    "endpoints:read",
                    "models:read",
                    "augmentations:read",
                    "augmentations:execute",
                    "workspace:read",
                    "analytics:view",
                    "audit:read",
                ]),
            ),
            (
                "viewer",
                EVERYWHERE,
                set(&[
                    "apps:read",
                    "endpoints:read",
                    "models:read",
                    "tools:read",
                    "sources:read",
                    "workspace:read",
                    "analytics:view",
                ]),
            ),
        ],
    );
}

#[test]
fn mar_roles() {
    let p = shipped("mar");
    assert_eq!(
        (p.admin_role().key.as_str(), p.default_role().key.as_str()),
        ("platform-admin", "viewer")
    );
    let reads = [
        "clusters:read",
        "instances:read",
        "config-profiles:read",
        "monitoring:read",
        "alerts:read",
        "webhooks:read",
        "workspace:read",
    ];
    let with_reads = |more: &[&str]| &set(&reads) | &set(more);
    assert_roles(
        &p,
        &[
            ("platform-admin", ORG, everything(&p)),
            (
                "operator",
                PROJECT,
                with_reads(&[
                    "clusters:create",
                    "clusters:update",
                    "clusters:delete",
                    "instances:create",
                    "instances:update",
                    "instances:delete",
                    "instances:start",
                    "instances:stop",
                    "instances:restart",
                    "config-profiles:create",
                    "config-profiles:update",
                    "config-profiles:delete",
                ]),
            ),
            (
                "developer",
                PROJECT,
                with_reads(&[
                    "instances:create",
                    "instances:update",
                    "instances:start",
                    "instances:stop",
                    "instances:restart",
                ]),
            ),
            ("viewer", EVERYWHERE, set(&reads)),
        ],
    );
}

#[test]
fn mar_access_aliases() {
    let p = shipped("mar");
    let allows = |permission: &str| allowed(&p.catalog, &[Policy::allow(permission)], ORG);
    assert_eq!(
        allows("access:*:manage"),
        set(&[
            "access:manage",
            "members:invite",
            "members:remove",
            "members:manage",
            "roles:write",
            "teams:manage",
            "service_accounts:manage",
            "api_keys:manage",
        ])
    );
    // The shorthand reads the same.
    assert_eq!(
        allows("access:read"),
        set(&[
            "access:read",
            "members:read",
            "roles:read",
            "teams:read",
            "service_accounts:read",
            "api_keys:read",
            "sso:read",
            "workspace:read",
        ])
    );
    // An alias carries the policy's effect: denying `access:manage` denies inviting.
    let denied = allowed(
        &p.catalog,
        &[Policy::allow("*:*:*"), Policy::deny("access:*:manage")],
        ORG,
    );
    assert!(!denied.contains("members:invite"));
    assert!(!denied.contains("roles:write"));
    assert!(denied.contains("members:read"));
    assert!(
        denied.contains("members:impersonate"),
        "not an alias target"
    );
}

#[test]
fn mentiko_roles() {
    let p = shipped("mentiko");
    assert_eq!(
        (p.admin_role().key.as_str(), p.default_role().key.as_str()),
        ("admin", "viewer")
    );
    // The audit logs: Mentiko's `view` and the gateway's `read`; the tree.
    let base = ["audit:view", "audit:read", "workspace:read"];
    let with_base = |more: &[&str]| &set(&base) | &set(more);
    assert_roles(
        &p,
        &[
            ("admin", EVERYWHERE, everything(&p)),
            (
                "chain-builder",
                EVERYWHERE,
                with_base(&[
                    "chains:create",
                    "chains:edit",
                    "chains:run",
                    "chains:view",
                    "results:view",
                    "decisions:approve",
                    "secrets:reference",
                    "schedules:configure",
                    "data:export",
                ]),
            ),
            (
                "operator",
                EVERYWHERE,
                with_base(&[
                    "chains:run",
                    "chains:view",
                    "results:view",
                    "decisions:approve",
                    "data:export",
                ]),
            ),
            ("viewer", EVERYWHERE, with_base(&["results:view"])),
        ],
    );
}

#[test]
fn mentiko_only_admin_deletes_chains_and_manages_secrets_users_org_and_billing() {
    let p = shipped("mentiko");
    for role in p.roles.iter().filter(|r| r.key != "admin") {
        let got = allowed(&p.catalog, &role.policies, &role.bindable_at);
        for pair in [
            "chains:delete",
            "secrets:view",
            "secrets:manage",
            "users:manage",
            "org:manage",
            "org:billing",
            "members:invite",
            "roles:write",
            "workspace:manage",
        ] {
            assert!(!got.contains(pair), "{} {pair}", role.key);
        }
    }
}

#[test]
fn mentiko_aliases() {
    let p = shipped("mentiko");
    let allows = |permission: &str| allowed(&p.catalog, &[Policy::allow(permission)], ORG);
    assert_eq!(
        allows("users:manage"),
        set(&[
            "users:manage",
            "members:read",
            "members:invite",
            "members:remove",
            "members:manage",
            "roles:read",
            "roles:write",
            "teams:read",
            "teams:manage",
        ])
    );
    assert_eq!(
        allows("org:*:manage"),
        set(&[
            "org:manage",
            "workspace:read",
            "workspace:write",
            "workspace:manage",
            "sso:read",
            "sso:manage",
            "service_accounts:read",
            "service_accounts:manage",
            "api_keys:read",
            "api_keys:manage",
        ])
    );
    assert_eq!(allows("org:billing"), set(&["org:billing"]));
    // `audit` is a gateway type with Mentiko's `view` first.
    let audit = p.catalog.type_ix("audit").unwrap();
    let actions: Vec<&str> = p
        .catalog
        .type_actions(audit)
        .iter()
        .map(|a| p.catalog.action_name(*a))
        .collect();
    assert_eq!(actions, ["view", "read", "export", "write"]);
}

#[test]
fn inkeep_roles() {
    let p = shipped("inkeep");
    assert_eq!(
        (p.admin_role().key.as_str(), p.default_role().key.as_str()),
        ("admin", "member")
    );
    let views = [
        "agents:view",
        "tools:view",
        "mcp-servers:view",
        "credentials:view",
        "evaluations:view",
        "settings:view",
        // To find the project in the tree (see profiles/inkeep.toml).
        "workspace:read",
    ];
    let uses = [
        "agents:use",
        "tools:use",
        "mcp-servers:use",
        "api-keys:create",
        "traces:view",
    ];
    let edits = [
        "agents:edit",
        "tools:edit",
        "mcp-servers:edit",
        "credentials:edit",
        "evaluations:edit",
        "settings:edit",
    ];
    assert_roles(
        &p,
        &[
            ("admin", ORG, everything(&p)),
            ("member", ORG, set(&[])),
            ("project-viewer", PROJECT, set(&views)),
            ("project-member", PROJECT, &set(&views) | &set(&uses)),
            (
                "project-admin",
                PROJECT,
                &(&set(&views) | &set(&uses)) | &set(&edits),
            ),
        ],
    );
    assert!(p.catalog.aliases().is_empty());
}

#[test]
fn inkeep_project_roles_hold_only_at_their_project() {
    let p = shipped("inkeep");
    let role = p.role("project-admin").unwrap();
    let roles: RoleSet =
        [CompiledRole::compile(&p.catalog, role_id(1), "pa", &role.policies).unwrap()]
            .into_iter()
            .collect();
    let bindings = bindings(&[(1, Node::PA1, None)]);
    let facts = Facts {
        principal_active: true,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    for (node, want) in [(Node::PA1, true), (Node::PA2, false), (Node::WsA, false)] {
        let path = node.path();
        let decision = decide(&facts, &check(&p.catalog, "agents:edit", &path, None));
        assert_eq!(decision.allowed, want, "{node:?}");
    }
}

#[test]
fn m3forge_roles() {
    let p = shipped("m3forge");
    assert_eq!(
        (p.admin_role().key.as_str(), p.default_role().key.as_str()),
        ("administrator", "member")
    );
    let all_of = |types: &[&str]| -> BTreeSet<String> {
        everything(&p)
            .into_iter()
            .filter(|pair| types.contains(&pair.split_once(':').unwrap().0))
            .collect()
    };
    assert_roles(
        &p,
        &[
            ("administrator", EVERYWHERE, everything(&p)),
            (
                "editor",
                EVERYWHERE,
                &all_of(&[
                    "workflows",
                    "dags",
                    "query-plans",
                    "credentials",
                    "api-keys",
                ]) | &set(&[
                    "rag-indexes:view",
                    "rag-indexes:create",
                    "rag-indexes:update",
                    "gateways:view",
                    "deployments:view",
                    "events:view",
                    "annotator-configs:view",
                    // `roles.view` comes with the gateway's `roles.read`
                    "roles:view",
                    "roles:read",
                    "workspace:read",
                ]),
            ),
            (
                "member",
                EVERYWHERE,
                set(&[
                    "workflows:view",
                    "dags:view",
                    "query-plans:view",
                    "jobs:read",
                    "credentials:list",
                    "api-keys:view",
                    "rag-indexes:view",
                    "storage:view",
                    "annotator-configs:view",
                    "deployments:view",
                    "gateways:view",
                    "events:view",
                    "roles:view",
                    "roles:read",
                    "users:view",
                    // through the alias of `users.view`
                    "members:read",
                    "prompts:view",
                    "agents:view",
                    "knowledge:view",
                    "monitoring:view",
                    "workspace:read",
                ]),
            ),
            (
                "workflow-editor",
                EVERYWHERE,
                &all_of(&["workflows", "dags", "query-plans", "jobs"])
                    | &set(&["gateways:view", "gateways:test", "workspace:read"]),
            ),
            (
                "deployment-editor",
                EVERYWHERE,
                &all_of(&["deployments", "gateways"])
                    | &set(&[
                        "workflows:view",
                        "jobs:read",
                        "roles:view",
                        "roles:read",
                        "workspace:read",
                    ]),
            ),
            (
                "document-editor",
                EVERYWHERE,
                &all_of(&["rag-indexes", "annotator-configs", "storage"])
                    | &set(&[
                        "workflows:view",
                        "roles:view",
                        "roles:read",
                        "workspace:read",
                    ]),
            ),
        ],
    );
    // The editor's sets above are not vacuous.
    assert_eq!(all_of(&["workflows"]).len(), 5);
}

#[test]
fn m3forge_user_aliases() {
    let p = shipped("m3forge");
    let allows = |permission: &str| allowed(&p.catalog, &[Policy::allow(permission)], ORG);
    assert_eq!(allows("users.view"), set(&["users:view", "members:read"]));
    assert_eq!(
        allows("users.invite"),
        set(&["users:invite", "members:invite"])
    );
    assert_eq!(
        allows("users.remove"),
        set(&["users:remove", "members:remove"])
    );
    assert_eq!(
        allows("users.roles"),
        set(&["users:roles", "roles:read", "roles:write"])
    );
    assert_eq!(
        allows("users.impersonate"),
        set(&["users:impersonate", "members:impersonate"])
    );
    // `roles.view` is not an alias: it is the gateway's type.
    assert_eq!(allows("roles.view"), set(&["roles:view"]));
}

// The loader's refusals.

/// A small valid profile that the refusals below change in one place.
const BASE: &str = r#"
name = "test"
notations = ["type:action"]
admin_role = "admin"
default_role = "viewer"

[[types]]
name = "apps"
actions = ["read", "write"]

[[roles]]
key = "admin"
name = "Admin"
allow = ["*:*:*"]

[[roles]]
key = "viewer"
name = "Viewer"
allow = ["apps:read"]
"#;

/// `BASE` with `from` (which it must contain) replaced by `to`.
fn variant(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no `{from}`");
    BASE.replacen(from, to, 1)
}

/// Why `text` does not load, as `(part, message)`.
fn refusal(text: &str) -> (String, String) {
    let e = Profile::from_toml_str("test", text).unwrap_err();
    assert_eq!(e.origin, "test");
    assert_eq!(
        e.to_string(),
        format!("profile test: {}{}", e.part, e.message)
    );
    (e.part, e.message)
}

#[test]
fn base_loads() {
    let p = Profile::from_toml_str("test", BASE).unwrap();
    assert_eq!(
        p.role("viewer").unwrap().policies,
        [Policy::allow("apps:*:read")]
    );
}

#[test]
fn refuses_an_admin_role_that_lacks_something() {
    // The gateway's types count: `apps:*` is not everything.
    let (part, message) = refusal(&variant(r#"allow = ["*:*:*"]"#, r#"allow = ["apps:*"]"#));
    assert_eq!(part, "role `admin`: ");
    assert_eq!(
        message,
        "the administrator role must allow everything; it lacks `workspace:*:read`"
    );
    let (part, message) = refusal(&variant(
        r#"allow = ["*:*:*"]"#,
        r#"allow = ["*:*:*"]
deny = ["apps:write"]"#,
    ));
    assert_eq!(part, "role `admin`: ");
    assert_eq!(message, "the administrator role may not deny anything");
}

#[test]
fn refuses_an_unknown_default_role() {
    let (part, message) = refusal(&variant(
        r#"default_role = "viewer""#,
        r#"default_role = "guest""#,
    ));
    assert_eq!(part, "`default_role`: ");
    assert_eq!(
        message,
        "`guest` is not one of the profile's roles (admin, viewer)"
    );
}

#[test]
fn refuses_an_alias_to_a_platform_type_or_from_a_gateway_type() {
    let (part, message) = refusal(&format!(
        "{BASE}\n[aliases]\n\"apps:write\" = [\"apps:read\"]\n"
    ));
    assert_eq!(part, "alias `apps:write`: ");
    assert!(
        message.starts_with("`apps:read` is not a permission of the gateway's own types"),
        "{message}"
    );
    let (part, message) = refusal(&format!(
        "{BASE}\n[aliases]\n\"members:read\" = [\"roles:read\"]\n"
    ));
    assert_eq!(part, "alias `members:read`: ");
    assert_eq!(
        message,
        "an alias names a platform permission, not one of the gateway's own types"
    );
}

#[test]
fn refuses_an_unknown_notation() {
    let (part, message) = refusal(&variant(
        r#"notations = ["type:action"]"#,
        r#"notations = ["type/action"]"#,
    ));
    assert_eq!(part, "`notations`: ");
    assert_eq!(
        message,
        "`type/action` is not a notation; use `type:action` or `type.action`"
    );
}

#[test]
fn refuses_a_duplicate_role_key() {
    let (part, message) = refusal(&format!(
        "{BASE}\n[[roles]]\nkey = \"viewer\"\nname = \"Reader\"\nallow = [\"apps:read\"]\n"
    ));
    assert_eq!(part, "role `viewer`: ");
    assert_eq!(message, "the key is listed twice");
}

#[test]
fn refuses_a_scoped_policy_in_a_built_in_role() {
    let (part, message) = refusal(&variant(
        r#"allow = ["apps:read"]"#,
        r#"allow = ["apps:read", "apps:00000000-0000-4000-8000-000000000001:write"]"#,
    ));
    assert_eq!(part, "role `viewer`, allow policy 2: ");
    assert_eq!(
        message,
        "a built-in role holds in every organization; its scopes are `*`"
    );
}

#[test]
fn refuses_an_unknown_field() {
    let text = variant(r#"allow = ["apps:read"]"#, r#"alow = ["apps:read"]"#);
    let line = text.lines().position(|l| l.starts_with("alow")).unwrap() + 1;
    let (part, message) = refusal(&text);
    assert_eq!(part, "");
    assert!(message.contains("unknown field `alow`"), "{message}");
    assert!(message.ends_with(&format!("(line {line})")), "{message}");

    let (part, message) = refusal(&variant("notations =", "notation ="));
    assert_eq!(part, "");
    assert!(message.contains("unknown field `notation`"), "{message}");
}

/// A profile of one type, `workflows`, with `notations` and a viewer allowed `allow`.
fn workflows_profile(notations: &str, allow: &str) -> Result<Profile, ProfileError> {
    Profile::from_toml_str(
        "workflows",
        &format!(
            r#"
name = "workflows"
notations = {notations}
admin_role = "admin"
default_role = "viewer"

[[types]]
name = "workflows"
actions = ["view", "edit"]

[[roles]]
key = "admin"
name = "Admin"
allow = ["*:*:*"]

[[roles]]
key = "viewer"
name = "Viewer"
allow = ["{allow}"]
"#
        ),
    )
}

#[test]
fn the_dot_notation() {
    let p = workflows_profile(r#"["type.action"]"#, "workflows.view").unwrap();
    // Stored in the canonical form.
    assert_eq!(
        p.role("viewer").unwrap().policies,
        [Policy::allow("workflows:*:view")]
    );
    let parsed = p.catalog.parse_permission("workflows.view").unwrap();
    assert_eq!(
        parsed,
        Permission {
            resource: p.catalog.type_ix("workflows"),
            scope: Scope::Any,
            action: p.catalog.action_ix("view"),
        }
    );
    assert_eq!(p.catalog.format_permission(&parsed), "workflows:*:view");
    assert_eq!(
        p.catalog.parse_permission("workflows:*:view").unwrap(),
        parsed
    );
    // Only the notations the profile names: not `type:action` here.
    let e = p.catalog.parse_permission("workflows:view").unwrap_err();
    assert_eq!(e.part, PermissionPart::Whole);

    // Without the notation, `workflows.view` is refused where the profile names it, and on
    // input.
    let e = workflows_profile("[]", "workflows.view").unwrap_err();
    assert_eq!(e.part, "role `viewer`, allow policy 1: ");
    assert_eq!(
        e.message,
        "permission `workflows.view`: expected `resource:scope:action`, three parts separated by `:`, found 1"
    );
    let p = workflows_profile("[]", "workflows:*:view").unwrap();
    let e = p.catalog.parse_permission("workflows.view").unwrap_err();
    assert_eq!(e.part, PermissionPart::Whole);
}

#[test]
fn the_shipped_notations() {
    let read = |name: &str, text: &str| shipped(name).catalog.parse_permission(text).is_ok();
    assert!(read("m3forge", "workflows.view") && !read("m3forge", "workflows:view"));
    assert!(read("mar", "clusters:read") && !read("mar", "clusters.read"));
    assert!(read("mentiko", "chains:run") && read("inkeep", "agents:use"));
    assert!(!read("mechamental", "apps:read") && !read("mechamental", "apps.read"));
    // The roles are stored in the canonical form whatever the file's notation.
    let member = shipped("m3forge");
    let member = member.role("member").unwrap();
    assert_eq!(member.policies[0], Policy::allow("workflows:*:view"));
}
