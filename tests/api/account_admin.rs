//! Account administration through the API: a person renames their account, changes its email
//! only through a link sent to the new address, deletes it (never while they are an
//! organization's last admin, and everywhere at once); an admin issues a password reset only
//! for an account their organization manages alone, never beyond their own power.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::smtp::SmtpSink;
use crate::common::{PASSWORD, TestApp, any_redis, assert_error, data_str};

const UPDATE_ME: &str = "mutation($n: String!) { updateMe(input: {name: $n}) { user { name } } }";
const CHANGE_EMAIL: &str = "mutation($e: String!, $p: String!) { changeMyEmail(input: {newEmail: $e, password: $p}) { pendingEmail expiresAt } }";
const VERIFY: &str =
    "mutation($t: String!) { verifyEmail(input: {token: $t}) { user { email emailVerified } } }";
const DELETE_ME: &str = "mutation($p: String!) { deleteMe(input: {password: $p}) { deleted membershipsRemoved sessionsRevoked } }";
const RESET_MEMBER: &str = "mutation($o: ID!, $u: ID!) { resetMemberPassword(input: {organizationId: $o, userId: $u}) { emailed link expiresAt } }";
const RESET: &str = "mutation($t: String!, $p: String!) { resetPassword(input: {token: $t, newPassword: $p}) { sessionsRevoked } }";
const SIGN_IN: &str =
    "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }";
const SIGN_UP_INVITED: &str = "mutation($t: String!) { signUpWithInvitation(input: {token: $t, name: \"Carol\", password: \"correct horse battery\"}) { token user { id } } }";
const ME: &str = "{ me { id email name emailVerified } }";
const CREATE_KEY: &str =
    "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }";
const AUDIT: &str = "query($o: ID!) { organization(id: $o) { auditEvents(limit: 200) { action actorId actorEmail targetId } } }";

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(None, SIGN_IN, json!({ "e": email, "p": password }))
        .await
}

/// A personal key of the caller in `org`, valid 30 days.
async fn personal_key(app: &TestApp, token: &str, org: &str) -> String {
    let expires = (app.state.services.clock().now() + chrono::Duration::days(30)).to_rfc3339();
    let r = app
        .gql(
            Some(token),
            CREATE_KEY,
            json!({ "i": { "organizationId": org, "name": "ci", "expiresAt": expires } }),
        )
        .await;
    data_str(&r, &["createApiKey", "secret"])
}

