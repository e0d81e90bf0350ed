//! Roles and bindings through the API: catalog, custom roles, built-in immutability,
//! cross-organization isolation, last-admin protection, no escalation.

use serde_json::json;

use crate::common::{ADMIN, TestApp, VIEWER, assert_error, data_str};

const CREATE: &str = "mutation($o: ID!, $n: String!, $p: [PolicyInput!]!) { createRole(input: {organizationId: $o, name: $n, policies: $p}) { role { id name builtin policies { effect permission } } } }";

#[tokio::test]
async fn catalog_and_builtin_roles() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let cat = app
        .gql(
            Some(&t),
            "{ permissionCatalog { resourceType actions permissions } }",
            json!({}),
        )
        .await;
    let groups = cat["data"]["permissionCatalog"]
        .as_array()
        .unwrap_or_else(|| panic!("{cat}"));
    assert_eq!(groups.len(), 16);
    assert_eq!(
        groups[1],
        json!({ "resourceType": "apps", "actions": ["read", "write", "manage", "delete"], "permissions": ["apps:*:read", "apps:*:write", "apps:*:manage", "apps:*:delete"] })
    );
    let teams = groups.last().unwrap();
    assert_eq!(teams["resourceType"], "teams", "{cat}");

    let roles = app
        .gql(Some(&t), "query($o: ID!) { roles(organizationId: $o) { id name builtin bindingCount policies { permission } } }", json!({ "o": org }))
        .await;
    let list = roles["data"]["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("{roles}"));
    let names: Vec<&str> = list.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Admin", "Developer", "Operator", "Viewer"]);
    assert_eq!(list[0]["id"], ADMIN);
    assert_eq!(list[0]["bindingCount"], 1, "the creator's binding");
    assert_eq!(list[0]["policies"], json!([{ "permission": "*:*:*" }]));

    for q in [
        "mutation($id: ID!) { updateRole(input: {id: $id, name: \"Boss\"}) { role { id } } }",
        "mutation($id: ID!) { deleteRole(input: {id: $id, force: true}) { deletedId } }",
    ] {
        let r = app.gql(Some(&t), q, json!({ "id": VIEWER })).await;
        assert_error(&r, "BAD_USER_INPUT");
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("built-in"),
            "{r}"
        );
    }
}

#[tokio::test]
async fn custom_roles_validate_list_update_and_delete() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    for (bad, part) in [
        ("apps:*", "apps:*"),
        ("rockets:*:read", "rockets"),
        ("apps:*:fly", "fly"),
        // A scope is a node or a resource in the application's words, never with spaces.
        ("apps:no where:read", "no where"),
        ("apps::read", "apps::read"),
    ] {
        let r = app
            .gql(
                Some(&t),
                CREATE,
                json!({ "o": org, "n": "Bad", "p": [{ "effect": "ALLOW", "permission": bad }] }),
            )
            .await;
        assert_error(&r, "BAD_USER_INPUT");
        let msg = r["errors"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains(part),
            "`{bad}`: the message must name the bad part: {msg}"
        );
    }
    let dup = app
        .gql(
            Some(&t),
            CREATE,
            json!({ "o": org, "n": "viewer", "p": [] }),
        )
        .await;
    assert_error(&dup, "CONFLICT");

    let r = app
        .gql(Some(&t), CREATE, json!({ "o": org, "n": "Deployer", "p": [{ "effect": "ALLOW", "permission": "endpoints:*:trigger" }, { "effect": "DENY", "permission": "secrets:*:*" }] }))
        .await;
    let role = data_str(&r, &["createRole", "role", "id"]);
    assert_eq!(
        r["data"]["createRole"]["role"]["policies"][1],
        json!({ "effect": "DENY", "permission": "secrets:*:*" })
    );

    let up = app
        .gql(Some(&t), "mutation($id: ID!) { updateRole(input: {id: $id, name: \"Release\", policies: [{effect: ALLOW, permission: \"apps:*:read\"}]}) { role { name policies { permission } } } }", json!({ "id": role }))
        .await;
    assert_eq!(
        up["data"]["updateRole"]["role"],
        json!({ "name": "Release", "policies": [{ "permission": "apps:*:read" }] })
    );

    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&t, &org, "bob@example.com", &bob).await;
    app.grant(&t, &bob_id, &role, &org).await;
    let counted = app
        .gql(
            Some(&t),
            "query($o: ID!, $id: ID!) { role(organizationId: $o, id: $id) { bindingCount } }",
            json!({ "o": org, "id": role }),
        )
        .await;
    assert_eq!(counted["data"]["role"]["bindingCount"], 1);
    let del = "mutation($id: ID!, $f: Boolean!) { deleteRole(input: {id: $id, force: $f}) { deletedId } }";
    assert_error(
        &app.gql(Some(&t), del, json!({ "id": role, "f": false }))
            .await,
        "CONFLICT",
    );
    let forced = app
        .gql(Some(&t), del, json!({ "id": role, "f": true }))
        .await;
    assert_eq!(data_str(&forced, &["deleteRole", "deletedId"]), role);
    let left = app
        .gql(
            Some(&t),
            "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { id } }",
            json!({ "o": org, "p": bob_id }),
        )
        .await;
    assert_eq!(
        left["data"]["roleBindings"],
        json!([]),
        "force removed the bindings"
    );
}

