//! The catalog: the built-in table, TOML loading (order, errors), lookups and `resolve`.

use super::*;

#[test]
fn builtin_is_the_semantics_table_in_order() {
    let catalog = Catalog::builtin();
    let expected: [(&str, &[&str]); 16] = [
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
        ("audit", &["read", "export", "write"]),
        ("sso", &["read", "manage"]),
        ("service_accounts", &["read", "manage"]),
        ("api_keys", &["read", "manage"]),
        ("teams", &["read", "manage"]),
    ];
    let types = catalog.types();
    assert_eq!(types.len(), expected.len());
    for ((name, actions), (want_name, want_actions)) in types.iter().zip(expected) {
        assert_eq!(*name, want_name);
        assert_eq!(actions.as_slice(), want_actions, "actions of {name}");
    }
    assert_eq!(catalog.pairs().len(), 45);
}

#[test]
fn builtin_passes_the_toml_validation() {
    let mut toml = String::from("[types]\n");
    for (name, actions) in Catalog::builtin().types() {
        let actions: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
        toml.push_str(&format!("{name} = [{}]\n", actions.join(", ")));
    }
    // The same types and actions (a bare catalog file has no descriptions).
    assert_eq!(
        Catalog::from_toml_str(&toml).unwrap().types(),
        Catalog::builtin().types()
    );
}

#[test]
fn one_action_table_across_types() {
    let catalog = Catalog::builtin();
    let (_, apps_read) = catalog.resolve("apps", "read").unwrap();
    let (_, models_read) = catalog.resolve("models", "read").unwrap();
    assert_eq!(apps_read, models_read);
    assert_eq!(catalog.action_name(apps_read), "read");
    let (_, trigger) = catalog.resolve("endpoints", "trigger").unwrap();
    assert_ne!(trigger, apps_read);
}

#[test]
fn lookups_and_foreign_indexes() {
    let catalog = Catalog::builtin();
    let apps = catalog.type_ix("apps").unwrap();
    assert_eq!(apps, TypeIx(1));
    assert_eq!(catalog.type_name(apps), "apps");
    assert_eq!(catalog.type_ix("nope"), None);
    assert_eq!(catalog.type_name(TypeIx(999)), "?");
    assert_eq!(catalog.action_name(ActionIx(999)), "?");
    assert!(catalog.type_actions(TypeIx(999)).is_empty());
    assert_eq!(catalog.action_ix("fly"), None);
}

#[test]
fn pairs_follow_catalog_order() {
    let catalog = Catalog::builtin();
    let names: Vec<String> = catalog
        .pairs()
        .iter()
        .take(5)
        .map(|(t, a)| format!("{}:{}", catalog.type_name(*t), catalog.action_name(*a)))
        .collect();
    assert_eq!(
        names,
        [
            "workspace:read",
            "workspace:write",
            "workspace:manage",
            "apps:read",
            "apps:write"
        ]
    );
    for (t, a) in catalog.pairs() {
        let resolved = catalog.resolve(catalog.type_name(t), catalog.action_name(a));
        assert_eq!(resolved, Ok((t, a)));
    }
}

#[test]
fn resolve_names_the_bad_part() {
    let catalog = Catalog::builtin();
    let cases = [
        (
            "foo",
            "read",
            PermissionPart::Resource,
            "unknown resource type `foo`",
        ),
        (
            "*",
            "read",
            PermissionPart::Resource,
            "a check names one resource type, not `*`",
        ),
        (
            "apps",
            "fly",
            PermissionPart::Action,
            "`apps` has no action `fly`; it has read, write, manage, delete",
        ),
        (
            "apps",
            "trigger",
            PermissionPart::Action,
            "`apps` has no action `trigger`; it has read, write, manage, delete",
        ),
        (
            "analytics",
            "*",
            PermissionPart::Action,
            "`analytics` has no action `*`; it has view",
        ),
    ];
    for (t, a, part, message) in cases {
        let err = catalog.resolve(t, a).unwrap_err();
        assert_eq!((err.part, err.message.as_str()), (part, message), "{t}:{a}");
    }
}

#[test]
fn toml_keeps_the_written_order() {
    let catalog = Catalog::from_toml_str(
        "# a deployment's catalog\n[types]\nzeta = [\"write\", \"read\"]\nalpha = [\"read\"]\n\
         chains = [\"read\", \"run-now\", \"x_1\"]\n",
    )
    .unwrap();
    assert_eq!(
        catalog.types(),
        vec![
            ("zeta", vec!["write", "read"]),
            ("alpha", vec!["read"]),
            ("chains", vec!["read", "run-now", "x_1"]),
        ]
    );
    assert_eq!(catalog.type_ix("alpha"), Some(TypeIx(1)));
    assert_eq!(catalog.action_ix("read"), Some(ActionIx(1)));
    assert!(catalog.parse_permission("alpha:*:write").is_err());
    assert!(catalog.parse_permission("*:*:run-now").is_ok());
}

