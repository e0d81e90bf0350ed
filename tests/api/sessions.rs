//! Active sessions: listing one's own, revoking one or all others, an administrator's view of
//! a member's sessions and signing them out everywhere, and revocation across instances.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{DEVELOPER, PASSWORD, TestApp, any_redis, assert_error, data_str, error_code};

const MY_SESSIONS: &str =
    "{ mySessions { id device method ip userAgent signedInAt lastActiveAt expiresAt current } }";
const MEMBER_SESSIONS: &str = "query($o: ID!, $u: ID!) { memberSessions(organizationId: $o, userId: $u) { id device current } }";
const REVOKE: &str =
    "mutation($s: ID!) { revokeSession(input: {sessionId: $s}) { sessionId signedOut } }";
const REVOKE_OTHERS: &str = "mutation { revokeOtherSessions { revokedCount } }";
const SIGN_OUT_MEMBER: &str = "mutation($o: ID!, $u: ID!) { signOutMemberEverywhere(input: {organizationId: $o, userId: $u}) { revokedCount } }";
const ME: &str = "{ me { email session { id } } }";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// Signs `email` in from a browser with `user_agent`; returns the session token.
async fn sign_in_from(app: &TestApp, email: &str, user_agent: &str) -> String {
    let body: Value = app
        .http
        .post(app.url("/graphql"))
        .header("user-agent", user_agent)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }",
            "variables": { "e": email, "p": PASSWORD },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data_str(&body, &["signIn", "token"])
}

