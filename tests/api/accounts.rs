//! Sign-in safety: lockout (also under a burst of parallel attempts), unlocking by time and by
//! an administrator, password reset by email, password change.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::smtp::SmtpSink;
use crate::common::{DEVELOPER, PASSWORD, TestApp, assert_error, data_str, error_code};

const SIGN_IN: &str =
    "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }";
const REQUEST_RESET: &str =
    "mutation($e: String!) { requestPasswordReset(input: {email: $e}) { requested } }";
const RESET: &str = "mutation($t: String!, $p: String!) { resetPassword(input: {token: $t, newPassword: $p}) { sessionsRevoked } }";
const CHANGE: &str = "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { sessionsRevoked } }";
const UNLOCK: &str = "mutation($o: ID!, $u: ID!) { unlockMember(input: {organizationId: $o, userId: $u}) { userId wasLocked } }";
const ME: &str = "{ me { email } }";
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(None, SIGN_IN, json!({ "e": email, "p": password }))
        .await
}

/// How many audit events (all organizations) have `action`.
async fn count_audit(app: &TestApp, action: &str) -> usize {
    app.audit_actions()
        .await
        .iter()
        .filter(|a| *a == action)
        .count()
}

/// Fails `n` sign-ins of `email` with a wrong password, one after the other.
async fn fail_sign_ins(app: &TestApp, email: &str, n: usize) {
    for _ in 0..n {
        assert_error(
            &sign_in(app, email, "not the password").await,
            "UNAUTHENTICATED",
        );
    }
}

