//! Sharing one resource through the API: a binding that names a resource (type and the
//! application's own id) applies to checks of that very resource only, shows in bindings,
//! `explain` and the members list, and hands out nothing its granter does not hold there.

use serde_json::{Value, json};

use crate::common::{TestApp, assert_error, data_str};

const SHARE: &str = "mutation($p: ID!, $r: ID!, $n: ID!, $t: String, $i: ID) { grantRole(input: {principalId: $p, roleId: $r, nodeId: $n, resourceType: $t, resourceId: $i}) { binding { id roleName resourceType resourceId } revision } }";
const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";

async fn start() -> TestApp {
    TestApp::start_with(|c| c.profile = "mentiko".to_owned()).await
}

async fn share(
    app: &TestApp,
    token: &str,
    principal: &str,
    role: &str,
    node: &str,
    resource: (&str, &str),
) -> Value {
    app.gql(
        Some(token),
        SHARE,
        json!({ "p": principal, "r": role, "n": node, "t": resource.0, "i": resource.1 }),
    )
    .await
}

async fn allowed(
    app: &TestApp,
    token: &str,
    type_action: &str,
    node: &str,
    resource: Option<&str>,
) -> bool {
    let (t, a) = type_action.split_once(':').unwrap();
    let r = app
        .gql(
            Some(token),
            CHECK,
            json!({ "i": { "resourceType": t, "action": a, "nodeId": node, "resourceId": resource } }),
        )
        .await;
    r["data"]["check"]["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("{r}"))
}

#[tokio::test]
async fn a_share_applies_to_that_very_resource_and_shows_everywhere() {
    let app = start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let project = app.create_project(&ada, &ws, "agents").await;
    let other_ws = app.create_workspace(&ada, &org, "dev").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    let operator = app.role_id(&ada, &org, "operator").await;

    let r = share(&app, &ada, &bob_id, &operator, &ws, ("chains", "chain-42")).await;
    assert_eq!(
        r["data"]["grantRole"]["binding"]["resourceId"], "chain-42",
        "{r}"
    );
    assert_eq!(r["data"]["grantRole"]["binding"]["resourceType"], "chains");

    // That chain, in the workspace or below: Operator's chain powers, nothing else.
    assert!(allowed(&app, &bob, "chains:run", &ws, Some("chain-42")).await);
    assert!(allowed(&app, &bob, "chains:run", &project, Some("chain-42")).await);
    assert!(allowed(&app, &bob, "chains:view", &project, Some("chain-42")).await);
    assert!(!allowed(&app, &bob, "chains:edit", &ws, Some("chain-42")).await);
    // Another chain, no chain, another type with the same id, another workspace, the org.
    assert!(!allowed(&app, &bob, "chains:run", &ws, Some("chain-43")).await);
    assert!(!allowed(&app, &bob, "chains:run", &ws, None).await);
    assert!(!allowed(&app, &bob, "results:view", &ws, Some("chain-42")).await);
    assert!(!allowed(&app, &bob, "chains:run", &other_ws, Some("chain-42")).await);
    assert!(!allowed(&app, &bob, "chains:run", &org, Some("chain-42")).await);

    // explain names the share, and why it did not apply to another chain.
    let e = app
        .gql(
            Some(&bob),
            "query($i: CheckInput!) { explain(input: $i) { allowed bindings { roleName status resourceType resourceId } } }",
            json!({ "i": { "resourceType": "chains", "action": "run", "nodeId": ws, "resourceId": "chain-43" } }),
        )
        .await;
    assert_eq!(
        e["data"]["explain"]["bindings"],
        json!([{ "roleName": "Operator", "status": "OTHER_RESOURCE", "resourceType": "chains", "resourceId": "chain-42" }]),
        "{e}"
    );
    // The bindings and the members list show it.
    let b = app
        .gql(
            Some(&ada),
            "query($n: ID!) { roleBindings(nodeId: $n) { roleName resourceType resourceId } }",
            json!({ "n": ws }),
        )
        .await;
    assert_eq!(
        b["data"]["roleBindings"],
        json!([{ "roleName": "Operator", "resourceType": "chains", "resourceId": "chain-42" }]),
        "{b}"
    );
    let m = app
        .gql(
            Some(&ada),
            "query($o: ID!) { organization(id: $o) { members(filter: {search: \"bob\"}) { members { roles { roleName resourceType resourceId } } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        m["data"]["organization"]["members"]["members"][0]["roles"],
        json!([{ "roleName": "Operator", "resourceType": "chains", "resourceId": "chain-42" }]),
        "{m}"
    );
    // Sharing the same resource twice is a conflict; another resource is another share.
    let again = share(&app, &ada, &bob_id, &operator, &ws, ("chains", "chain-42")).await;
    assert_error(&again, "CONFLICT");
    let other = share(&app, &ada, &bob_id, &operator, &ws, ("chains", "chain-7")).await;
    assert!(
        other["data"]["grantRole"]["binding"]["id"].is_string(),
        "{other}"
    );
    // setMemberRoles replaces roles, not shares.
    let viewer = app.role_id(&ada, &org, "viewer").await;
    let r = app
        .gql(
            Some(&ada),
            "mutation($o: ID!, $u: ID!, $r: ID!) { setMemberRoles(input: {organizationId: $o, userId: $u, roles: [{roleId: $r, nodeId: $o}]}) { roles { roleName } } }",
            json!({ "o": org, "u": bob_id, "r": viewer }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(allowed(&app, &bob, "chains:run", &ws, Some("chain-42")).await);
}

#[tokio::test]
async fn a_scope_or_a_share_names_the_applications_own_ids() {
    let app = start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    // A custom role scoped to one secret by name: `secrets:OPENAI_API_KEY:reference`.
    let r = app
        .gql(
            Some(&ada),
            "mutation($o: ID!) { createRole(input: {organizationId: $o, name: \"Key user\", policies: [{effect: ALLOW, permission: \"secrets:OPENAI_API_KEY:reference\"}]}) { role { id policies { permission } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        r["data"]["createRole"]["role"]["policies"],
        json!([{ "permission": "secrets:OPENAI_API_KEY:reference" }]),
        "{r}"
    );
    let key_user = data_str(&r, &["createRole", "role", "id"]);
    app.grant(&ada, &bob_id, &key_user, &ws).await;
    assert!(allowed(&app, &bob, "secrets:reference", &ws, Some("OPENAI_API_KEY")).await);
    assert!(!allowed(&app, &bob, "secrets:reference", &ws, Some("ANTHROPIC_KEY")).await);
    assert!(!allowed(&app, &bob, "secrets:view", &ws, Some("OPENAI_API_KEY")).await);

    // Bad input is refused, naming the field.
    let operator = app.role_id(&ada, &org, "operator").await;
    for (t, i, field) in [
        (Some("chains"), None, "resourceId"),
        (None, Some("chain-42"), "resourceType"),
        (Some("spaceships"), Some("x"), "resourceType"),
        (Some("chains"), Some("chain 42"), "resourceId"),
        (Some("chains"), Some("a:b"), "resourceId"),
    ] {
        let r = app
            .gql(
                Some(&ada),
                SHARE,
                json!({ "p": bob_id, "r": operator, "n": ws, "t": t, "i": i }),
            )
            .await;
        assert_error(&r, "BAD_USER_INPUT");
        assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
    }
    let long = "x".repeat(201);
    let r = app
        .gql(
            Some(&bob),
            CHECK,
            json!({ "i": { "resourceType": "chains", "action": "run", "nodeId": ws, "resourceId": long } }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_share_hands_out_only_what_its_granter_holds_on_that_resource() {
    let app = start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&ada, &org, "carol@example.com", &carol).await;
    let dave = app.sign_up("dave@example.com").await;
    let dave_id = app.join(&ada, &org, "dave@example.com", &dave).await;
    let builder = app.role_id(&ada, &org, "chain-builder").await;
    let operator = app.role_id(&ada, &org, "operator").await;
    let admin = app.role_id(&ada, &org, "admin").await;
    // Carol may share (members:invite at the workspace) and builds chain-42 (the owner
    // pattern: the application granted its creator Chain Builder on it).
    let r = app
        .gql(
            Some(&ada),
            "mutation($o: ID!) { createRole(input: {organizationId: $o, name: \"Sharer\", policies: [{effect: ALLOW, permission: \"members:*:invite\"}, {effect: ALLOW, permission: \"workspace:*:read\"}]}) { role { id } } }",
            json!({ "o": org }),
        )
        .await;
    let sharer = data_str(&r, &["createRole", "role", "id"]);
    app.grant(&ada, &carol_id, &sharer, &ws).await;
    let r = share(&app, &ada, &carol_id, &builder, &ws, ("chains", "chain-42")).await;
    assert!(r["data"]["grantRole"]["binding"]["id"].is_string(), "{r}");

    // She shares chain-42 as Operator (run and view: she holds them there).
    let r = share(
        &app,
        &carol,
        &dave_id,
        &operator,
        &ws,
        ("chains", "chain-42"),
    )
    .await;
    assert!(r["data"]["grantRole"]["binding"]["id"].is_string(), "{r}");
    assert!(allowed(&app, &dave, "chains:run", &ws, Some("chain-42")).await);
    // Not another chain, not Admin on hers (it would delete it), not the whole workspace.
    let r = share(
        &app,
        &carol,
        &dave_id,
        &operator,
        &ws,
        ("chains", "chain-43"),
    )
    .await;
    assert_error(&r, "FORBIDDEN");
    let r = share(&app, &carol, &dave_id, &admin, &ws, ("chains", "chain-42")).await;
    assert_error(&r, "FORBIDDEN");
    let r = app.grant_raw(&carol, &dave_id, &operator, &ws, None).await;
    assert_error(&r, "FORBIDDEN");
    // Nor can she share a secret she has nothing on, under the same id (Chain Builder may
    // reference secrets).
    let r = share(
        &app,
        &carol,
        &dave_id,
        &builder,
        &ws,
        ("secrets", "chain-42"),
    )
    .await;
    assert_error(&r, "FORBIDDEN");
    // A share that would give nothing (Operator has no power over secrets) is refused as such.
    let r = share(
        &app,
        &ada,
        &dave_id,
        &operator,
        &ws,
        ("secrets", "chain-42"),
    )
    .await;
    assert_error(&r, "BAD_USER_INPUT");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("gives nothing on a `secrets`"),
        "{message}"
    );
}

#[tokio::test]
async fn admin_on_one_resource_is_not_an_administrator() {
    let app = start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    let admin = app.role_id(&ada, &org, "admin").await;
    let r = share(&app, &ada, &bob_id, &admin, &org, ("chains", "chain-42")).await;
    assert!(r["data"]["grantRole"]["binding"]["id"].is_string(), "{r}");
    // Bob administers that chain, not the organization.
    assert!(allowed(&app, &bob, "chains:delete", &org, Some("chain-42")).await);
    assert!(!allowed(&app, &bob, "members:invite", &org, None).await);
    // Ada's binding stays the last admin: removing it is refused.
    let ada_id = app.user_id(&ada).await;
    let bindings = app
        .gql(
            Some(&ada),
            "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { id } }",
            json!({ "o": org, "p": ada_id }),
        )
        .await;
    let ada_binding = bindings["data"]["roleBindings"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .gql(
            Some(&ada),
            "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { binding { id } } }",
            json!({ "id": ada_binding }),
        )
        .await;
    assert_error(&r, "CONFLICT");
}
