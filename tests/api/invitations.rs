//! Invitations: accept, reuse, expiry, wrong email.

use serde_json::json;

use crate::common::{TestApp, assert_error, data_str};

const ACCEPT: &str = "mutation($t: String!) { acceptInvitation(input: {token: $t}) { organization { slug } invitation { status acceptedAt email } } }";

#[tokio::test]
async fn invite_accept_and_no_reuse() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let invited = app
        .gql(
            Some(&admin),
            "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"Bob@Example.com\", roles: []}) { token acceptUrl invitation { email status organizationId } } }",
            json!({ "o": org }),
        )
        .await;
    let token = data_str(&invited, &["inviteMember", "token"]);
    assert!(token.starts_with("iam_i_"));
    assert!(
        data_str(&invited, &["inviteMember", "acceptUrl"]).ends_with(&format!("token={token}"))
    );
    assert_eq!(
        invited["data"]["inviteMember"]["invitation"],
        json!({ "email": "bob@example.com", "status": "PENDING", "organizationId": org })
    );

    let bob = app.sign_up("bob@example.com").await;
    let ok = app.gql(Some(&bob), ACCEPT, json!({ "t": token })).await;
    assert_eq!(
        data_str(&ok, &["acceptInvitation", "organization", "slug"]),
        "acme"
    );
    assert_eq!(
        ok["data"]["acceptInvitation"]["invitation"]["status"],
        "ACCEPTED"
    );

    let members = app
        .gql(
            Some(&admin),
            "query($o: ID!) { organization(id: $o) { members { members { user { email } status } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        members["data"]["organization"]["members"]["members"],
        json!([
            { "user": { "email": "admin@example.com" }, "status": "ACTIVE" },
            { "user": { "email": "bob@example.com" }, "status": "ACTIVE" },
        ])
    );

    let again = app.gql(Some(&bob), ACCEPT, json!({ "t": token })).await;
    assert_error(&again, "BAD_USER_INPUT");
    assert!(
        again["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );

    let listed = app
        .gql(
            Some(&admin),
            "query($o: ID!) { organization(id: $o) { invitations { email status } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"]["invitations"],
        json!([{ "email": "bob@example.com", "status": "ACCEPTED" }])
    );

    // Inviting someone who is already a member is a conflict.
    let dup = app
        .gql(Some(&admin), "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"bob@example.com\", roles: []}) { token } }", json!({ "o": org }))
        .await;
    assert_error(&dup, "CONFLICT");
}

#[tokio::test]
async fn wrong_email_and_wrong_token_are_refused() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let token = app.invite(&admin, &org, "bob@example.com").await;

    let eve = app.sign_up("eve@example.com").await;
    let wrong = app.gql(Some(&eve), ACCEPT, json!({ "t": token })).await;
    assert_error(&wrong, "BAD_USER_INPUT");
    assert!(
        wrong["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("another email")
    );
    let eve_orgs = app
        .gql(Some(&eve), "{ organizations { slug } }", json!({}))
        .await;
    assert_eq!(eve_orgs["data"]["organizations"], json!([]));

    let forged = app
        .gql(Some(&eve), ACCEPT, json!({ "t": "iam_i_forged" }))
        .await;
    assert_error(&forged, "NOT_FOUND");

    // The rightful invitee can still accept after the failed attempts.
    let bob = app.sign_up("bob@example.com").await;
    let ok = app.gql(Some(&bob), ACCEPT, json!({ "t": token })).await;
    assert_eq!(
        data_str(&ok, &["acceptInvitation", "organization", "slug"]),
        "acme"
    );
}

#[tokio::test]
async fn a_newer_invitation_replaces_the_older_one() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let first = app.invite(&admin, &org, "bob@example.com").await;
    let second = app.invite(&admin, &org, "bob@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    let old = app.gql(Some(&bob), ACCEPT, json!({ "t": first })).await;
    assert_error(&old, "BAD_USER_INPUT");
    assert!(
        old["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let new = app.gql(Some(&bob), ACCEPT, json!({ "t": second })).await;
    assert_eq!(
        data_str(&new, &["acceptInvitation", "organization", "slug"]),
        "acme"
    );
}

#[tokio::test]
async fn expired_invitation_is_refused() {
    let app =
        TestApp::start_with(|c| c.invitation_ttl = std::time::Duration::from_secs(3600)).await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let token = app.invite(&admin, &org, "bob@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    app.advance(std::time::Duration::from_secs(3601));
    let r = app.gql(Some(&bob), ACCEPT, json!({ "t": token })).await;
    assert_error(&r, "BAD_USER_INPUT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|a| a == "invitation.expired_on_use")
    );
    // Signing up through the expired link creates nothing.
    let r = app
        .gql(None, "mutation($t: String!) { signUpWithInvitation(input: {token: $t, name: \"Eve\", password: \"a long enough password\"}) { token } }", json!({ "t": token }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    let listed = app
        .gql(
            Some(&admin),
            "query($o: ID!) { organization(id: $o) { invitations { status } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"]["invitations"],
        json!([{ "status": "EXPIRED" }])
    );
    let bob_orgs = app
        .gql(Some(&bob), "{ organizations { slug } }", json!({}))
        .await;
    assert_eq!(bob_orgs["data"]["organizations"], json!([]));
}

#[tokio::test]
async fn concurrent_accepts_of_one_token_admit_exactly_one() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let token = app.invite(&admin, &org, "bob@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    // Several sessions of the invitee race to accept the same token.
    let mut sessions = vec![bob];
    for _ in 0..5 {
        let r = app
            .gql(None, "mutation($p: String!) { signIn(input: {email: \"bob@example.com\", password: $p}) { token } }", json!({ "p": crate::common::PASSWORD }))
            .await;
        sessions.push(data_str(&r, &["signIn", "token"]));
    }
    let attempts = sessions
        .iter()
        .map(|s| app.gql(Some(s), ACCEPT, json!({ "t": token })));
    let results = futures::future::join_all(attempts).await;
    let wins = results
        .iter()
        .filter(|r| r["data"]["acceptInvitation"]["invitation"]["status"] == "ACCEPTED")
        .count();
    assert_eq!(wins, 1, "{results:?}");
    for r in results.iter().filter(|r| r["errors"].is_array()) {
        let code = crate::common::error_code(r);
        assert!(
            matches!(code.as_deref(), Some("BAD_USER_INPUT" | "CONFLICT")),
            "{r}"
        );
    }
    let members = app
        .gql(
            Some(&admin),
            "query($o: ID!) { organization(id: $o) { members { members { user { email } } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        members["data"]["organization"]["members"]["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
