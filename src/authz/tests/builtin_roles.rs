//! The built-in roles hold exactly what SEMANTICS.md lists, no more.

use std::collections::BTreeSet;

use super::*;

/// What each built-in role allows, as `type:action`, straight from SEMANTICS.md.
fn granted(key: &str) -> BTreeSet<String> {
    let list: &[&str] = match key {
        "developer" => &[
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
        ],
        "operator" => &[
            "endpoints:trigger",
            "apps:read",
            "endpoints:read",
            "models:read",
            "augmentations:read",
            "augmentations:execute",
            "workspace:read",
            "analytics:view",
            "audit:read",
        ],
        "viewer" => &[
            "apps:read",
            "endpoints:read",
            "models:read",
            "tools:read",
            "sources:read",
            "workspace:read",
            "analytics:view",
        ],
        _ => &[],
    };
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Every `type:action` the role allows when bound at the organization, checked at a project.
fn allowed_pairs(key: &str) -> BTreeSet<String> {
    let catalog = Catalog::builtin();
    let policies = builtin_policies(key).unwrap();
    let role = CompiledRole::compile(&catalog, role_id(1), "builtin", &policies).unwrap();
    let roles: RoleSet = [role].into_iter().collect();
    let bindings = bindings(&[(1, Node::Org, None)]);
    let facts = Facts {
        principal_active: true,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let path = Node::PB1.path();
    catalog
        .pairs()
        .into_iter()
        .filter(|(t, a)| {
            let check = Check {
                resource_type: *t,
                resource_type_name: catalog.type_name(*t),
                action: *a,
                path: &path,
                resource_id: Some(R1),
                now: now(),
            };
            decide(&facts, &check).allowed
        })
        .map(|(t, a)| format!("{}:{}", catalog.type_name(t), catalog.action_name(a)))
        .collect()
}

#[test]
fn each_role_allows_exactly_its_list() {
    for key in ["developer", "operator", "viewer"] {
        assert_eq!(allowed_pairs(key), granted(key), "{key}");
    }
}

#[test]
fn admin_allows_every_pair() {
    assert_eq!(
        allowed_pairs("admin").len(),
        Catalog::builtin().pairs().len()
    );
    assert_eq!(builtin_policies("admin").unwrap(), [Policy::allow("*:*:*")]);
}

#[test]
fn spot_checks_from_semantics() {
    let cases = [
        ("operator", "endpoints:trigger", true),
        ("operator", "apps:write", false),
        ("operator", "secrets:read", false),
        ("operator", "secrets:reference", false),
        ("operator", "augmentations:execute", true),
        ("operator", "augmentations:write", false),
        ("operator", "audit:read", true),
        ("developer", "secrets:reference", true),
        ("developer", "secrets:read", false),
        ("developer", "apps:write", true),
        ("developer", "apps:delete", false),
        ("developer", "models:write", false),
        ("developer", "roles:write", false),
        ("viewer", "analytics:view", true),
        ("viewer", "apps:write", false),
        ("viewer", "members:read", false),
        ("viewer", "secrets:read", false),
        ("admin", "sso:manage", true),
    ];
    for (key, pair, want) in cases {
        assert_eq!(allowed_pairs(key).contains(pair), want, "{key} {pair}");
    }
}

#[test]
fn keys_names_and_effects() {
    assert_eq!(
        BUILTIN_ROLE_KEYS,
        ["admin", "developer", "operator", "viewer"]
    );
    // The seeded rows (names, fixed ids) list the same roles in the same order.
    let seeded: Vec<_> = migration::seed::BUILTIN_ROLES
        .iter()
        .map(|(_, key, name, _)| (*key, *name))
        .collect();
    assert_eq!(
        seeded,
        [
            ("admin", "Admin"),
            ("developer", "Developer"),
            ("operator", "Operator"),
            ("viewer", "Viewer")
        ]
    );
    for key in BUILTIN_ROLE_KEYS {
        let policies = builtin_policies(key).unwrap();
        assert!(policies.iter().all(|p| p.effect == Effect::Allow), "{key}");
        CompiledRole::compile(&Catalog::builtin(), role_id(1), key, &policies).unwrap();
    }
    assert_eq!(builtin_policies("owner"), None);
}

#[test]
fn role_set_basics() {
    let catalog = Catalog::builtin();
    let mut set = RoleSet::new();
    assert!(set.is_empty());
    let viewer = builtin_policies("viewer").unwrap();
    set.insert(CompiledRole::compile(&catalog, role_id(1), "Viewer", &viewer).unwrap());
    set.insert(CompiledRole::compile(&catalog, role_id(1), "Viewer again", &[]).unwrap());
    assert_eq!(set.len(), 1);
    assert_eq!(set.get(role_id(1)).unwrap().name, "Viewer again");
    assert!(set.get(role_id(2)).is_none());
}