#[tokio::test]
async fn a_burst_of_parallel_wrong_passwords_is_evaluated_at_most_threshold_times() {
    let app = TestApp::start().await;
    app.sign_up("ada@example.com").await;
    let threshold = app.state.services.config.lockout_threshold as usize;
    assert_eq!(threshold, 5, "the default threshold");
    let before = app.metric("iam_password_verifications_total").await;

    let attempts = (0..30).map(|_| sign_in(&app, "ada@example.com", "not the password"));
    let answers = futures::future::join_all(attempts).await;

    let verified = app.metric("iam_password_verifications_total").await - before;
    assert_eq!(
        verified, threshold as f64,
        "only the reserved attempts are verified"
    );
    let codes: Vec<Option<String>> = answers.iter().map(error_code).collect();
    let wrong = codes
        .iter()
        .filter(|c| c.as_deref() == Some("UNAUTHENTICATED"))
        .count();
    let locked = codes
        .iter()
        .filter(|c| c.as_deref() == Some("RATE_LIMITED"))
        .count();
    assert_eq!((wrong, locked), (threshold, 30 - threshold), "{codes:?}");
    assert_eq!(count_audit(&app, "auth.sign_in_failed").await, threshold);
    assert_eq!(count_audit(&app, "auth.locked").await, 1);
    assert_eq!(
        count_audit(&app, "auth.sign_in_refused").await,
        30 - threshold
    );
    // Failed attempts are recorded with where they came from.
    let events = app
        .state
        .services
        .store()
        .audit_events(None, 100)
        .await
        .unwrap();
    let failed = events
        .iter()
        .find(|e| e.action == "auth.sign_in_failed")
        .unwrap();
    assert_eq!(failed.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(failed.after.as_ref().unwrap()["reason"], "wrong_password");

    // Locked: even the right password is refused, with a clear answer, and not verified.
    let before = app.metric("iam_password_verifications_total").await;
    let r = sign_in(&app, "ada@example.com", PASSWORD).await;
    assert_error(&r, "RATE_LIMITED");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("locked until"), "{message}");
    // A client can wait without parsing the message: seconds until the lock ends.
    let retry_after = r["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or(0);
    let lockout = app.state.services.config.lockout_duration.as_secs();
    assert!((1..=lockout).contains(&retry_after), "{r}");
    assert_eq!(app.metric("iam_password_verifications_total").await, before);
}

#[tokio::test]
async fn a_lock_runs_out_by_itself_and_a_success_starts_the_count_again() {
    let app = TestApp::start_with(|c| {
        c.lockout_threshold = 3;
        c.lockout_duration = Duration::from_secs(900);
    })
    .await;
    app.sign_up("ada@example.com").await;
    // Two failures, a success, two failures: never three in a row, never locked.
    fail_sign_ins(&app, "ada@example.com", 2).await;
    data_str(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        &["signIn", "token"],
    );
    fail_sign_ins(&app, "ada@example.com", 2).await;
    data_str(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        &["signIn", "token"],
    );

    fail_sign_ins(&app, "ada@example.com", 3).await;
    assert_error(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        "RATE_LIMITED",
    );
    app.advance(Duration::from_secs(901));
    data_str(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        &["signIn", "token"],
    );
    // The count started again: two failures do not lock.
    fail_sign_ins(&app, "ada@example.com", 2).await;
    data_str(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        &["signIn", "token"],
    );
}

#[tokio::test]
async fn unknown_emails_never_lock_and_are_answered_like_wrong_passwords() {
    let app = TestApp::start_with(|c| c.lockout_threshold = 2).await;
    app.sign_up("ada@example.com").await;
    let wrong = sign_in(&app, "ada@example.com", "not the password").await;
    for _ in 0..4 {
        let unknown = sign_in(&app, "nobody@example.com", PASSWORD).await;
        assert_error(&unknown, "UNAUTHENTICATED");
        assert_eq!(unknown["errors"][0], wrong["errors"][0]);
    }
    let events = app
        .state
        .services
        .store()
        .audit_events(None, 100)
        .await
        .unwrap();
    let unknown = events
        .iter()
        .filter(|e| e.action == "auth.sign_in_failed")
        .filter(|e| e.after.as_ref().unwrap()["reason"] == "unknown_account")
        .count();
    assert_eq!(unknown, 4);
}

#[tokio::test]
async fn an_administrator_unlocks_a_member() {
    let dns = crate::common::dns::free_port();
    let app = TestApp::start_with(|c| c.dns_resolver = Some(dns)).await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    let dev = app.sign_up("dev@example.com").await;
    let dev_id = app.join(&admin, &org, "dev@example.com", &dev).await;
    app.grant(&admin, &dev_id, DEVELOPER, &org).await;
    let eve = app.sign_up("eve@example.com").await;
    let evil = app.create_org(&eve, "evil").await;

    fail_sign_ins(&app, "bob@example.com", 5).await;
    assert_error(
        &sign_in(&app, "bob@example.com", PASSWORD).await,
        "RATE_LIMITED",
    );

    // A developer reads members but does not manage them.
    let r = app
        .gql(Some(&dev), UNLOCK, json!({ "o": org, "u": bob_id }))
        .await;
    assert_error(&r, "FORBIDDEN");
    // An outsider learns nothing of the organization.
    let r = app
        .gql(Some(&eve), UNLOCK, json!({ "o": org, "u": bob_id }))
        .await;
    assert_error(&r, "NOT_FOUND");
    // Nor can she reach bob through her own organization: he is not a member there.
    let r = app
        .gql(Some(&eve), UNLOCK, json!({ "o": evil, "u": bob_id }))
        .await;
    assert_error(&r, "NOT_FOUND");
    assert_error(
        &sign_in(&app, "bob@example.com", PASSWORD).await,
        "RATE_LIMITED",
    );

    // The lockout guards Bob's whole account: an organization that does not manage it (its
    // verified domains do not hold his email) cannot lift it.
    let r = app
        .gql(Some(&admin), UNLOCK, json!({ "o": org, "u": bob_id }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert_error(
        &sign_in(&app, "bob@example.com", PASSWORD).await,
        "RATE_LIMITED",
    );
    let (_, _dns) =
        crate::common::dns::verified_domain(&app, &admin, &org, "example.com", dns).await;
    let r = app
        .gql(Some(&admin), UNLOCK, json!({ "o": org, "u": bob_id }))
        .await;
    assert_eq!(r["data"]["unlockMember"]["wasLocked"], true, "{r}");
    data_str(
        &sign_in(&app, "bob@example.com", PASSWORD).await,
        &["signIn", "token"],
    );
    let r = app
        .gql(Some(&admin), UNLOCK, json!({ "o": org, "u": bob_id }))
        .await;
    assert_eq!(r["data"]["unlockMember"]["wasLocked"], false, "{r}");

    // The organization's trail shows both unlocks.
    let trail = app
        .gql(
            Some(&admin),
            "query($o: ID!) { organization(id: $o) { auditEvents(limit: 100) { action targetId } } }",
            json!({ "o": org }),
        )
        .await;
    let unlocks: Vec<&Value> = trail["data"]["organization"]["auditEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.unlocked")
        .collect();
    assert_eq!(unlocks.len(), 2, "{trail}");
    assert_eq!(unlocks[0]["targetId"], json!(bob_id));
}

/// The token in the reset link of `mail`.
fn reset_token(mail: &crate::common::smtp::ReceivedMail, base: &str) -> String {
    let prefix = format!("{base}/password-reset?token=");
    let link = mail
        .link(&prefix)
        .unwrap_or_else(|| panic!("no reset link in {}", mail.body));
    link[prefix.len()..].to_owned()
}

#[tokio::test]
async fn a_password_is_reset_by_email_once() {
    let smtp = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        c.smtp_url = Some(smtp.url());
        c.public_url = "https://iam.example.com/".to_owned();
    })
    .await;
    let first = app.sign_up("ada@example.com").await;
    let second = data_str(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        &["signIn", "token"],
    );
    fail_sign_ins(&app, "ada@example.com", 5).await;

    // The same answer for an email with no account (which gets no mail, and no audit event).
    let unknown = app
        .gql(None, REQUEST_RESET, json!({ "e": "nobody@example.com" }))
        .await;
    let known = app
        .gql(None, REQUEST_RESET, json!({ "e": "ADA@example.com" }))
        .await;
    assert_eq!(unknown, known);
    assert_eq!(known["data"]["requestPasswordReset"]["requested"], true);
    let mails = smtp.wait_for_with(1, "/password-reset?token=").await;
    assert_eq!(mails.len(), 1, "only the account gets a message");
    assert!(mails[0].header("To").unwrap().contains("ada@example.com"));
    let token = reset_token(&mails[0], "https://iam.example.com");
    assert!(token.starts_with("iam_r_"), "{token}");
    assert_eq!(count_audit(&app, "auth.password_reset_requested").await, 1);

    // The policy applies, and a refused password does not use up the link.
    for (weak, why) in [("short", "at least"), ("ada@example.com", "email")] {
        let r = app.gql(None, RESET, json!({ "t": token, "p": weak })).await;
        assert_error(&r, "BAD_USER_INPUT");
        assert_eq!(r["errors"][0]["extensions"]["field"], "newPassword");
        assert!(
            r["errors"][0]["message"].as_str().unwrap().contains(why),
            "{r}"
        );
    }
    let r = app
        .gql(None, RESET, json!({ "t": token, "p": NEW_PASSWORD }))
        .await;
    assert_eq!(r["data"]["resetPassword"]["sessionsRevoked"], 2, "{r}");
    assert_eq!(count_audit(&app, "auth.password_reset").await, 1);

    // Every session is gone, the lock is lifted, the old password is dead.
    for t in [&first, &second] {
        assert_error(&app.gql(Some(t), ME, json!({})).await, "UNAUTHENTICATED");
    }
    let fresh = data_str(
        &sign_in(&app, "ada@example.com", NEW_PASSWORD).await,
        &["signIn", "token"],
    );
    let me = app.gql(Some(&fresh), ME, json!({})).await;
    assert_eq!(data_str(&me, &["me", "email"]), "ada@example.com");
    assert_error(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        "UNAUTHENTICATED",
    );

    // Single use; unknown tokens are refused as clearly.
    let again = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "yet another passphrase" }),
        )
        .await;
    assert_error(&again, "BAD_USER_INPUT");
    assert_eq!(again["errors"][0]["extensions"]["field"], "token");
    assert!(
        again["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already been used"),
        "{again}"
    );
    let forged = app
        .gql(
            None,
            RESET,
            json!({ "t": "iam_r_forged", "p": "yet another passphrase" }),
        )
        .await;
    assert_error(&forged, "BAD_USER_INPUT");
    assert!(
        forged["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid"),
        "{forged}"
    );
}