async fn session_id(app: &TestApp, token: &str) -> String {
    data_str(
        &app.gql(Some(token), ME, json!({})).await,
        &["me", "session", "id"],
    )
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

async fn refused(app: &TestApp, token: &str) -> bool {
    error_code(&app.gql(Some(token), ME, json!({})).await).as_deref() == Some("UNAUTHENTICATED")
}

#[tokio::test]
async fn my_sessions_lists_the_live_ones_current_first() {
    let app = TestApp::start().await;
    let first = app.sign_up("ada@example.com").await;
    let firefox = sign_in_from(&app, "ada@example.com", FIREFOX).await;
    let gone = sign_in_from(&app, "ada@example.com", "curl/8.5.0").await;
    app.gql(Some(&gone), "mutation { signOut { signedOut } }", json!({}))
        .await;
    let (first_id, firefox_id) = (
        session_id(&app, &first).await,
        session_id(&app, &firefox).await,
    );

    let r = app.gql(Some(&first), MY_SESSIONS, json!({})).await;
    let list = &r["data"]["mySessions"];
    assert_eq!(ids(list), [first_id.as_str(), firefox_id.as_str()], "{r}");
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[0]["device"], "Unknown device");
    assert_eq!(list[0]["userAgent"], "iam-gateway-tests/1.0");
    assert_eq!(list[1]["current"], false);
    assert_eq!(list[1]["device"], "Firefox on Linux");
    assert_eq!(list[1]["ip"], "127.0.0.1");
    assert_eq!(list[1]["method"], "password");
    for field in ["signedInAt", "lastActiveAt", "expiresAt"] {
        assert!(list[1][field].is_string(), "{field}: {r}");
    }

    // Seen from the other session, that one comes first.
    let r = app.gql(Some(&firefox), MY_SESSIONS, json!({})).await;
    assert_eq!(
        ids(&r["data"]["mySessions"]),
        [firefox_id.as_str(), first_id.as_str()]
    );
    assert_error(
        &app.gql(None, MY_SESSIONS, json!({})).await,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn expired_sessions_are_not_listed() {
    let app = TestApp::start_with(|c| c.session_ttl = Duration::from_secs(3600)).await;
    let old = app.sign_up("ada@example.com").await;
    let old_id = session_id(&app, &old).await;
    app.advance(Duration::from_secs(3601));
    let fresh = sign_in_from(&app, "ada@example.com", FIREFOX).await;
    let r = app.gql(Some(&fresh), MY_SESSIONS, json!({})).await;
    let list = ids(&r["data"]["mySessions"]);
    assert_eq!(list.len(), 1, "{r}");
    assert_ne!(list[0], old_id);
}

#[tokio::test]
async fn one_revokes_only_ones_own_sessions() {
    let app = TestApp::start().await;
    let first = app.sign_up("ada@example.com").await;
    let second = sign_in_from(&app, "ada@example.com", FIREFOX).await;
    let (first_id, second_id) = (
        session_id(&app, &first).await,
        session_id(&app, &second).await,
    );
    let bob = app.sign_up("bob@example.com").await;

    // Someone else's session is not found, and keeps working.
    let r = app.gql(Some(&bob), REVOKE, json!({ "s": second_id })).await;
    assert_error(&r, "NOT_FOUND");
    assert!(!refused(&app, &second).await);

    let r = app
        .gql(Some(&first), REVOKE, json!({ "s": second_id }))
        .await;
    assert_eq!(r["data"]["revokeSession"]["signedOut"], false, "{r}");
    assert!(refused(&app, &second).await);
    // Already revoked: nothing left to revoke.
    let r = app
        .gql(Some(&first), REVOKE, json!({ "s": second_id }))
        .await;
    assert_error(&r, "NOT_FOUND");

    // Revoking the current session signs the caller out.
    let r = app
        .gql(Some(&first), REVOKE, json!({ "s": first_id }))
        .await;
    assert_eq!(r["data"]["revokeSession"]["signedOut"], true, "{r}");
    assert!(refused(&app, &first).await);
    let revokes = app
        .audit_actions()
        .await
        .iter()
        .filter(|a| *a == "session.revoke")
        .count();
    assert_eq!(revokes, 2);
}

#[tokio::test]
async fn revoke_other_sessions_keeps_the_current_one() {
    let app = TestApp::start().await;
    let current = app.sign_up("ada@example.com").await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(sign_in_from(&app, "ada@example.com", FIREFOX).await);
    }
    let bob = app.sign_up("bob@example.com").await;

    let r = app.gql(Some(&current), REVOKE_OTHERS, json!({})).await;
    assert_eq!(r["data"]["revokeOtherSessions"]["revokedCount"], 3, "{r}");
    assert!(!refused(&app, &current).await);
    for t in &others {
        assert!(refused(&app, t).await);
    }
    assert!(!refused(&app, &bob).await, "other accounts are untouched");
    let r = app.gql(Some(&current), MY_SESSIONS, json!({})).await;
    assert_eq!(ids(&r["data"]["mySessions"]).len(), 1);
    assert!(
        app.audit_actions()
            .await
            .contains(&"session.revoke_others".to_owned())
    );
}

#[tokio::test]
async fn an_administrator_sees_and_ends_a_members_sessions() {
    let dns = crate::common::dns::free_port();
    let app = TestApp::start_with(|c| c.dns_resolver = Some(dns)).await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    let bob_firefox = sign_in_from(&app, "bob@example.com", FIREFOX).await;
    let dev = app.sign_up("dev@example.com").await;
    let dev_id = app.join(&admin, &org, "dev@example.com", &dev).await;
    app.grant(&admin, &dev_id, DEVELOPER, &org).await;
    let viewer = app.sign_up("viewer@example.com").await;
    app.join(&admin, &org, "viewer@example.com", &viewer).await;
    let eve = app.sign_up("eve@example.com").await;
    let eve_id = app.user_id(&eve).await;
    let evil = app.create_org(&eve, "evil").await;

    // Bob's password sessions are his account's, not the organization's: until it manages his
    // account (its verified domain holds his email), its admins see and end none of them.
    let r = app
        .gql(
            Some(&admin),
            MEMBER_SESSIONS,
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    assert_eq!(ids(&r["data"]["memberSessions"]).len(), 0, "{r}");
    let r = app
        .gql(
            Some(&admin),
            SIGN_OUT_MEMBER,
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    assert_eq!(
        r["data"]["signOutMemberEverywhere"]["revokedCount"], 0,
        "{r}"
    );
    assert!(!refused(&app, &bob).await);
    let (_, _dns) =
        crate::common::dns::verified_domain(&app, &admin, &org, "example.com", dns).await;

    let r = app
        .gql(
            Some(&admin),
            MEMBER_SESSIONS,
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    let list = &r["data"]["memberSessions"];
    assert_eq!(ids(list).len(), 2, "{r}");
    assert_eq!(list[0]["device"], "Firefox on Linux", "most recent first");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["current"] == false)
    );
    // `members:*:read` does not reach a member's sessions: that is `members:*:manage`.
    let r = app
        .gql(
            Some(&dev),
            MEMBER_SESSIONS,
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = app
        .gql(
            Some(&dev),
            SIGN_OUT_MEMBER,
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    // A member without `members:*:read` may not look.
    let r = app
        .gql(
            Some(&viewer),
            MEMBER_SESSIONS,
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    // Outsiders get nothing, and no administrator reaches a non-member through their org.
    for (token, o, u) in [
        (&eve, &org, &bob_id),
        (&eve, &evil, &bob_id),
        (&admin, &org, &eve_id),
    ] {
        assert_error(
            &app.gql(Some(token), MEMBER_SESSIONS, json!({ "o": o, "u": u }))
                .await,
            "NOT_FOUND",
        );
        assert_error(
            &app.gql(Some(token), SIGN_OUT_MEMBER, json!({ "o": o, "u": u }))
                .await,
            "NOT_FOUND",
        );
    }
    assert!(!refused(&app, &bob).await);
    assert!(!refused(&app, &eve).await);

    let r = app
        .gql(
            Some(&admin),
            SIGN_OUT_MEMBER,
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    assert_eq!(
        r["data"]["signOutMemberEverywhere"]["revokedCount"], 2,
        "{r}"
    );
    assert!(refused(&app, &bob).await);
    assert!(refused(&app, &bob_firefox).await);
    assert!(!refused(&app, &admin).await);

    let trail = app
        .gql(
            Some(&admin),
            "query($o: ID!) { organization(id: $o) { auditEvents(limit: 100) { action targetId after } } }",
            json!({ "o": org }),
        )
        .await;
    let event = trail["data"]["organization"]["auditEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "session.revoke_all")
        .unwrap_or_else(|| panic!("no session.revoke_all in {trail}"))
        .clone();
    assert_eq!(event["targetId"], json!(bob_id));
}

#[tokio::test]
async fn a_session_revoked_on_one_instance_is_refused_by_another() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let keeper = a.sign_up("ada@example.com").await;
    let victim = sign_in_from(&a, "ada@example.com", FIREFOX).await;
    let victim_id = session_id(&a, &victim).await;
    a.wait_trusted().await;
    b.wait_trusted().await;
    for _ in 0..3 {
        let r = b.gql(Some(&victim), ME, json!({})).await;
        assert_eq!(data_str(&r, &["me", "email"]), "ada@example.com");
    }
    assert!(
        b.metric("iam_cache_hits_total").await >= 2.0,
        "B authenticates from its session cache"
    );

    let r = a
        .gql(Some(&keeper), REVOKE, json!({ "s": victim_id }))
        .await;
    assert_eq!(r["data"]["revokeSession"]["signedOut"], false, "{r}");
    assert!(refused(&a, &victim).await, "refused at once where revoked");
    let start = Instant::now();
    while !refused(&b, &victim).await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B kept accepting a revoked session"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!refused(&b, &keeper).await, "the other session still works");
}
