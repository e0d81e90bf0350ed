//! Organizations, workspaces and projects: create, rename, delete, list, find by id and path.

use serde_json::json;

use crate::common::{TestApp, assert_error, data_str};

#[tokio::test]
async fn hierarchy_crud_and_lookup() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let prod = app.create_workspace(&t, &org, "prod").await;
    let dev = app.create_workspace(&t, &org, "dev").await;
    let billing = app.create_project(&t, &prod, "billing").await;
    app.create_project(&t, &prod, "search").await;

    let tree = app
        .gql(
            Some(&t),
            "query($id: ID!) { organization(id: $id) { slug path workspaces { slug path projects { slug path } } } }",
            json!({ "id": org }),
        )
        .await;
    assert_eq!(
        tree["data"]["organization"],
        json!({
            "slug": "acme",
            "path": "acme",
            "workspaces": [
                { "slug": "dev", "path": "acme/dev", "projects": [] },
                { "slug": "prod", "path": "acme/prod", "projects": [
                    { "slug": "billing", "path": "acme/prod/billing" },
                    { "slug": "search", "path": "acme/prod/search" },
                ]},
            ]
        })
    );

    let by_slug = app
        .gql(
            Some(&t),
            "{ organization(slug: \"acme\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data_str(&by_slug, &["organization", "id"]), org);

    for (path, typename, id) in [
        ("acme", "Organization", &org),
        ("acme/prod", "Workspace", &prod),
        ("acme/prod/billing", "Project", &billing),
    ] {
        let r = app
            .gql(
                Some(&t),
                "query($p: String!) { node(path: $p) { __typename ... on Organization { id } ... on Workspace { id } ... on Project { id } } }",
                json!({ "p": path }),
            )
            .await;
        assert_eq!(r["data"]["node"]["__typename"], typename, "{r}");
        assert_eq!(&data_str(&r, &["node", "id"]), id);
    }
    let missing = app
        .gql(
            Some(&t),
            "{ node(path: \"acme/prod/nope\") { __typename } }",
            json!({}),
        )
        .await;
    assert_error(&missing, "NOT_FOUND");
    let too_deep = app
        .gql(
            Some(&t),
            "{ node(path: \"acme/prod/billing/x\") { __typename } }",
            json!({}),
        )
        .await;
    assert_error(&too_deep, "BAD_USER_INPUT");

    let ws = app
        .gql(
            Some(&t),
            "query($id: ID!) { workspace(id: $id) { slug organization { slug } } }",
            json!({ "id": dev }),
        )
        .await;
    assert_eq!(
        ws["data"]["workspace"],
        json!({ "slug": "dev", "organization": { "slug": "acme" } })
    );
    let p = app
        .gql(
            Some(&t),
            "query($id: ID!) { project(id: $id) { path workspace { path } } }",
            json!({ "id": billing }),
        )
        .await;
    assert_eq!(
        p["data"]["project"],
        json!({ "path": "acme/prod/billing", "workspace": { "path": "acme/prod" } })
    );
    // A project id is not a workspace id.
    let wrong_kind = app
        .gql(
            Some(&t),
            "query($id: ID!) { workspace(id: $id) { slug } }",
            json!({ "id": billing }),
        )
        .await;
    assert_error(&wrong_kind, "NOT_FOUND");

    let renamed = app
        .gql(
            Some(&t),
            "mutation($id: ID!) { updateWorkspace(input: {id: $id, slug: \"production\", name: \"Production\"}) { workspace { slug name path } } }",
            json!({ "id": prod }),
        )
        .await;
    assert_eq!(
        renamed["data"]["updateWorkspace"]["workspace"],
        json!({ "slug": "production", "name": "Production", "path": "acme/production" })
    );
    let renamed_p = app
        .gql(
            Some(&t),
            "mutation($id: ID!) { updateProject(input: {id: $id, name: \"Billing v2\"}) { project { slug name path } } }",
            json!({ "id": billing }),
        )
        .await;
    assert_eq!(
        renamed_p["data"]["updateProject"]["project"],
        json!({ "slug": "billing", "name": "Billing v2", "path": "acme/production/billing" })
    );

    let orgs = app
        .gql(
            Some(&t),
            "{ organizations { slug } me { organizations { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(orgs["data"]["organizations"], json!([{ "slug": "acme" }]));
    assert_eq!(
        orgs["data"]["me"]["organizations"],
        json!([{ "slug": "acme" }])
    );
}

#[tokio::test]
async fn deleting_a_workspace_deletes_its_projects() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let ws = app.create_workspace(&t, &org, "prod").await;
    let p = app.create_project(&t, &ws, "billing").await;

    let del_p = app
        .gql(
            Some(&t),
            "mutation($id: ID!) { deleteProject(input: {id: $id}) { deletedId } }",
            json!({ "id": p }),
        )
        .await;
    assert_eq!(data_str(&del_p, &["deleteProject", "deletedId"]), p);
    let gone = app
        .gql(
            Some(&t),
            "query($id: ID!) { project(id: $id) { id } }",
            json!({ "id": p }),
        )
        .await;
    assert_error(&gone, "NOT_FOUND");

    let p2 = app.create_project(&t, &ws, "search").await;
    let del = app
        .gql(
            Some(&t),
            "mutation($id: ID!) { deleteWorkspace(input: {id: $id}) { deletedId } }",
            json!({ "id": ws }),
        )
        .await;
    assert_eq!(data_str(&del, &["deleteWorkspace", "deletedId"]), ws);
    for (q, id) in [
        ("query($id: ID!) { workspace(id: $id) { id } }", &ws),
        ("query($id: ID!) { project(id: $id) { id } }", &p2),
    ] {
        assert_error(
            &app.gql(Some(&t), q, json!({ "id": id })).await,
            "NOT_FOUND",
        );
    }
    let again = app
        .gql(
            Some(&t),
            "mutation($id: ID!) { deleteWorkspace(input: {id: $id}) { deletedId } }",
            json!({ "id": ws }),
        )
        .await;
    assert_error(&again, "NOT_FOUND");
    // The slug is free again.
    app.create_workspace(&t, &org, "prod").await;
}

