//! Parsing and formatting `resource:scope:action`.

use super::*;

#[test]
fn parses_valid_permissions() {
    let catalog = Catalog::builtin();
    let apps = catalog.type_ix("apps");
    let read = catalog.action_ix("read");
    let ws = Node::WsA.id();
    let cases = [
        ("apps:*:read".to_owned(), apps, Scope::Any, read),
        ("*:*:*".to_owned(), None, Scope::Any, None),
        ("apps:*:*".to_owned(), apps, Scope::Any, None),
        ("*:*:read".to_owned(), None, Scope::Any, read),
        (
            format!("apps:{ws}:read"),
            apps,
            Scope::Target(Target::uuid(ws)),
            read,
        ),
        (
            format!("apps:{}:read", ws.to_string().to_uppercase()),
            apps,
            Scope::Target(Target::uuid(ws)),
            read,
        ),
        (
            "*:*:trigger".to_owned(),
            None,
            Scope::Any,
            catalog.action_ix("trigger"),
        ),
    ];
    for (text, resource, scope, action) in cases {
        let want = Permission {
            resource,
            scope,
            action,
        };
        assert_eq!(catalog.parse_permission(&text), Ok(want), "{text}");
    }
}

#[test]
fn errors_name_the_bad_part() {
    use PermissionPart::*;
    let catalog = Catalog::builtin();
    let long = "a".repeat(65);
    let cases: Vec<(String, PermissionPart, String)> = vec![
        (
            "apps:*".into(),
            Whole,
            "permission `apps:*`: expected `resource:scope:action`, three parts separated by `:`, found 2".into(),
        ),
        (
            "apps".into(),
            Whole,
            "permission `apps`: expected `resource:scope:action`, three parts separated by `:`, found 1".into(),
        ),
        (
            "".into(),
            Whole,
            "permission ``: expected `resource:scope:action`, three parts separated by `:`, found 1".into(),
        ),
        (
            "apps:*:read:x".into(),
            Whole,
            "permission `apps:*:read:x`: expected `resource:scope:action`, three parts separated by `:`, found 4".into(),
        ),
        (
            ":*:read".into(),
            Resource,
            "permission `:*:read`: the resource type is empty; use `*` for any".into(),
        ),
        (
            "apps::read".into(),
            Scope,
            "permission `apps::read`: the scope is empty; use `*` for any".into(),
        ),
        (
            "apps:*:".into(),
            Action,
            "permission `apps:*:`: the action is empty; use `*` for any".into(),
        ),
        (
            "Apps:*:read".into(),
            Resource,
            "permission `Apps:*:read`: resource type `Apps` is not `*` or a name of 1 to 64 lowercase letters, digits, `-` or `_`".into(),
        ),
        (
            " apps:*:read".into(),
            Resource,
            "permission ` apps:*:read`: resource type ` apps` is not `*` or a name of 1 to 64 lowercase letters, digits, `-` or `_`".into(),
        ),
        (
            "ap*:*:read".into(),
            Resource,
            "permission `ap*:*:read`: resource type `ap*` is not `*` or a name of 1 to 64 lowercase letters, digits, `-` or `_`".into(),
        ),
        (
            format!("{long}:*:read"),
            Resource,
            format!("permission `{long}:*:read`: resource type `{long}` is not `*` or a name of 1 to 64 lowercase letters, digits, `-` or `_`"),
        ),
        (
            "apps:*:RE AD".into(),
            Action,
            "permission `apps:*:RE AD`: action `RE AD` is not `*` or a name of 1 to 64 lowercase letters, digits, `-` or `_`".into(),
        ),
        (
            "foo:*:read".into(),
            Resource,
            "permission `foo:*:read`: unknown resource type `foo`".into(),
        ),
        (
            "apps:*:fly".into(),
            Action,
            "permission `apps:*:fly`: `apps` has no action `fly`; it has read, write, manage, delete".into(),
        ),
        (
            "apps:*:trigger".into(),
            Action,
            "permission `apps:*:trigger`: `apps` has no action `trigger`; it has read, write, manage, delete".into(),
        ),
        (
            "*:*:fly".into(),
            Action,
            "permission `*:*:fly`: no resource type has action `fly`".into(),
        ),
        (
            "apps:**:read".into(),
            Scope,
            "permission `apps:**:read`: scope `**` is neither `*` nor the id of a node or a resource (1 to 200 printable characters, without `:` or spaces, not only `*`)".into(),
        ),
        (
            "apps:a\u{0}b:read".into(),
            Scope,
            "permission `apps:a\u{0}b:read`: scope `a\u{0}b` is neither `*` nor the id of a node or a resource (1 to 200 printable characters, without `:` or spaces, not only `*`)".into(),
        ),
        (
            format!("apps:{}:read", "x".repeat(201)),
            Scope,
            format!("permission `apps:{}…`: scope `{}…` is neither `*` nor the id of a node or a resource (1 to 200 printable characters, without `:` or spaces, not only `*`)", "x".repeat(75), "x".repeat(80)),
        ),
    ];
    for (text, part, message) in cases {
        let err = catalog.parse_permission(&text).unwrap_err();
        assert_eq!(err.part, part, "{text}");
        assert_eq!(err.message, message);
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn long_input_is_shortened_in_messages() {
    let catalog = Catalog::builtin();
    let text = format!("apps:*:read:{}", "x".repeat(10_000));
    let err = catalog.parse_permission(&text).unwrap_err();
    assert_eq!(err.part, PermissionPart::Whole);
    assert!(err.message.len() < 300, "{}", err.message);
    assert!(err.message.contains('…'));
}

#[test]
fn odd_input_never_panics() {
    let catalog = Catalog::builtin();
    for text in [
        ":",
        "::",
        ":::",
        "*",
        "*:*",
        "é:*:read",
        "apps:*:é",
        "\0:\0:\0",
    ] {
        assert!(catalog.parse_permission(text).is_err(), "{text:?}");
    }
}

#[test]
fn a_scope_is_a_node_or_a_resource_in_the_applications_own_words() {
    let catalog = Catalog::builtin();
    let ws = Node::WsA.id();
    for (scope, node) in [
        ("chain-42", None),
        ("OPENAI_API_KEY", None),
        ("workspace-123", None),
        ("é", None),
        ("00000000-0000-0000-0000-00000000000é", None),
        // Another spelling of a UUID is a resource id of its own, not the node.
        (&*ws.simple().to_string(), None),
        (&*ws.to_string(), Some(ws)),
        (&*ws.to_string().to_uppercase(), Some(ws)),
    ] {
        let p = catalog
            .parse_permission(&format!("secrets:{scope}:read"))
            .unwrap_or_else(|e| panic!("{scope}: {e}"));
        let Scope::Target(t) = &p.scope else {
            panic!("{scope}: not a target")
        };
        assert_eq!(t.node, node, "{scope}");
        let written = catalog.format_permission(&p);
        assert_eq!(catalog.parse_permission(&written).unwrap(), p, "{written}");
    }
    // A resource binding's id matches only that very id.
    let p = catalog
        .parse_permission("secrets:OPENAI_API_KEY:read")
        .unwrap();
    let Scope::Target(t) = &p.scope else { panic!() };
    assert!(t.matches(&[ws], Some("OPENAI_API_KEY")));
    assert!(!t.matches(&[ws], Some("openai_api_key")));
    assert!(!t.matches(&[ws], None));
}

#[test]
fn format_is_canonical_and_round_trips() {
    let catalog = Catalog::builtin();
    let ws = Node::WsA.id();
    let upper = format!("endpoints:{}:trigger", ws.to_string().to_uppercase());
    let cases = [
        ("apps:*:read".to_owned(), "apps:*:read".to_owned()),
        ("*:*:*".to_owned(), "*:*:*".to_owned()),
        (upper, format!("endpoints:{ws}:trigger")),
        (format!("*:{ws}:view"), format!("*:{ws}:view")),
    ];
    for (text, canonical) in cases {
        let p = catalog.parse_permission(&text).unwrap();
        assert_eq!(catalog.format_permission(&p), canonical);
        assert_eq!(catalog.parse_permission(&canonical), Ok(p));
    }
    for (t, a) in catalog.pairs() {
        let p = Permission {
            resource: Some(t),
            scope: Scope::Any,
            action: Some(a),
        };
        assert_eq!(
            catalog.parse_permission(&catalog.format_permission(&p)),
            Ok(p)
        );
    }
}

#[test]
fn effects() {
    assert_eq!(Effect::parse("allow"), Some(Effect::Allow));
    assert_eq!(Effect::parse("deny"), Some(Effect::Deny));
    assert_eq!(Effect::parse("Allow"), None);
    assert_eq!(Effect::parse(""), None);
    assert_eq!(Effect::Allow.as_str(), "allow");
    assert_eq!(Effect::Deny.as_str(), "deny");
}

#[test]
fn compile_reports_the_bad_policy_index() {
    let catalog = Catalog::builtin();
    let policies = [
        Policy::allow("apps:*:read"),
        Policy::deny("models:*:manage"),
        Policy::allow("apps:*:fly"),
        Policy::allow("nope:*:*"),
    ];
    let (index, err) = CompiledRole::compile(&catalog, role_id(1), "r", &policies).unwrap_err();
    assert_eq!(index, 2);
    assert_eq!(err.part, PermissionPart::Action);
    let role = CompiledRole::compile(&catalog, role_id(1), "r", &policies[..2]).unwrap();
    assert_eq!(role.name, "r");
    assert_eq!(role.policies.len(), 2);
    assert_eq!(role.policies[1].effect, Effect::Deny);
    assert_eq!(
        catalog.format_permission(&role.policies[1].permission),
        "models:*:manage"
    );
}