/// The token of the `path?token=` link in the newest mail to `to` that has one (waiting up to
/// 10 s for it).
async fn link_token(smtp: &SmtpSink, to: &str, path: &str) -> String {
    let started = Instant::now();
    loop {
        let found = smtp
            .messages()
            .iter()
            .rev()
            .filter(|m| m.header("to").is_some_and(|t| t.contains(to)))
            .find_map(|m| m.link(path));
        if let Some(link) = found {
            return link.split("token=").nth(1).expect("a token").to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {path} link to {to}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_person_renames_their_account_but_no_key_or_organization_session_does() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    // Read once: the session is now cached with the old name.
    let r = app.gql(Some(&ada), ME, json!({})).await;
    assert_eq!(r["data"]["me"]["name"], "Test User");
    let r = app
        .gql(Some(&ada), UPDATE_ME, json!({ "n": "  Ada Lovelace " }))
        .await;
    assert_eq!(r["data"]["updateMe"]["user"]["name"], "Ada Lovelace", "{r}");
    let r = app.gql(Some(&ada), ME, json!({})).await;
    assert_eq!(r["data"]["me"]["name"], "Ada Lovelace", "{r}");
    for bad in ["", "   ", &"x".repeat(201)] {
        let r = app.gql(Some(&ada), UPDATE_ME, json!({ "n": bad })).await;
        assert_error(&r, "BAD_USER_INPUT");
    }
    // A key acts in its organization only: the account is not its to change.
    let key = personal_key(&app, &ada, &org).await;
    let r = app
        .gql(Some(&key), UPDATE_ME, json!({ "n": "Mallory" }))
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = app.gql(None, UPDATE_ME, json!({ "n": "Mallory" })).await;
    assert_error(&r, "UNAUTHENTICATED");
    let audited = app.audit_actions().await;
    assert_eq!(audited.iter().filter(|a| *a == "user.update").count(), 1);
}

#[tokio::test]
async fn a_new_email_takes_effect_only_through_the_link_sent_to_it() {
    let smtp = SmtpSink::start();
    let app = TestApp::start_with(|c| c.smtp_url = Some(smtp.url())).await;
    let ada = app.sign_up("ada@example.com").await;
    app.sign_up("bob@example.com").await;
    // Wrong password: refused, and counted like any other guess.
    let r = app
        .gql(
            Some(&ada),
            CHANGE_EMAIL,
            json!({ "e": "ada@new.example", "p": "not the password" }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert_eq!(r["errors"][0]["extensions"]["field"], "password", "{r}");
    assert!(
        app.audit_actions()
            .await
            .contains(&"user.email_change_failed".to_owned())
    );
    // Someone else's address, or the same one.
    let r = app
        .gql(
            Some(&ada),
            CHANGE_EMAIL,
            json!({ "e": "Bob@Example.com", "p": PASSWORD }),
        )
        .await;
    assert_error(&r, "CONFLICT");
    let r = app
        .gql(
            Some(&ada),
            CHANGE_EMAIL,
            json!({ "e": "ada@example.com", "p": PASSWORD }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    // A reset link sent to the old address before the change.
    app.gql(
        None,
        "mutation { requestPasswordReset(input: {email: \"ada@example.com\"}) { requested } }",
        json!({}),
    )
    .await;
    let old_reset = link_token(&smtp, "ada@example.com", "/password-reset").await;
    let r = app
        .gql(
            Some(&ada),
            CHANGE_EMAIL,
            json!({ "e": "Ada@New.Example", "p": PASSWORD }),
        )
        .await;
    assert_eq!(
        r["data"]["changeMyEmail"]["pendingEmail"], "ada@new.example",
        "{r}"
    );
    let token = link_token(&smtp, "ada@new.example", "/verify-email").await;
    // The old address is told.
    smtp.wait_for_with(1, "asked to change its email").await;
    // Nothing changed yet.
    let r = app.gql(Some(&ada), ME, json!({})).await;
    assert_eq!(r["data"]["me"]["email"], "ada@example.com");
    assert_error(
        &sign_in(&app, "ada@new.example", PASSWORD).await,
        "UNAUTHENTICATED",
    );
    // The link: the account now has the new, proven address, on its open session too.
    let r = app.gql(None, VERIFY, json!({ "t": token })).await;
    assert_eq!(
        r["data"]["verifyEmail"]["user"]["email"], "ada@new.example",
        "{r}"
    );
    assert_eq!(r["data"]["verifyEmail"]["user"]["emailVerified"], true);
    let r = app.gql(Some(&ada), ME, json!({})).await;
    assert_eq!(r["data"]["me"]["email"], "ada@new.example", "{r}");
    assert_eq!(r["data"]["me"]["emailVerified"], true);
    data_str(
        &sign_in(&app, "ada@new.example", PASSWORD).await,
        &["signIn", "token"],
    );
    assert_error(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        "UNAUTHENTICATED",
    );
    // Used once; and the reset link that went to the old address is dead.
    assert_error(
        &app.gql(None, VERIFY, json!({ "t": token })).await,
        "BAD_USER_INPUT",
    );
    let r = app
        .gql(
            None,
            RESET,
            json!({ "t": old_reset, "p": "a brand new passphrase" }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    let audited = app.audit_actions().await;
    for action in ["user.email_change_request", "user.email_change"] {
        assert!(
            audited.contains(&action.to_owned()),
            "{action}: {audited:?}"
        );
    }
}

#[tokio::test]
async fn an_address_taken_before_the_link_is_used_is_not_taken_over() {
    let smtp = SmtpSink::start();
    let app = TestApp::start_with(|c| c.smtp_url = Some(smtp.url())).await;
    let ada = app.sign_up("ada@example.com").await;
    let r = app
        .gql(
            Some(&ada),
            CHANGE_EMAIL,
            json!({ "e": "carol@example.com", "p": PASSWORD }),
        )
        .await;
    data_str(&r, &["changeMyEmail", "pendingEmail"]);
    let token = link_token(&smtp, "carol@example.com", "/verify-email").await;
    // Carol signs up with her address meanwhile.
    let carol = app.sign_up("carol@example.com").await;
    let r = app.gql(None, VERIFY, json!({ "t": token })).await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = app.gql(Some(&ada), ME, json!({})).await;
    assert_eq!(r["data"]["me"]["email"], "ada@example.com");
    let r = app.gql(Some(&carol), ME, json!({})).await;
    assert_eq!(r["data"]["me"]["email"], "carol@example.com");
}

#[tokio::test]
async fn without_email_no_address_can_be_changed() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let r = app
        .gql(
            Some(&ada),
            CHANGE_EMAIL,
            json!({ "e": "ada@new.example", "p": PASSWORD }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert_eq!(r["errors"][0]["extensions"]["field"], "newEmail", "{r}");
}

async fn until_refused(app: &TestApp, token: &str, node: &str) -> Duration {
    let started = Instant::now();
    loop {
        if app.check(token, "members:read", node).await.is_none() {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never refused");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_deleted_account_goes_everywhere_at_once_and_the_trail_keeps_who_it_was() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let ada = a.sign_up("ada@example.com").await;
    let org = a.create_org(&ada, "acme").await;
    let bob = a.sign_up("bob@example.com").await;
    let bob_id = a.join(&ada, &org, "bob@example.com", &bob).await;
    let other = a.sign_up("olga@example.com").await;
    let beta = a.create_org(&other, "beta").await;
    a.join(&other, &beta, "bob@example.com", &bob).await;
    let key = personal_key(&a, &bob, &org).await;
    // B has verified Bob's session and key.
    assert!(b.check(&key, "members:read", &org).await.is_some());
    assert_eq!(
        b.gql(Some(&bob), ME, json!({})).await["data"]["me"]["email"],
        "bob@example.com"
    );
    let r = a.gql(Some(&bob), DELETE_ME, json!({ "p": "wrong" })).await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = a.gql(Some(&key), DELETE_ME, json!({ "p": PASSWORD })).await;
    assert_error(&r, "FORBIDDEN");
    let r = a.gql(Some(&bob), DELETE_ME, json!({ "p": PASSWORD })).await;
    assert_eq!(r["data"]["deleteMe"]["deleted"], true, "{r}");
    assert_eq!(r["data"]["deleteMe"]["membershipsRemoved"], 2);
    // The key and the session are refused on the other instance within the bound.
    let took = until_refused(&b, &key, &org).await;
    assert!(
        took < Duration::from_secs(2),
        "key seen on B after {took:?}"
    );
    let r = b.gql(Some(&bob), ME, json!({})).await;
    assert_error(&r, "UNAUTHENTICATED");
    assert_error(
        &sign_in(&a, "bob@example.com", PASSWORD).await,
        "UNAUTHENTICATED",
    );
    // Gone from both organizations.
    for (admin, org) in [(&ada, &org), (&other, &beta)] {
        let r = a
            .gql(
                Some(admin),
                "query($o: ID!) { members(organizationId: $o) { user { email } } }",
                json!({ "o": org }),
            )
            .await;
        let emails = r["data"]["members"].to_string();
        assert!(!emails.contains("bob@"), "{r}");
    }
    // The trail keeps Bob's id and email on what he did.
    let r = a.gql(Some(&ada), AUDIT, json!({ "o": org })).await;
    let events = r["data"]["organization"]["auditEvents"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    let created = events
        .iter()
        .find(|e| e["action"] == "api_key.create")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(created["actorId"], bob_id.as_str());
    assert_eq!(created["actorEmail"], "bob@example.com");
    let removed = events
        .iter()
        .find(|e| e["action"] == "member.remove")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(removed["actorEmail"], "bob@example.com");
    // The address is free: a new account, not the old one.
    let again = a.sign_up("bob@example.com").await;
    assert_ne!(a.user_id(&again).await, bob_id);
}

#[tokio::test]
async fn the_last_admin_cannot_delete_their_account() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let r = app
        .gql(Some(&ada), DELETE_ME, json!({ "p": PASSWORD }))
        .await;
    assert_error(&r, "CONFLICT");
    let message = r["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`acme`"), "{message}");
    // Nothing changed.
    assert_eq!(app.check(&ada, "members:manage", &org).await, Some(true));
    data_str(
        &sign_in(&app, "ada@example.com", PASSWORD).await,
        &["signIn", "token"],
    );
    assert!(
        !app.audit_actions()
            .await
            .contains(&"user.delete".to_owned())
    );
}

struct Managed {
    ada: String,
    org: String,
    ws: String,
    carol: String,
    carol_id: String,
}

/// Ada (Admin of acme) and Carol, whose account acme's invitation created (Developer at a
/// workspace).
async fn managed_on(app: &TestApp) -> Managed {
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let invite = app.invite(&ada, &org, "carol@example.com").await;
    let r = app.gql(None, SIGN_UP_INVITED, json!({ "t": invite })).await;
    let carol = data_str(&r, &["signUpWithInvitation", "token"]);
    let carol_id = data_str(&r, &["signUpWithInvitation", "user", "id"]);
    let developer = app.role_id(&ada, &org, "developer").await;
    app.grant(&ada, &carol_id, &developer, &ws).await;
    Managed {
        ada,
        org,
        ws,
        carol,
        carol_id,
    }
}

#[tokio::test]
async fn an_admin_hands_over_a_reset_link_for_an_account_the_organization_manages() {
    let app = TestApp::start().await;
    let m = managed_on(&app).await;
    let r = app
        .gql(
            Some(&m.ada),
            RESET_MEMBER,
            json!({ "o": m.org, "u": m.carol_id }),
        )
        .await;
    assert_eq!(r["data"]["resetMemberPassword"]["emailed"], false, "{r}");
    let link = data_str(&r, &["resetMemberPassword", "link"]);
    assert!(link.contains("/password-reset?token="), "{link}");
    let token = link.split("token=").nth(1).unwrap();
    let r = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(r["data"]["resetPassword"]["sessionsRevoked"], 1, "{r}");
    assert_error(
        &app.gql(Some(&m.carol), ME, json!({})).await,
        "UNAUTHENTICATED",
    );
    let r = sign_in(&app, "carol@example.com", "a brand new passphrase").await;
    let carol = data_str(&r, &["signIn", "token"]);
    // A link that went to the admin proves nothing about Carol's email.
    let r = app.gql(Some(&carol), ME, json!({})).await;
    assert_eq!(r["data"]["me"]["emailVerified"], false, "{r}");
    // Once only.
    let r = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "another new passphrase" }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = app.gql(Some(&m.ada), AUDIT, json!({ "o": m.org })).await;
    assert!(r.to_string().contains("member.password_reset_issue"), "{r}");
}

#[tokio::test]
async fn no_admin_resets_an_account_another_organization_trusts_or_one_beyond_their_power() {
    let app = TestApp::start().await;
    let m = managed_on(&app).await;
    // Bob signed up himself and joined: acme does not manage his account.
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&m.ada, &m.org, "bob@example.com", &bob).await;
    let r = app
        .gql(
            Some(&m.ada),
            RESET_MEMBER,
            json!({ "o": m.org, "u": bob_id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    // A member who may not impersonate; one who may but holds less than Carol.
    let developer = app.role_id(&m.ada, &m.org, "developer").await;
    app.grant(&m.ada, &bob_id, &developer, &m.org).await;
    let r = app
        .gql(
            Some(&bob),
            RESET_MEMBER,
            json!({ "o": m.org, "u": m.carol_id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let eve = app.sign_up("eve@example.com").await;
    let eve_id = app.join(&m.ada, &m.org, "eve@example.com", &eve).await;
    let helpdesk = app
        .custom_role(
            &m.ada,
            &m.org,
            "helpdesk",
            &["members:*:impersonate", "members:*:read"],
        )
        .await;
    app.grant(&m.ada, &eve_id, &helpdesk, &m.org).await;
    let r = app
        .gql(
            Some(&eve),
            RESET_MEMBER,
            json!({ "o": m.org, "u": m.carol_id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .is_some_and(|s| s.contains("they hold")),
        "{r}"
    );
    // Another organization's admin, about Carol (not their member).
    let olga = app.sign_up("olga@example.com").await;
    let beta = app.create_org(&olga, "beta").await;
    let r = app
        .gql(
            Some(&olga),
            RESET_MEMBER,
            json!({ "o": beta, "u": m.carol_id }),
        )
        .await;
    assert_error(&r, "NOT_FOUND");
    // Nor with acme's id.
    let r = app
        .gql(
            Some(&olga),
            RESET_MEMBER,
            json!({ "o": m.org, "u": m.carol_id }),
        )
        .await;
    assert!(
        r["data"].is_null() || r["data"]["resetMemberPassword"].is_null(),
        "{r}"
    );
    assert!(r["errors"].is_array(), "{r}");
    // A link issued while acme managed Carol alone...
    let r = app
        .gql(
            Some(&m.ada),
            RESET_MEMBER,
            json!({ "o": m.org, "u": m.carol_id }),
        )
        .await;
    let link = data_str(&r, &["resetMemberPassword", "link"]);
    // ...stops working once beta trusts her account too, and no new one is issued.
    app.join(&olga, &beta, "carol@example.com", &m.carol).await;
    let token = link.split("token=").nth(1).unwrap();
    let r = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "a takeover passphrase" }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = app
        .gql(
            Some(&m.ada),
            RESET_MEMBER,
            json!({ "o": m.org, "u": m.carol_id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    data_str(
        &sign_in(&app, "carol@example.com", PASSWORD).await,
        &["signIn", "token"],
    );
    // Oneself: changePassword is the way.
    let ada_id = app.user_id(&m.ada).await;
    let r = app
        .gql(
            Some(&m.ada),
            RESET_MEMBER,
            json!({ "o": m.org, "u": ada_id }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    let _ = m.ws;
}

#[tokio::test]
async fn with_email_set_up_the_reset_goes_to_the_member_not_the_admin() {
    let smtp = SmtpSink::start();
    let app = TestApp::start_with(|c| c.smtp_url = Some(smtp.url())).await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    // With SMTP on, the invitation goes by mail.
    app.gql(
        Some(&ada),
        "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"carol@example.com\", roles: []}) { invitation { id } } }",
        json!({ "o": org }),
    )
    .await;
    let invite = link_token(&smtp, "carol@example.com", "/invitations/accept").await;
    let r = app.gql(None, SIGN_UP_INVITED, json!({ "t": invite })).await;
    let carol_id = data_str(&r, &["signUpWithInvitation", "user", "id"]);
    let r = app
        .gql(Some(&ada), RESET_MEMBER, json!({ "o": org, "u": carol_id }))
        .await;
    assert_eq!(r["data"]["resetMemberPassword"]["emailed"], true, "{r}");
    assert!(r["data"]["resetMemberPassword"]["link"].is_null(), "{r}");
    let token = link_token(&smtp, "carol@example.com", "/password-reset").await;
    let r = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "a brand new passphrase" }),
        )
        .await;
    assert!(
        r["data"]["resetPassword"]["sessionsRevoked"].is_number(),
        "{r}"
    );
    data_str(
        &sign_in(&app, "carol@example.com", "a brand new passphrase").await,
        &["signIn", "token"],
    );
}