#[tokio::test]
async fn slugs_are_validated_and_unique_among_siblings() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let org = app.create_org(&t, "acme").await;
    let prod = app.create_workspace(&t, &org, "prod").await;
    let dev = app.create_workspace(&t, &org, "dev").await;
    app.create_project(&t, &prod, "billing").await;
    // The same project slug in a sibling workspace is fine.
    app.create_project(&t, &dev, "billing").await;

    let ws_q = "mutation($o: ID!, $s: String!, $n: String!) { createWorkspace(input: {organizationId: $o, slug: $s, name: $n}) { workspace { id } } }";
    for bad in [
        "",
        "Prod",
        "has space",
        "-lead",
        "trail-",
        "under_score",
        &"x".repeat(64),
    ] {
        let r = app
            .gql(Some(&t), ws_q, json!({ "o": org, "s": bad, "n": "W" }))
            .await;
        assert_error(&r, "BAD_USER_INPUT");
        assert_eq!(r["errors"][0]["extensions"]["field"], "slug");
    }
    let no_name = app
        .gql(Some(&t), ws_q, json!({ "o": org, "s": "ok", "n": " " }))
        .await;
    assert_error(&no_name, "BAD_USER_INPUT");
    assert_eq!(no_name["errors"][0]["extensions"]["field"], "name");

    let dup = app
        .gql(Some(&t), ws_q, json!({ "o": org, "s": "prod", "n": "W" }))
        .await;
    assert_error(&dup, "CONFLICT");

    let p_q = "mutation($w: ID!, $s: String!) { createProject(input: {workspaceId: $w, slug: $s, name: \"P\"}) { project { id } } }";
    assert_error(
        &app.gql(Some(&t), p_q, json!({ "w": prod, "s": "billing" }))
            .await,
        "CONFLICT",
    );
    assert_error(
        &app.gql(Some(&t), p_q, json!({ "w": prod, "s": "Billing" }))
            .await,
        "BAD_USER_INPUT",
    );

    let rename = app
        .gql(
            Some(&t),
            "mutation($id: ID!) { updateWorkspace(input: {id: $id, slug: \"prod\"}) { workspace { id } } }",
            json!({ "id": dev }),
        )
        .await;
    assert_error(&rename, "CONFLICT");
    let nothing = app
        .gql(
            Some(&t),
            "mutation($id: ID!) { updateWorkspace(input: {id: $id}) { workspace { id } } }",
            json!({ "id": dev }),
        )
        .await;
    assert_error(&nothing, "BAD_USER_INPUT");

    let org_q = "mutation($s: String!) { createOrganization(input: {slug: $s, name: \"Acme\"}) { organization { id } } }";
    assert_error(
        &app.gql(Some(&t), org_q, json!({ "s": "acme" })).await,
        "CONFLICT",
    );
    assert_error(
        &app.gql(Some(&t), org_q, json!({ "s": "ACME" })).await,
        "BAD_USER_INPUT",
    );

    let bad_id = app
        .gql(
            Some(&t),
            "{ workspace(id: \"not-a-uuid\") { id } }",
            json!({}),
        )
        .await;
    assert_error(&bad_id, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_viewer_can_read_but_not_change() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "prod").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;

    // A member with no role sees the organization, and nothing in it.
    let nothing = app
        .gql(
            Some(&bob),
            "{ node(path: \"acme/prod\") { __typename } }",
            json!({}),
        )
        .await;
    assert_error(&nothing, "NOT_FOUND");
    let listed = app
        .gql(
            Some(&bob),
            "{ organization(slug: \"acme\") { slug workspaces { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"],
        json!({ "slug": "acme", "workspaces": [] })
    );
    app.grant(&admin, &bob_id, crate::common::VIEWER, &org)
        .await;

    let read = app
        .gql(
            Some(&bob),
            "{ node(path: \"acme/prod\") { ... on Workspace { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data_str(&read, &["node", "id"]), ws);

    let before = app.audit_actions().await.len();
    let attempts = [
        (
            "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"dev\", name: \"D\"}) { workspace { id } } }",
            json!({ "o": org }),
        ),
        (
            "mutation($w: ID!) { updateWorkspace(input: {id: $w, name: \"X\"}) { workspace { id } } }",
            json!({ "w": ws }),
        ),
        (
            "mutation($w: ID!) { deleteWorkspace(input: {id: $w}) { deletedId } }",
            json!({ "w": ws }),
        ),
        (
            "mutation($w: ID!) { createProject(input: {workspaceId: $w, slug: \"p\", name: \"P\"}) { project { id } } }",
            json!({ "w": ws }),
        ),
        (
            "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"eve@example.com\", roles: []}) { token } }",
            json!({ "o": org }),
        ),
        (
            "query($o: ID!) { organization(id: $o) { invitations { id } } }",
            json!({ "o": org }),
        ),
        (
            "query($o: ID!) { organization(id: $o) { auditEvents { id } } }",
            json!({ "o": org }),
        ),
    ];
    for (q, vars) in attempts {
        let r = app.gql(Some(&bob), q, vars).await;
        assert_eq!(
            crate::common::error_code(&r).as_deref(),
            Some("FORBIDDEN"),
            "{q}: {r}"
        );
    }
    assert_eq!(
        app.audit_actions().await.len(),
        before,
        "refused changes write no audit rows"
    );
}
