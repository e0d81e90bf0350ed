//! Every mutation writes one audit event in its own transaction; a failed one writes none.
//! (Searching the trail: `audit_search.rs`.)

use serde_json::json;

use crate::common::{PASSWORD, TestApp, assert_error, data_str};

#[tokio::test]
async fn each_mutation_writes_its_audit_event() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    assert_eq!(app.audit_actions().await, ["auth.sign_in", "user.sign_up"]);

    let org = app.create_org(&t, "acme").await;
    let ws = app.create_workspace(&t, &org, "prod").await;
    let p = app.create_project(&t, &ws, "billing").await;
    app.gql(Some(&t), "mutation($id: ID!) { updateWorkspace(input: {id: $id, name: \"Prod!\"}) { workspace { id } } }", json!({ "id": ws })).await;
    app.gql(Some(&t), "mutation($id: ID!) { updateProject(input: {id: $id, slug: \"bills\"}) { project { id } } }", json!({ "id": p })).await;
    let invite = app.invite(&t, &org, "bob@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    app.gql(
        Some(&bob),
        "mutation($t: String!) { acceptInvitation(input: {token: $t}) { organization { id } } }",
        json!({ "t": invite }),
    )
    .await;
    app.gql(
        Some(&t),
        "mutation($id: ID!) { deleteProject(input: {id: $id}) { deletedId } }",
        json!({ "id": p }),
    )
    .await;
    app.gql(
        Some(&t),
        "mutation($id: ID!) { deleteWorkspace(input: {id: $id}) { deletedId } }",
        json!({ "id": ws }),
    )
    .await;
    app.gql(None, "mutation($p: String!) { signIn(input: {email: \"ada@example.com\", password: $p}) { token } }", json!({ "p": PASSWORD })).await;
    app.gql(Some(&bob), "mutation { signOut { signedOut } }", json!({}))
        .await;

    let mut actions = app.audit_actions().await;
    actions.reverse();
    assert_eq!(
        actions,
        [
            "user.sign_up",
            "auth.sign_in",
            "organization.create",
            "workspace.create",
            "project.create",
            "workspace.update",
            "project.update",
            "invitation.create",
            "user.sign_up",
            "auth.sign_in",
            "invitation.accept",
            "project.delete",
            "workspace.delete",
            "auth.sign_in",
            "auth.sign_out",
        ]
    );

    // The organization's trail, as its admin reads it through the API.
    let trail = app
        .gql(
            Some(&t),
            "query($o: ID!) { organization(id: $o) { auditEvents(limit: 100) { action actorId targetType targetId result before after ip userAgent requestId createdAt } } }",
            json!({ "o": org }),
        )
        .await;
    let events = trail["data"]["organization"]["auditEvents"]
        .as_array()
        .expect("events");
    // The nine changes, and the account events of its members since they joined (Ada's
    // second sign-in, Bob's sign-out); the sign-ups and first sign-ins came before any
    // membership and belong to no organization.
    assert_eq!(events.len(), 11, "{trail}");
    let account: Vec<&str> = events
        .iter()
        .filter(|e| e["targetType"] == "session")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(account, ["auth.sign_out", "auth.sign_in"], "{trail}");
    let ws_update = events
        .iter()
        .find(|e| e["action"] == "workspace.update")
        .expect("workspace.update");
    assert_eq!(ws_update["targetId"], ws.as_str());
    assert_eq!(ws_update["result"], "success");
    assert_eq!(ws_update["before"]["name"], "Workspace");
    assert_eq!(ws_update["after"]["name"], "Prod!");
    assert_eq!(ws_update["ip"], "127.0.0.1");
    assert_eq!(ws_update["userAgent"], "iam-gateway-tests/1.0");
    assert!(
        ws_update["requestId"]
            .as_str()
            .is_some_and(|r| r.len() >= 32),
        "{ws_update}"
    );
    let me = app.gql(Some(&t), "{ me { id } }", json!({})).await;
    assert_eq!(ws_update["actorId"], data_str(&me, &["me", "id"]).as_str());
}

#[tokio::test]
async fn failed_mutations_write_no_audit_event() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let ws = app.create_workspace(&t, &org, "prod").await;
    app.create_project(&t, &ws, "billing").await;
    let before = app.audit_actions().await;

    let failures = [
        (
            "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"prod\", name: \"Dup\"}) { workspace { id } } }",
            json!({ "o": org }),
            "CONFLICT",
        ),
        (
            "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"Bad Slug\", name: \"X\"}) { workspace { id } } }",
            json!({ "o": org }),
            "BAD_USER_INPUT",
        ),
        (
            "mutation($w: ID!) { createProject(input: {workspaceId: $w, slug: \"billing\", name: \"Dup\"}) { project { id } } }",
            json!({ "w": ws }),
            "CONFLICT",
        ),
        (
            "mutation { createOrganization(input: {slug: \"acme\", name: \"Dup\"}) { organization { id } } }",
            json!({}),
            "CONFLICT",
        ),
        (
            "mutation { acceptInvitation(input: {token: \"iam_i_nope\"}) { organization { id } } }",
            json!({}),
            "NOT_FOUND",
        ),
        (
            "mutation($p: String!) { signUp(input: {email: \"ada@example.com\", password: $p, name: \"Again\"}) { token } }",
            json!({ "p": PASSWORD }),
            "CONFLICT",
        ),
        (
            "mutation($id: ID!) { deleteWorkspace(input: {id: $id}) { deletedId } }",
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
            "NOT_FOUND",
        ),
    ];
    for (q, vars, code) in failures {
        let token = if q.contains("signUp") || q.contains("signIn") {
            None
        } else {
            Some(t.as_str())
        };
        assert_error(&app.gql(token, q, vars).await, code);
    }
    assert_eq!(
        app.audit_actions().await,
        before,
        "a failed mutation must leave no audit row (failed sign-ins are the exception: they are audited on purpose, see accounts.rs)"
    );
}