#[test]
fn toml_inline_and_multiline_forms() {
    let catalog = Catalog::from_toml_str("types = { b = [\"x\"], a = [\"y\"] }\n").unwrap();
    assert_eq!(catalog.types(), vec![("b", vec!["x"]), ("a", vec!["y"])]);
    let catalog =
        Catalog::from_toml_str("[types]\nb = [\n  \"x\", # why\n  \"y\",\n]\n\"a\" = [\"z\"]\n")
            .unwrap();
    assert_eq!(
        catalog.types(),
        vec![("b", vec!["x", "y"]), ("a", vec!["z"])]
    );
}

#[test]
fn toml_errors_are_clear() {
    let long = "a".repeat(65);
    let cases: Vec<(String, CatalogError)> = vec![
        ("[types]\n".into(), CatalogError::NoTypes),
        (
            "[types]\nApps = [\"read\"]\n".into(),
            CatalogError::BadTypeName("Apps".into()),
        ),
        (
            format!("[types]\n{long} = [\"read\"]\n"),
            CatalogError::BadTypeName(long.clone()),
        ),
        (
            "[types]\n\"*\" = [\"read\"]\n".into(),
            CatalogError::BadTypeName("*".into()),
        ),
        (
            "[types]\n\"my apps\" = [\"read\"]\n".into(),
            CatalogError::BadTypeName("my apps".into()),
        ),
        (
            "[types]\n\"\" = [\"read\"]\n".into(),
            CatalogError::BadTypeName("".into()),
        ),
        (
            "[types]\napps = [\"Read\"]\n".into(),
            CatalogError::BadActionName {
                resource_type: "apps".into(),
                action: "Read".into(),
            },
        ),
        (
            "[types]\napps = [\"re:ad\"]\n".into(),
            CatalogError::BadActionName {
                resource_type: "apps".into(),
                action: "re:ad".into(),
            },
        ),
        (
            "[types]\napps = [\"*\"]\n".into(),
            CatalogError::BadActionName {
                resource_type: "apps".into(),
                action: "*".into(),
            },
        ),
        (
            "[types]\napps = []\n".into(),
            CatalogError::NoActions("apps".into()),
        ),
        (
            "[types]\napps = [\"read\", \"write\", \"read\"]\n".into(),
            CatalogError::DuplicateAction {
                resource_type: "apps".into(),
                action: "read".into(),
            },
        ),
    ];
    for (toml, want) in cases {
        assert_eq!(Catalog::from_toml_str(&toml), Err(want), "{toml:?}");
    }
}

#[test]
fn toml_syntax_and_shape_errors() {
    let cases = [
        ("", "missing field `types`"),
        (
            "[types]\napps = [\"read\"]\napps = [\"write\"]\n",
            "duplicate key",
        ),
        ("[types]\napps = \"read\"\n", "invalid type"),
        ("[types]\napps = [1]\n", "invalid type"),
        (
            "[types]\napps = [\"read\"]\n[other]\nx = 1\n",
            "unknown field `other`",
        ),
        ("[types\napps = [\"read\"]\n", "line 1"),
        ("types = 3\n", "invalid type"),
    ];
    for (toml, fragment) in cases {
        let err = Catalog::from_toml_str(toml).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, CatalogError::Toml(_)),
            "{toml:?} gave {message}"
        );
        assert!(
            message.starts_with("catalog is not valid toml: "),
            "{message}"
        );
        assert!(message.contains(fragment), "{toml:?} gave {message}");
        assert!(
            !message.ends_with('.') && !message.contains('\n'),
            "{message:?}"
        );
    }
}

#[test]
fn catalog_error_messages() {
    let cases = [
        (
            CatalogError::NoTypes,
            "catalog lists no resource types; add a `[types]` table such as `apps = [\"read\", \"write\"]`",
        ),
        (
            CatalogError::BadTypeName("Apps".into()),
            "resource type `Apps` is not a valid name: use 1 to 64 lowercase letters, digits, `-` or `_`",
        ),
        (
            CatalogError::DuplicateAction {
                resource_type: "apps".into(),
                action: "read".into(),
            },
            "resource type `apps` lists action `read` twice",
        ),
        (
            CatalogError::NoActions("apps".into()),
            "resource type `apps` lists no actions",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.to_string(), message);
    }
}
