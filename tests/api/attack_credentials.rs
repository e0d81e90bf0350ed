//! Hole 8 of issue 12, aliased credentials: one request that checks many passwords, and
//! password guessing spread over many accounts or many addresses.
//!
//! A request may name at most one credential field (on every path: a new text, a remembered
//! one, fragments, GraphQL over WebSocket), and credential checks are rate-limited per client
//! IP and per account. The limits here are set low on purpose; the suite's default test
//! configuration raises them out of the way (`tests/common`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, assert_error, data_str, error_code};

const SIGN_IN: &str =
    "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }";

/// `signIn` from `ip` (as `X-Forwarded-For`; the app must trust it to tell).
async fn sign_in_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Value {
    post_from(app, ip, SIGN_IN, json!({ "e": email, "p": password })).await
}

async fn post_from(app: &TestApp, ip: &str, query: &str, variables: Value) -> Value {
    app.http
        .post(app.url("/graphql"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn verifications(app: &TestApp) -> f64 {
    app.metric("iam_password_verifications_total").await
}

/// `count` aliased `signIn` fields, each with another wrong password, against `$e`.
fn aliased_sign_ins(count: usize) -> String {
    let fields: String = (0..count)
        .map(|i| {
            format!(
                " a{i}: signIn(input: {{email: $e, password: \"guess number {i}\"}}) {{ token }}"
            )
        })
        .collect();
    format!("mutation($e: String!) {{{fields} }}")
}

/// Asserts a refusal by the one-credential-field rule: BAD_USER_INPUT, nothing ran.
fn assert_one_credential_refusal(r: &Value) {
    assert_error(r, "BAD_USER_INPUT");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("at most one credential field"),
        "the message names the rule: {message}"
    );
}

/// Asserts RATE_LIMITED with a whole number of seconds to wait, also said in the message.
fn assert_rate_limited(r: &Value) -> u64 {
    assert_error(r, "RATE_LIMITED");
    let retry = r["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter is a whole number of seconds: {r}"));
    assert!(retry >= 1, "{r}");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("try again in {retry} s")),
        "the message says when to retry: {message}"
    );
    retry
}

#[tokio::test]
async fn two_hundred_aliased_sign_ins_are_refused_before_any_runs() {
    let app = TestApp::start().await;
    app.sign_up("victim@example.com").await;
    let before = verifications(&app).await;

    let query = aliased_sign_ins(200);
    let vars = json!({ "e": "victim@example.com" });
    let r = app.gql(None, &query, vars.clone()).await;
    assert_one_credential_refusal(&r);
    // The same text again: now a remembered (already parsed) document; still refused.
    let r = app.gql(None, &query, vars.clone()).await;
    assert_one_credential_refusal(&r);
    // Hidden in fragments, and with two aliases only.
    let hidden = "mutation($e: String!) { ...A } fragment A on Mutation { x: signIn(input: {email: $e, password: \"a\"}) { token } ...B } fragment B on Mutation { y: signIn(input: {email: $e, password: \"b\"}) { token } }";
    assert_one_credential_refusal(&app.gql(None, hidden, vars.clone()).await);
    let inline = "mutation($e: String!) { ... on Mutation { x: signIn(input: {email: $e, password: \"a\"}) { token } } y: signIn(input: {email: $e, password: \"b\"}) { token } }";
    assert_one_credential_refusal(&app.gql(None, inline, vars).await);

    // No password was checked, no failed attempt was counted: the account is not locked
    // (five wrong ones would have locked it), and the right password still signs in.
    assert_eq!(verifications(&app).await, before);
    let r = app
        .gql(
            None,
            SIGN_IN,
            json!({ "e": "victim@example.com", "p": PASSWORD }),
        )
        .await;
    assert!(!data_str(&r, &["signIn", "token"]).is_empty());
}

#[tokio::test]
async fn sign_in_and_sign_up_in_one_request_are_refused() {
    let app = TestApp::start().await;
    app.sign_up("ada@example.com").await;
    let before = verifications(&app).await;
    let query = "mutation($p: String!) { signIn(input: {email: \"ada@example.com\", password: $p}) { token } signUp(input: {email: \"new@example.com\", password: $p, name: \"New\"}) { token } }";
    let r = app.gql(None, query, json!({ "p": PASSWORD })).await;
    assert_one_credential_refusal(&r);
    assert_eq!(verifications(&app).await, before);
    // The account to be was not created: signing it up alone works.
    let token = app.sign_up("new@example.com").await;
    assert!(!token.is_empty());

    // Other pairs, with a session: changing a password and accepting an invitation.
    let query = "mutation { changePassword(input: {currentPassword: \"x\", newPassword: \"another long password\"}) { sessionsRevoked } acceptInvitation(input: {token: \"t\"}) { revision } }";
    let r = app.gql(Some(&token), query, json!({})).await;
    assert_one_credential_refusal(&r);
    // A document with two operations, one credential field each, runs the one it names.
    let two_ops = "mutation A($p: String!) { signIn(input: {email: \"ada@example.com\", password: $p}) { token } } mutation B { verifyEmail(input: {token: \"t\"}) { user { id } } }";
    let r = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": two_ops, "operationName": "A", "variables": { "p": PASSWORD } }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(!data_str(&r, &["signIn", "token"]).is_empty());
}

