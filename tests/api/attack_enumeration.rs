//! Attacks that probe what the gateway should not tell (issue #12, hole 11): what exists in
//! another tenant (a missing node and a hidden one get one answer), and the internals behind it
//! (an SMTP server's own words).

use serde_json::json;

use crate::common::{TestApp, assert_error};

#[tokio::test]
async fn node_by_path_does_not_tell_a_hidden_node_from_a_missing_one() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "secret-ws").await;
    app.create_project(&admin, &ws, "launch").await;
    let outsider = app.sign_up("eve@example.com").await;
    app.create_org(&outsider, "evil").await;

    let ask = |path: &'static str| {
        let app = &app;
        let outsider = &outsider;
        async move {
            let r = app
                .gql(
                    Some(outsider),
                    "query($p: String!) { node(path: $p) { __typename } }",
                    json!({ "p": path }),
                )
                .await;
            assert_error(&r, "NOT_FOUND");
            // The same words, with the path the caller gave in place of the one they probed.
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace(path, "<path>")
        }
    };
    let hidden = [
        ask("acme").await,
        ask("acme/secret-ws").await,
        ask("acme/secret-ws/launch").await,
    ];
    let missing = [
        ask("acmf").await,
        ask("acme/no-such-ws").await,
        ask("acme/secret-ws/no-such").await,
    ];
    assert_eq!(hidden, missing);
}

#[tokio::test]
async fn a_failed_invitation_email_does_not_echo_the_smtp_servers_words() {
    // An SMTP address nothing listens on: the transport's error names the host and the OS.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = TestApp::start_with(move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let r = app
        .gql(
            Some(&admin),
            "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"bob@example.com\", roles: []}) { emailSent emailError acceptUrl } }",
            json!({ "o": org }),
        )
        .await;
    let payload = &r["data"]["inviteMember"];
    assert_eq!(payload["emailSent"], false, "{r}");
    let said = payload["emailError"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        !said.contains("127.0.0.1")
            && !said.contains(&port.to_string())
            && !said.contains("os error"),
        "internal detail reached the client: {said}"
    );
    assert!(
        payload["acceptUrl"].is_string(),
        "the link is still handed over: {r}"
    );
}

/// One rule decides whether a node is visible (`graphql::access::can_see`): a workspace that a
/// member sees because they may read a project in it is FORBIDDEN to change, not NOT_FOUND,
/// wherever they meet it — and a sibling workspace they cannot see is NOT_FOUND everywhere.
#[tokio::test]
async fn a_node_is_visible_by_one_rule_everywhere() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "prod").await;
    let project = app.create_project(&admin, &ws, "billing").await;
    let other = app.create_workspace(&admin, &org, "staging").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    app.grant(&admin, &bob_id, crate::common::VIEWER, &project)
        .await;

    // Bob sees the workspace of his project...
    let seen = app
        .gql(
            Some(&bob),
            "query($w: ID!) { workspace(id: $w) { slug } }",
            json!({ "w": ws }),
        )
        .await;
    assert_eq!(seen["data"]["workspace"]["slug"], "prod", "{seen}");
    // ...so changing it is FORBIDDEN, not NOT_FOUND.
    let rename = "mutation($w: ID!) { updateWorkspace(input: { id: $w, name: \"Mine\" }) { workspace { id } } }";
    let r = app.gql(Some(&bob), rename, json!({ "w": ws })).await;
    assert_error(&r, "FORBIDDEN");
    // The sibling he cannot see is NOT_FOUND both ways.
    let hidden = app
        .gql(
            Some(&bob),
            "query($w: ID!) { workspace(id: $w) { slug } }",
            json!({ "w": other }),
        )
        .await;
    assert_error(&hidden, "NOT_FOUND");
    let r = app.gql(Some(&bob), rename, json!({ "w": other })).await;
    assert_error(&r, "NOT_FOUND");
}
