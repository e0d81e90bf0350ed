//! Decisions through the real GraphQL endpoint: inheritance, deny-wins, scopes, expiry,
//! inactive members, checkMany, explain, effective permissions, accessible nodes.

use serde_json::{Value, json};

use crate::common::{ADMIN, DEVELOPER, TestApp, VIEWER, assert_error, data_str};

const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed revision reasons { kind roleName permission effect nodeId message } } }";

/// An organization `acme` with workspace `prod` holding projects `billing` and `search`, an
/// admin, and a member `bob` with no role yet.
struct World {
    app: TestApp,
    admin: String,
    org: String,
    ws: String,
    billing: String,
    search: String,
    bob: String,
    bob_id: String,
}

async fn world() -> World {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "prod").await;
    let billing = app.create_project(&admin, &ws, "billing").await;
    let search = app.create_project(&admin, &ws, "search").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    World {
        app,
        admin,
        org,
        ws,
        billing,
        search,
        bob,
        bob_id,
    }
}

impl World {
    async fn allowed(&self, token: &str, resource_type: &str, action: &str, node: &str) -> bool {
        self.allowed_on(token, None, resource_type, action, node, None)
            .await
    }

    async fn allowed_on(
        &self,
        token: &str,
        principal: Option<&str>,
        resource_type: &str,
        action: &str,
        node: &str,
        resource: Option<&str>,
    ) -> bool {
        let r = self
            .app
            .gql(
                Some(token),
                CHECK,
                json!({ "i": { "principalId": principal, "resourceType": resource_type, "action": action, "nodeId": node, "resourceId": resource } }),
            )
            .await;
        r["data"]["check"]["allowed"]
            .as_bool()
            .unwrap_or_else(|| panic!("check failed: {r}"))
    }

    async fn create_role(&self, name: &str, policies: Value) -> String {
        let r = self
            .app
            .gql(
                Some(&self.admin),
                "mutation($o: ID!, $n: String!, $p: [PolicyInput!]!) { createRole(input: {organizationId: $o, name: $n, policies: $p}) { role { id } } }",
                json!({ "o": self.org, "n": name, "p": policies }),
            )
            .await;
        data_str(&r, &["createRole", "role", "id"])
    }
}

#[tokio::test]
async fn bindings_inherit_down_and_never_sideways_or_up() {
    let w = world().await;
    assert!(
        !w.allowed(&w.bob, "apps", "read", &w.billing).await,
        "no role, no access"
    );
    w.app
        .grant(&w.admin, &w.bob_id, DEVELOPER, &w.billing)
        .await;
    assert!(w.allowed(&w.bob, "apps", "write", &w.billing).await);
    assert!(
        !w.allowed(&w.bob, "apps", "write", &w.search).await,
        "sibling project"
    );
    assert!(
        !w.allowed(&w.bob, "apps", "write", &w.ws).await,
        "the workspace above"
    );
    assert!(
        !w.allowed(&w.bob, "apps", "write", &w.org).await,
        "the organization above"
    );
    assert!(
        !w.allowed(&w.bob, "apps", "delete", &w.billing).await,
        "not in Developer"
    );

    w.app.grant(&w.admin, &w.bob_id, VIEWER, &w.ws).await;
    assert!(
        w.allowed(&w.bob, "apps", "read", &w.search).await,
        "inherited from the workspace"
    );
    assert!(!w.allowed(&w.bob, "apps", "write", &w.search).await);
}