/// The rule holds over GraphQL over WebSocket too (the reference `graphql-ws` client).
#[tokio::test]
async fn aliased_sign_ins_over_the_websocket_are_refused() {
    let app = TestApp::start().await;
    app.sign_up("victim@example.com").await;
    let before = verifications(&app).await;
    crate::common::peers::npm_ci("tests/ws");
    let args = json!({
        "url": format!("ws://{}/graphql", app.addr),
        "init": null,
        "query": aliased_sign_ins(50),
        "variables": { "e": "victim@example.com" },
        "count": 1,
        "timeoutMs": 20_000,
    });
    let client = crate::common::peers::repo_dir("tests/ws/client.mjs");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(client)
            .arg(args.to_string())
            .output()
            .expect("run node (node 20 must be installed)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let next: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["event"] == "next")
        .unwrap_or_else(|| panic!("no result over the socket: {stdout}"));
    assert_one_credential_refusal(&next["payload"]);
    assert_eq!(verifications(&app).await, before);
}

#[tokio::test]
async fn sign_in_spraying_from_one_ip_over_many_emails_is_rate_limited() {
    let app = TestApp::start_with(|c| {
        c.rate_limit_ip_per_minute = 1;
        c.rate_limit_ip_burst = 5;
    })
    .await;
    // Sign-up is a credential check too: one of the five.
    app.sign_up("ada@example.com").await;
    let mut answers = Vec::new();
    for i in 0..8 {
        let email = if i == 2 {
            "ada@example.com".to_owned()
        } else {
            format!("sprayed-{i}@example.com")
        };
        let before = verifications(&app).await;
        let r = app
            .gql(None, SIGN_IN, json!({ "e": email, "p": "Winter2026!" }))
            .await;
        let checked = verifications(&app).await - before;
        answers.push((error_code(&r), checked, r));
    }
    for (i, (code, checked, r)) in answers.iter().enumerate() {
        if i < 4 {
            assert_eq!(code.as_deref(), Some("UNAUTHENTICATED"), "{r}");
            assert_eq!(*checked, 1.0);
        } else {
            // Refused before the password is hashed.
            let retry = assert_rate_limited(r);
            assert!(retry <= 60, "one credit per minute: {r}");
            assert_eq!(*checked, 0.0, "{r}");
        }
    }
    // Every credential field draws on the same budget.
    let r = app
        .gql(
            None,
            "mutation { requestPasswordReset(input: {email: \"ada@example.com\"}) { requested } }",
            json!({}),
        )
        .await;
    assert_rate_limited(&r);
}

#[tokio::test]
async fn one_account_from_many_forwarded_ips_is_rate_limited() {
    let app = TestApp::start_with(|c| {
        c.trust_forwarded_for = true;
        c.rate_limit_account_per_minute = 1;
        c.rate_limit_account_burst = 3;
    })
    .await;
    // Sign-up counts against the account: one of the three.
    app.sign_up("ada@example.com").await;
    let before = verifications(&app).await;
    for i in 1..=2 {
        let r = sign_in_from(&app, &format!("203.0.113.{i}"), "ada@example.com", "wrong").await;
        assert_error(&r, "UNAUTHENTICATED");
    }
    for i in 3..=6 {
        let r = sign_in_from(&app, &format!("203.0.113.{i}"), "ADA@example.com ", "wrong").await;
        assert_rate_limited(&r);
    }
    // Only the two allowed attempts were verified, and the account is not locked by the
    // rest: the lockout counted two.
    assert_eq!(verifications(&app).await - before, 2.0);
    // The right password is refused too while the account's budget is spent (it is the
    // account that is being guessed), yet other accounts are not affected.
    let r = sign_in_from(&app, "198.51.100.7", "ada@example.com", PASSWORD).await;
    assert_rate_limited(&r);
    let r = sign_in_from(&app, "198.51.100.7", "other@example.com", "wrong").await;
    assert_error(&r, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_unknown_email_is_rate_limited_like_a_known_one() {
    let app = TestApp::start_with(|c| {
        c.trust_forwarded_for = true;
        c.rate_limit_account_per_minute = 1;
        c.rate_limit_account_burst = 2;
    })
    .await;
    // Per account: the same answers whether the email names an account or not.
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let r = sign_in_from(&app, ip, "nobody@example.com", "wrong").await;
        assert_error(&r, "UNAUTHENTICATED");
    }
    let r = sign_in_from(&app, "203.0.113.3", "nobody@example.com", "wrong").await;
    assert_rate_limited(&r);

    // Per IP: unknown emails (malformed ones included) spend the address's budget.
    let app = TestApp::start_with(|c| {
        c.trust_forwarded_for = true;
        c.rate_limit_ip_per_minute = 1;
        c.rate_limit_ip_burst = 2;
    })
    .await;
    for email in ["nobody-1@example.com", "not an email"] {
        let r = sign_in_from(&app, "203.0.113.9", email, "wrong").await;
        assert_error(&r, "UNAUTHENTICATED");
    }
    let r = sign_in_from(&app, "203.0.113.9", "nobody-3@example.com", "wrong").await;
    assert_rate_limited(&r);
    // Another address has its own budget; an IPv6 client's budget is its /64.
    let r = sign_in_from(&app, "203.0.113.10", "nobody-3@example.com", "wrong").await;
    assert_error(&r, "UNAUTHENTICATED");
    for ip in ["2001:db8:0:1::1", "2001:db8:0:1::2"] {
        let r = sign_in_from(&app, ip, "nobody-4@example.com", "wrong").await;
        assert_error(&r, "UNAUTHENTICATED");
    }
    let r = sign_in_from(
        &app,
        "2001:db8:0:1:ffff::3",
        "nobody-5@example.com",
        "wrong",
    )
    .await;
    assert_rate_limited(&r);
}

#[tokio::test]
async fn a_normal_sign_in_still_works_under_low_limits() {
    let app = TestApp::start_with(|c| {
        c.rate_limit_ip_per_minute = 1;
        c.rate_limit_ip_burst = 2;
        c.rate_limit_account_per_minute = 1;
        c.rate_limit_account_burst = 2;
    })
    .await;
    app.sign_up("ada@example.com").await;
    let r = app
        .gql(
            None,
            SIGN_IN,
            json!({ "e": "ada@example.com", "p": PASSWORD }),
        )
        .await;
    assert!(!data_str(&r, &["signIn", "token"]).is_empty(), "{r}");
}

/// Every field that checks a password or redeems a secret token is limited: the first call
/// from an address gets its usual answer, the second RATE_LIMITED.
#[tokio::test]
async fn every_credential_field_is_rate_limited() {
    let app = TestApp::start_with(|c| {
        c.trust_forwarded_for = true;
        c.rate_limit_ip_per_minute = 1;
        c.rate_limit_ip_burst = 1;
    })
    .await;
    let token = app.sign_up("ada@example.com").await;
    let fields = [
        "signIn(input: {email: \"ada@example.com\", password: \"wrong\"}) { token }",
        "signUp(input: {email: \"bob@example.com\", password: \"a long enough password\", name: \"Bob\"}) { token }",
        "requestPasswordReset(input: {email: \"ada@example.com\"}) { requested }",
        "resetPassword(input: {token: \"no-such-token\", newPassword: \"a long enough password\"}) { sessionsRevoked }",
        "changePassword(input: {currentPassword: \"wrong\", newPassword: \"a long enough password\"}) { sessionsRevoked }",
        "acceptInvitation(input: {token: \"no-such-token\"}) { revision }",
        "signUpWithInvitation(input: {token: \"no-such-token\", name: \"Eve\", password: \"a long enough password\"}) { token }",
        "verifyEmail(input: {token: \"no-such-token\"}) { user { id } }",
        "changeMyEmail(input: {newEmail: \"ada@new.example\", password: \"wrong\"}) { pendingEmail }",
        "deleteMe(input: {password: \"wrong\"}) { deleted }",
    ];
    for (i, field) in fields.iter().enumerate() {
        let ip = format!("192.0.2.{}", i + 1);
        let query = format!("mutation {{ {field} }}");
        let send = || async {
            app.http
                .post(app.url("/graphql"))
                .header("x-forwarded-for", &ip)
                .bearer_auth(&token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        };
        let first = send().await;
        assert_ne!(
            error_code(&first).as_deref(),
            Some("RATE_LIMITED"),
            "{field}: {first}"
        );
        let second = send().await;
        assert_rate_limited(&second);
    }
    // Waiting is how a client recovers; nothing here waits a whole minute, but the answer
    // says how long (at most the time one credit takes to come back).
    let r = sign_in_from(&app, "192.0.2.1", "ada@example.com", PASSWORD).await;
    assert!(assert_rate_limited(&r) <= Duration::from_secs(60).as_secs());
}