#[tokio::test]
async fn a_role_of_one_organization_cannot_be_bound_in_another() {
    let app = TestApp::start().await;
    let a = app.sign_up("a@example.com").await;
    let org_a = app.create_org(&a, "acme").await;
    let r = app
        .gql(
            Some(&a),
            CREATE,
            json!({ "o": org_a, "n": "Acme role", "p": [] }),
        )
        .await;
    let role_a = data_str(&r, &["createRole", "role", "id"]);

    let b = app.sign_up("b@example.com").await;
    let org_b = app.create_org(&b, "bobco").await;
    let b_id = app.user_id(&b).await;
    let r = app.grant_raw(&b, &b_id, &role_a, &org_b, None).await;
    assert_error(&r, "NOT_FOUND");
    // Nor can a member of one organization be granted anything in another.
    let a_id = app.user_id(&a).await;
    let r = app.grant_raw(&b, &a_id, VIEWER, &org_b, None).await;
    assert_error(&r, "BAD_USER_INPUT");
    // And an outsider cannot read or change org A's roles.
    let r = app
        .gql(
            Some(&b),
            "query($o: ID!) { roles(organizationId: $o) { id } }",
            json!({ "o": org_a }),
        )
        .await;
    assert_error(&r, "NOT_FOUND");
    let r = app
        .gql(
            Some(&b),
            "mutation($id: ID!) { deleteRole(input: {id: $id, force: true}) { deletedId } }",
            json!({ "id": role_a }),
        )
        .await;
    assert_error(&r, "NOT_FOUND");
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let me = app.user_id(&t).await;
    let mine = app
        .gql(Some(&t), "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { id roleName source } }", json!({ "o": org, "p": me }))
        .await;
    assert_eq!(
        mine["data"]["roleBindings"][0]["source"], "creator",
        "a real binding"
    );
    let binding = mine["data"]["roleBindings"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke =
        "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { binding { roleName } } }";
    let r = app.gql(Some(&t), revoke, json!({ "id": binding })).await;
    assert_error(&r, "CONFLICT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Admin")
    );

    // Suspending the only admin is refused the same way.
    let store = &app.state.services.store();
    let org_id = uuid::Uuid::parse_str(&org).unwrap();
    let me_id = uuid::Uuid::parse_str(&me).unwrap();
    let suspended = store
        .set_member_status(
            org_id,
            me_id,
            iam_gateway::domain::MemberStatus::Suspended,
            &Default::default(),
        )
        .await;
    assert!(matches!(
        suspended,
        Err(iam_gateway::store::StoreError::Conflict(_))
    ));

    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&t, &org, "bob@example.com", &bob).await;
    app.grant(&t, &bob_id, ADMIN, &org).await;
    let r = app.gql(Some(&t), revoke, json!({ "id": binding })).await;
    assert_eq!(
        r["data"]["revokeRoleBinding"]["binding"]["roleName"], "Admin",
        "{r}"
    );
    // Ada is no admin any more: she cannot change the organization.
    let r = app
        .gql(Some(&t), "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"x\", name: \"X\"}) { workspace { id } } }", json!({ "o": org }))
        .await;
    assert_eq!(
        crate::common::error_code(&r).as_deref(),
        Some("FORBIDDEN"),
        "{r}"
    );
}

