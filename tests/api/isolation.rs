//! Nothing of one organization is visible to, or changeable by, someone outside it.

use serde_json::json;

use crate::common::{TestApp, assert_error, data_str, error_code};

#[tokio::test]
async fn outsiders_see_and_change_nothing() {
    let app = TestApp::start().await;
    let alice = app.sign_up("alice@example.com").await;
    let org_a = app.create_org(&alice, "acme").await;
    let ws_a = app.create_workspace(&alice, &org_a, "prod").await;
    let p_a = app.create_project(&alice, &ws_a, "billing").await;

    let bob = app.sign_up("bob@example.com").await;
    let org_b = app.create_org(&bob, "bobco").await;

    let orgs = app
        .gql(Some(&bob), "{ organizations { slug } }", json!({}))
        .await;
    assert_eq!(orgs["data"]["organizations"], json!([{ "slug": "bobco" }]));

    let before = app.audit_actions().await.len();
    let attempts = [
        (
            "query($a: ID!) { organization(id: $a) { name } }",
            json!({ "a": org_a }),
        ),
        ("{ organization(slug: \"acme\") { name } }", json!({})),
        ("{ node(path: \"acme\") { __typename } }", json!({})),
        ("{ node(path: \"acme/prod\") { __typename } }", json!({})),
        (
            "{ node(path: \"acme/prod/billing\") { __typename } }",
            json!({}),
        ),
        (
            "query($w: ID!) { workspace(id: $w) { name } }",
            json!({ "w": ws_a }),
        ),
        (
            "query($p: ID!) { project(id: $p) { name } }",
            json!({ "p": p_a }),
        ),
        (
            "mutation($a: ID!) { createWorkspace(input: {organizationId: $a, slug: \"x\", name: \"X\"}) { workspace { id } } }",
            json!({ "a": org_a }),
        ),
        (
            "mutation($w: ID!) { updateWorkspace(input: {id: $w, name: \"Mine\"}) { workspace { id } } }",
            json!({ "w": ws_a }),
        ),
        (
            "mutation($w: ID!) { deleteWorkspace(input: {id: $w}) { deletedId } }",
            json!({ "w": ws_a }),
        ),
        (
            "mutation($w: ID!) { createProject(input: {workspaceId: $w, slug: \"x\", name: \"X\"}) { project { id } } }",
            json!({ "w": ws_a }),
        ),
        (
            "mutation($p: ID!) { updateProject(input: {id: $p, name: \"Mine\"}) { project { id } } }",
            json!({ "p": p_a }),
        ),
        (
            "mutation($p: ID!) { deleteProject(input: {id: $p}) { deletedId } }",
            json!({ "p": p_a }),
        ),
        (
            "mutation($a: ID!) { inviteMember(input: {organizationId: $a, email: \"bob2@example.com\", roles: []}) { token } }",
            json!({ "a": org_a }),
        ),
    ];
    for (q, vars) in attempts {
        let r = app.gql(Some(&bob), q, vars).await;
        let code = error_code(&r);
        assert!(
            matches!(code.as_deref(), Some("NOT_FOUND" | "FORBIDDEN")),
            "{q} must be refused: {r}"
        );
        assert_error(&r, code.as_deref().unwrap_or_default());
        assert!(
            !r.to_string().contains("billing") && !r.to_string().contains("\"prod\""),
            "{r}"
        );
    }
    assert_eq!(app.audit_actions().await.len(), before);

    // Alice's tree is untouched.
    let tree = app
        .gql(
            Some(&alice),
            "{ node(path: \"acme/prod/billing\") { ... on Project { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data_str(&tree, &["node", "name"]), "Project");

    // An admin of one organization cannot reach into another with their own ids either.
    let cross = app
        .gql(
            Some(&alice),
            "mutation($b: ID!) { createWorkspace(input: {organizationId: $b, slug: \"x\", name: \"X\"}) { workspace { id } } }",
            json!({ "b": org_b }),
        )
        .await;
    assert_error(&cross, "NOT_FOUND");
}