#[tokio::test]
async fn deny_at_the_organization_beats_allow_at_a_project() {
    let w = world().await;
    let no_secrets = w
        .create_role(
            "No secrets",
            json!([{ "effect": "DENY", "permission": "secrets:*:*" }]),
        )
        .await;
    w.app.grant(&w.admin, &w.bob_id, ADMIN, &w.billing).await;
    assert!(w.allowed(&w.bob, "secrets", "read", &w.billing).await);
    w.app.grant(&w.admin, &w.bob_id, &no_secrets, &w.org).await;
    assert!(
        !w.allowed(&w.bob, "secrets", "read", &w.billing).await,
        "deny wins, even over Admin"
    );
    assert!(
        w.allowed(&w.bob, "apps", "delete", &w.billing).await,
        "the deny is only on secrets"
    );

    let r = w
        .app
        .gql(
            Some(&w.bob),
            CHECK,
            json!({ "i": { "resourceType": "secrets", "action": "read", "nodeId": w.billing } }),
        )
        .await;
    let reasons = r["data"]["check"]["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{r}");
    assert_eq!(reasons[0]["effect"], "DENY");
    assert_eq!(reasons[0]["roleName"], "No secrets");
    assert_eq!(reasons[0]["permission"], "secrets:*:*");
    assert_eq!(reasons[0]["nodeId"], w.org.as_str());
}

#[tokio::test]
async fn scoped_permissions_match_their_node_or_resource_only() {
    let w = world().await;
    let resource = uuid::Uuid::new_v4().to_string();
    let scoped = w
        .create_role(
            "Scoped",
            json!([
                { "effect": "ALLOW", "permission": format!("endpoints:{}:trigger", w.billing) },
                { "effect": "ALLOW", "permission": format!("secrets:{resource}:read") },
            ]),
        )
        .await;
    w.app.grant(&w.admin, &w.bob_id, &scoped, &w.org).await;
    assert!(
        w.allowed(&w.bob, "endpoints", "trigger", &w.billing).await,
        "the scoped node"
    );
    assert!(
        !w.allowed(&w.bob, "endpoints", "trigger", &w.search).await,
        "a sibling of it"
    );
    assert!(
        !w.allowed(&w.bob, "endpoints", "trigger", &w.ws).await,
        "its parent"
    );
    assert!(
        w.allowed_on(&w.bob, None, "secrets", "read", &w.search, Some(&resource))
            .await,
        "the scoped resource"
    );
    let other = uuid::Uuid::new_v4().to_string();
    assert!(
        !w.allowed_on(&w.bob, None, "secrets", "read", &w.search, Some(&other))
            .await
    );
    assert!(
        !w.allowed(&w.bob, "secrets", "read", &w.search).await,
        "no resource named"
    );
}