#[tokio::test]
async fn granting_is_bounded_by_what_the_granter_holds() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let ws = app.create_workspace(&t, &org, "prod").await;
    let r = app
        .gql(Some(&t), CREATE, json!({ "o": org, "n": "Inviter", "p": [{ "effect": "ALLOW", "permission": "members:*:invite" }, { "effect": "ALLOW", "permission": "workspace:*:read" }, { "effect": "ALLOW", "permission": "apps:*:read" }] }))
        .await;
    let inviter = data_str(&r, &["createRole", "role", "id"]);
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&t, &org, "bob@example.com", &bob).await;
    app.grant(&t, &bob_id, &inviter, &ws).await;
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&t, &org, "carol@example.com", &carol).await;

    let r = app.grant_raw(&bob, &carol_id, ADMIN, &ws, None).await;
    assert_error(&r, "FORBIDDEN");
    let r = app.grant_raw(&bob, &bob_id, ADMIN, &ws, None).await;
    assert_error(&r, "FORBIDDEN");
    // Viewer asks for more than bob holds (models, tools...), so it is refused too...
    let r = app.grant_raw(&bob, &carol_id, VIEWER, &ws, None).await;
    assert_error(&r, "FORBIDDEN");
    // ...but his own role he may pass on, at his workspace and not above it.
    let r = app.grant_raw(&bob, &carol_id, &inviter, &ws, None).await;
    assert_eq!(
        r["data"]["grantRole"]["binding"]["nodeKind"], "WORKSPACE",
        "{r}"
    );
    let r = app.grant_raw(&bob, &carol_id, &inviter, &org, None).await;
    assert_error(&r, "FORBIDDEN");
}