#[tokio::test]
async fn a_reset_link_expires_and_a_password_change_retires_it() {
    let smtp = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        c.smtp_url = Some(smtp.url());
        c.password_reset_ttl = Duration::from_secs(3600);
    })
    .await;
    app.sign_up("ada@example.com").await;
    let base = app.state.services.config.public_url.clone();

    app.gql(None, REQUEST_RESET, json!({ "e": "ada@example.com" }))
        .await;
    let expired = reset_token(
        &smtp.wait_for_with(1, "/password-reset?token=").await[0],
        &base,
    );
    app.advance(Duration::from_secs(3601));
    let r = app
        .gql(None, RESET, json!({ "t": expired, "p": NEW_PASSWORD }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{r}"
    );

    // A link asked for before a password change no longer works after it.
    let app = TestApp::start_with(|c| c.smtp_url = Some(smtp.url())).await;
    let token2 = app.sign_up("bob@example.com").await;
    app.gql(None, REQUEST_RESET, json!({ "e": "bob@example.com" }))
        .await;
    let link = reset_token(
        &smtp.wait_for_with(2, "/password-reset?token=").await[1],
        &base,
    );
    let r = app
        .gql(
            Some(&token2),
            CHANGE,
            json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(r["data"]["changePassword"]["sessionsRevoked"], 0, "{r}");
    let r = app
        .gql(
            None,
            RESET,
            json!({ "t": link, "p": "yet another passphrase" }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
}

#[tokio::test]
async fn without_smtp_a_reset_is_refused_for_every_email_alike() {
    let app = TestApp::start().await;
    app.sign_up("ada@example.com").await;
    let known = app
        .gql(None, REQUEST_RESET, json!({ "e": "ada@example.com" }))
        .await;
    let unknown = app
        .gql(None, REQUEST_RESET, json!({ "e": "nobody@example.com" }))
        .await;
    assert_error(&known, "FORBIDDEN");
    assert_eq!(known, unknown);
    assert_eq!(count_audit(&app, "auth.password_reset_requested").await, 0);
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let app = TestApp::start_with(|c| c.lockout_threshold = 3).await;
    let current = app.sign_up("ada@example.com").await;
    let others: Vec<String> =
        futures::future::join_all((0..2).map(|_| sign_in(&app, "ada@example.com", PASSWORD)))
            .await
            .iter()
            .map(|r| data_str(r, &["signIn", "token"]))
            .collect();

    let r = app
        .gql(
            Some(&current),
            CHANGE,
            json!({ "c": PASSWORD, "n": "short" }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert_eq!(r["errors"][0]["extensions"]["field"], "newPassword");
    let r = app
        .gql(
            Some(&current),
            CHANGE,
            json!({ "c": "not the password", "n": NEW_PASSWORD }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert_eq!(r["errors"][0]["extensions"]["field"], "currentPassword");
    assert_eq!(count_audit(&app, "auth.password_change_failed").await, 1);
    // Anonymous callers cannot change anything.
    assert_error(
        &app.gql(None, CHANGE, json!({ "c": PASSWORD, "n": NEW_PASSWORD }))
            .await,
        "UNAUTHENTICATED",
    );

    let r = app
        .gql(
            Some(&current),
            CHANGE,
            json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(r["data"]["changePassword"]["sessionsRevoked"], 2, "{r}");
    assert_eq!(count_audit(&app, "auth.password_changed").await, 1);
    let me = app.gql(Some(&current), ME, json!({})).await;
    assert_eq!(data_str(&me, &["me", "email"]), "ada@example.com");
    for t in &others {
        assert_error(&app.gql(Some(t), ME, json!({})).await, "UNAUTHENTICATED");
    }
    assert_error(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        "UNAUTHENTICATED",
    );
    data_str(
        &sign_in(&app, "ada@example.com", NEW_PASSWORD).await,
        &["signIn", "token"],
    );
}

#[tokio::test]
async fn wrong_current_passwords_count_toward_the_lockout() {
    let app = TestApp::start_with(|c| c.lockout_threshold = 2).await;
    let token = app.sign_up("ada@example.com").await;
    for _ in 0..2 {
        let r = app
            .gql(
                Some(&token),
                CHANGE,
                json!({ "c": "not the password", "n": NEW_PASSWORD }),
            )
            .await;
        assert_error(&r, "BAD_USER_INPUT");
    }
    assert_eq!(count_audit(&app, "auth.locked").await, 1);
    let r = app
        .gql(
            Some(&token),
            CHANGE,
            json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
        )
        .await;
    assert_error(&r, "RATE_LIMITED");
    assert_error(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        "RATE_LIMITED",
    );
    // The session itself still works: a lock stops password attempts, not sessions.
    let me = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(data_str(&me, &["me", "email"]), "ada@example.com");
}