#[tokio::test]
async fn an_expired_binding_has_no_effect_without_any_job() {
    let w = world().await;
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = w
        .app
        .grant_raw(&w.admin, &w.bob_id, VIEWER, &w.org, Some(&soon))
        .await;
    assert_eq!(r["data"]["grantRole"]["binding"]["expired"], false, "{r}");
    assert!(w.allowed(&w.bob, "apps", "read", &w.billing).await);
    w.app.advance(std::time::Duration::from_secs(3601));
    assert!(!w.allowed(&w.bob, "apps", "read", &w.billing).await);
    let listed = w
        .app
        .gql(
            Some(&w.admin),
            "query($n: ID!) { roleBindings(nodeId: $n) { roleName expired } }",
            json!({ "n": w.org }),
        )
        .await;
    assert!(
        listed["data"]["roleBindings"]
            .as_array()
            .unwrap()
            .contains(&json!({ "roleName": "Viewer", "expired": true })),
        "{listed}"
    );
    let past = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let r = w
        .app
        .grant_raw(&w.admin, &w.bob_id, VIEWER, &w.org, Some(&past))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_suspended_member_is_denied_everything() {
    let w = world().await;
    w.app.grant(&w.admin, &w.bob_id, ADMIN, &w.org).await;
    assert!(w.allowed(&w.bob, "apps", "read", &w.billing).await);
    let store = &w.app.state.services.store();
    let org = uuid::Uuid::parse_str(&w.org).unwrap();
    let bob = uuid::Uuid::parse_str(&w.bob_id).unwrap();
    store
        .set_member_status(
            org,
            bob,
            iam_gateway::domain::MemberStatus::Suspended,
            &Default::default(),
        )
        .await
        .unwrap();
    let r = w
        .app
        .gql(
            Some(&w.bob),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": w.billing } }),
        )
        .await;
    assert_eq!(r["data"]["check"]["allowed"], false, "{r}");
    assert_eq!(r["data"]["check"]["reasons"][0]["kind"], "INACTIVE");
    // ...and the API refuses them too.
    let ws = w
        .app
        .gql(Some(&w.bob), "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"x\", name: \"X\"}) { workspace { id } } }", json!({ "o": w.org }))
        .await;
    assert_error(&ws, "NOT_FOUND");
    // An admin asking about them sees the same answer.
    assert!(
        !w.allowed_on(&w.admin, Some(&w.bob_id), "apps", "read", &w.billing, None)
            .await
    );
    store
        .set_member_status(
            org,
            bob,
            iam_gateway::domain::MemberStatus::Active,
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(w.allowed(&w.bob, "apps", "read", &w.billing).await);
}

#[tokio::test]
async fn check_many_answers_in_order() {
    let w = world().await;
    w.app
        .grant(&w.admin, &w.bob_id, DEVELOPER, &w.billing)
        .await;
    let inputs: Vec<Value> = [
        ("apps", "write", &w.billing, true),
        ("apps", "write", &w.search, false),
        ("secrets", "reference", &w.billing, true),
        ("secrets", "read", &w.billing, false),
        ("workspace", "read", &w.billing, true),
        ("apps", "read", &w.org, false),
    ]
    .iter()
    .map(|(t, a, n, _)| json!({ "resourceType": t, "action": a, "nodeId": n }))
    .collect();
    let r = w
        .app
        .gql(
            Some(&w.bob),
            "query($i: [CheckInput!]!) { checkMany(inputs: $i) { allowed revision } }",
            json!({ "i": inputs }),
        )
        .await;
    let got: Vec<bool> = r["data"]["checkMany"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|d| d["allowed"].as_bool().unwrap())
        .collect();
    assert_eq!(got, [true, false, true, false, true, false]);
    let revisions: Vec<&Value> = r["data"]["checkMany"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["revision"])
        .collect();
    assert!(
        revisions.windows(2).all(|p| p[0] == p[1]),
        "one snapshot for the batch"
    );

    let bad = w
        .app
        .gql(
            Some(&w.bob),
            "query($i: [CheckInput!]!) { checkMany(inputs: $i) { allowed } }",
            json!({ "i": [{ "resourceType": "apps", "action": "fly", "nodeId": w.org }] }),
        )
        .await;
    assert_error(&bad, "BAD_USER_INPUT");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fly"),
        "{bad}"
    );
}

#[tokio::test]
async fn explain_traces_every_binding() {
    let w = world().await;
    let no_apps = w
        .create_role(
            "No app deletes",
            json!([{ "effect": "DENY", "permission": "apps:*:delete" }]),
        )
        .await;
    w.app.grant(&w.admin, &w.bob_id, ADMIN, &w.ws).await;
    w.app.grant(&w.admin, &w.bob_id, &no_apps, &w.billing).await;
    w.app.grant(&w.admin, &w.bob_id, VIEWER, &w.search).await;
    let r = w
        .app
        .gql(
            Some(&w.admin),
            "query($i: CheckInput!) { explain(input: $i) { allowed decidedBy reasons { kind effect } bindings { roleName inheritedFrom status matched { permission effect } } } }",
            json!({ "i": { "principalId": w.bob_id, "resourceType": "apps", "action": "delete", "nodeId": w.billing } }),
        )
        .await;
    let e = &r["data"]["explain"];
    assert_eq!(e["allowed"], false, "{r}");
    assert_eq!(e["decidedBy"], "DENY");
    let mut bindings = e["bindings"].as_array().unwrap().clone();
    bindings.sort_by_key(|b| b["roleName"].as_str().unwrap().to_owned());
    assert_eq!(
        bindings,
        vec![
            json!({ "roleName": "Admin", "inheritedFrom": "WORKSPACE", "status": "APPLIES", "matched": [{ "permission": "*:*:*", "effect": "ALLOW" }] }),
            json!({ "roleName": "No app deletes", "inheritedFrom": "PROJECT", "status": "APPLIES", "matched": [{ "permission": "apps:*:delete", "effect": "DENY" }] }),
            json!({ "roleName": "Viewer", "inheritedFrom": null, "status": "NOT_ON_PATH", "matched": [] }),
        ]
    );
    // Asking about someone else needs members:*:read; bob (Admin of one workspace) lacks it.
    let nosy = w
        .app
        .gql(Some(&w.bob), "query($i: CheckInput!) { explain(input: $i) { allowed } }", json!({ "i": { "principalId": w.app.user_id(&w.admin).await, "resourceType": "apps", "action": "read", "nodeId": w.org } }))
        .await;
    assert_error(&nosy, "FORBIDDEN");
}

#[tokio::test]
async fn effective_permissions_and_accessible_nodes() {
    let w = world().await;
    w.app.grant(&w.admin, &w.bob_id, VIEWER, &w.billing).await;
    let r = w
        .app
        .gql(
            Some(&w.bob),
            "query($n: ID!) { effectivePermissions(nodeId: $n) { permission } }",
            json!({ "n": w.billing }),
        )
        .await;
    let mut got: Vec<String> = r["data"]["effectivePermissions"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|p| p["permission"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "analytics:*:view",
            "apps:*:read",
            "endpoints:*:read",
            "models:*:read",
            "sources:*:read",
            "tools:*:read",
            "workspace:*:read",
        ]
    );
    let at_search = w
        .app
        .gql(
            Some(&w.bob),
            "query($n: ID!) { effectivePermissions(nodeId: $n) { permission } }",
            json!({ "n": w.search }),
        )
        .await;
    assert_eq!(at_search["data"]["effectivePermissions"], json!([]));

    // Admin: every workspace and project, a page at a time.
    let q = "query($o: ID!, $a: String) { accessibleNodes(organizationId: $o, resourceType: \"apps\", action: \"write\", first: 2, after: $a) { nodes { ... on Workspace { path } ... on Project { path } } endCursor hasNextPage } }";
    let page1 = w
        .app
        .gql(Some(&w.admin), q, json!({ "o": w.org, "a": null }))
        .await;
    let p1 = &page1["data"]["accessibleNodes"];
    assert_eq!(
        p1["nodes"],
        json!([{ "path": "acme/prod" }, { "path": "acme/prod/billing" }]),
        "{page1}"
    );
    assert_eq!(p1["hasNextPage"], true);
    let page2 = w
        .app
        .gql(
            Some(&w.admin),
            q,
            json!({ "o": w.org, "a": p1["endCursor"] }),
        )
        .await;
    let p2 = &page2["data"]["accessibleNodes"];
    assert_eq!(p2["nodes"], json!([{ "path": "acme/prod/search" }]));
    assert_eq!(p2["hasNextPage"], false);
    // Bob, Viewer at billing only, may read apps there and nowhere else.
    let bob = w
        .app
        .gql(Some(&w.bob), "query($o: ID!) { accessibleNodes(organizationId: $o, resourceType: \"apps\", action: \"read\") { nodes { ... on Workspace { path } ... on Project { path } } } }", json!({ "o": w.org }))
        .await;
    assert_eq!(
        bob["data"]["accessibleNodes"]["nodes"],
        json!([{ "path": "acme/prod/billing" }])
    );
    // The path to it stays navigable; the sibling stays hidden.
    let tree = w
        .app
        .gql(
            Some(&w.bob),
            "{ organization(slug: \"acme\") { workspaces { path projects { path } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        tree["data"]["organization"]["workspaces"],
        json!([{ "path": "acme/prod", "projects": [{ "path": "acme/prod/billing" }] }])
    );
}