#[tokio::test]
async fn a_deployment_can_load_its_own_catalog() {
    let dir = std::env::temp_dir().join(format!("iam-catalog-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("catalog.toml");
    std::fs::write(
        &good,
        "[types]\nworkspace = [\"read\", \"write\", \"manage\"]\nmembers = [\"read\", \"invite\", \"remove\", \"manage\"]\nroles = [\"read\", \"write\"]\naudit = [\"read\", \"export\"]\nsso = [\"read\", \"manage\"]\nagents = [\"read\", \"run\"]\n",
    )
    .unwrap();
    let path = good.clone();
    let app = TestApp::start_with(move |c| c.permission_catalog = Some(path)).await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let cat = app
        .gql(
            Some(&t),
            "{ permissionCatalog { resourceType actions } }",
            json!({}),
        )
        .await;
    assert!(
        cat["data"]["permissionCatalog"]
            .as_array()
            .unwrap()
            .contains(&json!({ "resourceType": "agents", "actions": ["read", "run"] })),
        "{cat}"
    );
    let ok = app.gql(Some(&t), CREATE, json!({ "o": org, "n": "Runner", "p": [{ "effect": "ALLOW", "permission": "agents:*:run" }] })).await;
    assert_eq!(ok["data"]["createRole"]["role"]["name"], "Runner", "{ok}");
    let unknown = app.gql(Some(&t), CREATE, json!({ "o": org, "n": "Apps", "p": [{ "effect": "ALLOW", "permission": "apps:*:read" }] })).await;
    assert_error(&unknown, "BAD_USER_INPUT");

    // The gateway's own types are added to a catalog that lacks them (the API authorizes
    // itself with them); a catalog that is not valid is refused at start, naming the file.
    let lean = dir.join("lean.toml");
    std::fs::write(&lean, "[types]\nagents = [\"read\"]\n").unwrap();
    let lean_path = lean.clone();
    let app = TestApp::start_with(move |c| c.permission_catalog = Some(lean_path)).await;
    let t = app.sign_up("ada@example.com").await;
    let cat = app
        .gql(
            Some(&t),
            "{ permissionCatalog { resourceType } }",
            json!({}),
        )
        .await;
    let types: Vec<&str> = cat["data"]["permissionCatalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "agents",
            "workspace",
            "members",
            "roles",
            "audit",
            "sso",
            "service_accounts",
            "api_keys",
            "teams"
        ]
    );
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[types]\nagents = []\n").unwrap();
    let config = iam_gateway::config::Config {
        database_url: "sqlite::memory:".to_owned(),
        permission_catalog: Some(bad.clone()),
        ..Default::default()
    };
    let err = iam_gateway::app::AppState::init(config)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("bad.toml"), "{err}");
    assert!(
        err.to_string().contains("`agents` lists no actions"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn facts_carry_each_custom_role_once_with_its_policies_in_order() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    let project = app.create_project(&admin, &ws, "bot").await;
    let policies = json!([
        { "effect": "ALLOW", "permission": "apps:*:read" },
        { "effect": "DENY", "permission": "secrets:*:read" },
        { "effect": "ALLOW", "permission": "endpoints:*:trigger" },
    ]);
    let r = app
        .gql(
            Some(&admin),
            CREATE,
            json!({ "o": org, "n": "Runner", "p": policies }),
        )
        .await;
    let runner = data_str(&r, &["createRole", "role", "id"]);
    let r = app
        .gql(
            Some(&admin),
            CREATE,
            json!({ "o": org, "n": "Empty", "p": [] }),
        )
        .await;
    let empty = data_str(&r, &["createRole", "role", "id"]);
    let member = app.sign_up("m@example.com").await;
    let member_id = app.join(&admin, &org, "m@example.com", &member).await;
    // The same custom role at two nodes, an empty custom role, and a built-in one.
    app.grant(&admin, &member_id, &runner, &ws).await;
    app.grant(&admin, &member_id, &runner, &project).await;
    app.grant(&admin, &member_id, &empty, &org).await;
    app.grant(&admin, &member_id, VIEWER, &org).await;

    let id = |s: &str| s.parse::<uuid::Uuid>().unwrap();
    let store = &app.state.services.store();
    let facts = store
        .principal_facts(id(&org), id(&member_id))
        .await
        .unwrap()
        .expect("the organization exists");
    assert!(facts.active && facts.member);
    assert_eq!(facts.bindings.len(), 4, "{:?}", facts.bindings);
    let mut nodes: Vec<_> = facts.bindings.iter().map(|b| b.node_id).collect();
    nodes.sort();
    let mut want = vec![id(&ws), id(&project), id(&org), id(&org)];
    want.sort();
    assert_eq!(nodes, want);
    assert_eq!(facts.custom_roles.len(), 2, "{:?}", facts.custom_roles);
    let runner_role = facts
        .custom_roles
        .iter()
        .find(|r| r.id == id(&runner))
        .expect("Runner is carried");
    let got: Vec<_> = runner_role
        .policies
        .iter()
        .map(|p| (p.effect.as_str(), p.permission.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("allow", "apps:*:read"),
            ("deny", "secrets:*:read"),
            ("allow", "endpoints:*:trigger")
        ]
    );
    assert_eq!(runner_role.name, "Runner");
    let empty_role = facts.custom_roles.iter().find(|r| r.id == id(&empty));
    assert!(empty_role.is_some_and(|r| r.policies.is_empty()));
    // The revision is the organization's, and a stranger has no bindings and is no member.
    assert_eq!(
        Some(facts.revision),
        store.revision(id(&org)).await.unwrap()
    );
    let stranger = app.sign_up("s@example.com").await;
    let s = store
        .principal_facts(id(&org), id(&app.user_id(&stranger).await))
        .await
        .unwrap()
        .expect("the organization exists");
    assert!(!s.member && !s.active && s.bindings.is_empty());
    assert!(
        store
            .principal_facts(uuid::Uuid::now_v7(), id(&member_id))
            .await
            .unwrap()
            .is_none()
    );
}
