//! Sign-up, sign-in, sign-out, sessions.

use serde_json::json;

use crate::common::{PASSWORD, TestApp, assert_error, data_str};

const ME: &str = "{ me { id email name session { method ip userAgent expiresAt } } }";

#[tokio::test]
async fn sign_up_sign_in_me_and_sign_out() {
    let app = TestApp::start().await;
    let token = app.sign_up("Ada@Example.com").await;

    let me = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(data_str(&me, &["me", "email"]), "ada@example.com");
    assert_eq!(data_str(&me, &["me", "session", "method"]), "password");
    assert_eq!(data_str(&me, &["me", "session", "ip"]), "127.0.0.1");
    assert_eq!(
        data_str(&me, &["me", "session", "userAgent"]),
        "iam-gateway-tests/1.0"
    );

    let signed_in = app
        .gql(
            None,
            "mutation($p: String!) { signIn(input: {email: \" ADA@example.com \", password: $p}) { token user { email } } }",
            json!({ "p": PASSWORD }),
        )
        .await;
    let second = data_str(&signed_in, &["signIn", "token"]);
    assert_ne!(second, token, "each sign-in opens its own session");

    let out = app
        .gql(
            Some(&token),
            "mutation { signOut { signedOut } }",
            json!({}),
        )
        .await;
    assert_eq!(out["data"]["signOut"]["signedOut"], true);

    // The signed-out session is dead; the other one still works.
    assert_error(
        &app.gql(Some(&token), ME, json!({})).await,
        "UNAUTHENTICATED",
    );
    let still = app.gql(Some(&second), ME, json!({})).await;
    assert_eq!(data_str(&still, &["me", "email"]), "ada@example.com");
}

#[tokio::test]
async fn only_the_token_hash_is_stored() {
    let app = TestApp::start().await;
    let token = app.sign_up("hash@example.com").await;
    assert!(token.starts_with("iam_s_"));
    // The store finds the session by the token's hash, never by the token itself.
    let by_plain = app
        .state
        .services
        .store()
        .session_by_token_hash(&token, chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        by_plain,
        iam_gateway::store::SessionLookup::Unknown
    ));
    let by_hash = app
        .state
        .services
        .store()
        .session_by_token_hash(&iam_gateway::auth::token::hash(&token), chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        by_hash,
        iam_gateway::store::SessionLookup::Valid(..)
    ));
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::start().await;
    app.sign_up("ada@example.com").await;
    let q =
        "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }";

    let wrong = app
        .gql(
            None,
            q,
            json!({ "e": "ada@example.com", "p": "not the password" }),
        )
        .await;
    assert_error(&wrong, "UNAUTHENTICATED");
    let unknown = app
        .gql(None, q, json!({ "e": "nobody@example.com", "p": PASSWORD }))
        .await;
    assert_error(&unknown, "UNAUTHENTICATED");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    let malformed = app
        .gql(None, q, json!({ "e": "not-an-email", "p": PASSWORD }))
        .await;
    assert_error(&malformed, "UNAUTHENTICATED");
}

#[tokio::test]
async fn sign_up_validates_input_and_rejects_duplicates() {
    let app = TestApp::start().await;
    let q = "mutation($e: String!, $p: String!, $n: String!) { signUp(input: {email: $e, password: $p, name: $n}) { token } }";
    let cases = [
        (json!({ "e": "bad", "p": PASSWORD, "n": "A" }), "email"),
        (
            json!({ "e": "a@example.com", "p": "short", "n": "A" }),
            "password",
        ),
        (
            json!({ "e": "a@example.com", "p": "a@example.com", "n": "A" }),
            "password",
        ),
        (
            json!({ "e": "a@example.com", "p": PASSWORD, "n": "  " }),
            "name",
        ),
    ];
    for (vars, field) in cases {
        let r = app.gql(None, q, vars).await;
        assert_error(&r, "BAD_USER_INPUT");
        assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
    }
    app.sign_up("a@example.com").await;
    let dup = app
        .gql(
            None,
            q,
            json!({ "e": "A@EXAMPLE.COM", "p": PASSWORD, "n": "A" }),
        )
        .await;
    assert_error(&dup, "CONFLICT");
}

#[tokio::test]
async fn sign_up_can_be_turned_off() {
    let app = TestApp::start_with(|c| c.allow_signup = false).await;
    let r = app
        .gql(
            None,
            "mutation($p: String!) { signUp(input: {email: \"a@example.com\", password: $p, name: \"A\"}) { token } }",
            json!({ "p": PASSWORD }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    assert!(
        app.state
            .services
            .store()
            .user_with_password(&iam_gateway::domain::Email::parse("e", "a@example.com").unwrap())
            .await
            .unwrap()
            .is_none(),
        "no account may be created"
    );
}

#[tokio::test]
async fn expired_session_is_rejected() {
    let app = TestApp::start_with(|c| c.session_ttl = std::time::Duration::from_secs(3600)).await;
    let token = app.sign_up("short@example.com").await;
    let ok = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(data_str(&ok, &["me", "email"]), "short@example.com");
    app.advance(std::time::Duration::from_secs(3601));
    let expired = app.gql(Some(&token), ME, json!({})).await;
    assert_error(&expired, "UNAUTHENTICATED");
    assert!(
        expired["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{expired}"
    );
}

#[tokio::test]
async fn unauthenticated_and_bad_tokens_are_rejected() {
    let app = TestApp::start().await;
    let token = app.sign_up("ada@example.com").await;
    let org = app.create_org(&token, "acme").await;

    let protected = [
        ("{ me { id } }", json!({})),
        ("{ organizations { id } }", json!({})),
        (
            "query($id: ID!) { organization(id: $id) { id } }",
            json!({ "id": org }),
        ),
        ("{ node(path: \"acme\") { __typename } }", json!({})),
        (
            "mutation { createOrganization(input: {slug: \"x\", name: \"X\"}) { organization { id } } }",
            json!({}),
        ),
        (
            "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"w\", name: \"W\"}) { workspace { id } } }",
            json!({ "o": org }),
        ),
        (
            "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"b@example.com\", roles: []}) { token } }",
            json!({ "o": org }),
        ),
        (
            "mutation { acceptInvitation(input: {token: \"iam_i_x\"}) { organization { id } } }",
            json!({}),
        ),
        ("mutation { signOut { signedOut } }", json!({})),
    ];
    for (q, vars) in &protected {
        assert_error(&app.gql(None, q, vars.clone()).await, "UNAUTHENTICATED");
        assert_error(
            &app.gql(Some("iam_s_forged"), q, vars.clone()).await,
            "UNAUTHENTICATED",
        );
    }
    // A malformed Authorization header is refused, not ignored.
    let resp = app
        .http
        .post(app.url("/graphql"))
        .header("authorization", format!("Token {token}"))
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error(&body, "UNAUTHENTICATED");
}
