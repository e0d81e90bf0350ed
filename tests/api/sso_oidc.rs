//! OIDC single sign-on against a real OpenID Provider: node-oidc-provider (certified), run by
//! `tests/idp/oidc/provider.mjs` on an ephemeral port. The tests install its npm packages
//! themselves when they are missing, like the WebSocket client's.
//!
//! A test plays the browser: it follows the redirects by hand (the cookies of the IdP in a jar
//! of its own), fills the IdP's development login and consent forms, and reads the outcome
//! from the fragment of the gateway's last redirect.

use iam_gateway::domain::Actor;
use iam_gateway::sso::{ProviderSettings, SamlSettings};
use iam_gateway::store::ProviderChange;
use openidconnect::url::Url;
use serde_json::json;
use uuid::Uuid;

use crate::common::oidc_idp::{Browser, CLIENT_ID, CLIENT_SECRET, Sso};
use crate::common::{ADMIN, DEVELOPER, OPERATOR, VIEWER, data_str};

fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort();
    v
}

fn binding(role: &str, node: &str, source: &str) -> (String, String, String) {
    (role.to_owned(), node.to_owned(), source.to_owned())
}

/// Replaces the query parameter `key` of `url` with `value`.
fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut parsed = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == key {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

fn param(url: &str, key: &str) -> String {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no `{key}` in {url}"))
}

#[tokio::test]
async fn full_login_creates_the_user_and_follows_groups_across_logins() {
    let sso = Sso::start(json!({
        "alice": { "email": "alice@example.com", "name": "Alice Liddell", "groups": ["engineering", "unmapped"] }
    }))
    .await;
    let ws = sso.app.create_workspace(&sso.admin, &sso.org, "prod").await;
    let provider = sso.provider(CLIENT_SECRET, true, Some(VIEWER)).await;
    sso.map_group(&provider, "engineering", DEVELOPER, &ws)
        .await;

    // The IdP is asked for PKCE (S256), a nonce, our scopes and our redirect URI.
    let mut browser = Browser::new();
    let to_idp = browser.get(&sso.login_url(&provider)).await;
    assert_eq!(to_idp.status, 303);
    let authorize = to_idp.location.unwrap();
    assert_eq!(param(&authorize, "code_challenge_method"), "S256");
    assert_eq!(param(&authorize, "client_id"), CLIENT_ID);
    assert_eq!(param(&authorize, "response_type"), "code");
    assert_eq!(
        param(&authorize, "redirect_uri"),
        sso.app.url("/auth/oidc/callback")
    );
    assert_eq!(param(&authorize, "scope"), "openid profile email groups");
    assert!(!param(&authorize, "nonce").is_empty());
    assert!(!param(&authorize, "state").is_empty());

    // First sign-in: the account is created just in time, joins, gets the mapped role.
    let landed = sso.sign_in(&provider, "alice").await;
    assert!(!landed.contains_key("error"), "sign-in failed: {landed:?}");
    let token = landed["token"].clone();
    assert_eq!(landed["return_to"], "/projects?tab=1");
    let expires = chrono::DateTime::parse_from_rfc3339(&landed["expires_at"]).unwrap();
    assert!(expires > chrono::Utc::now());
    let me = sso
        .app
        .gql(
            Some(&token),
            "{ me { id email name organizations { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");
    assert_eq!(me["data"]["me"]["name"], "Alice Liddell");
    assert_eq!(me["data"]["me"]["organizations"][0]["id"], sso.org.as_str());
    let alice = data_str(&me, &["me", "id"]);
    assert_eq!(
        sso.bindings(&alice).await,
        vec![binding(DEVELOPER, &ws, "sso")],
        "the mapped group's role, and no default role (a group mapped)"
    );
    assert!(
        sso.app
            .audit_actions()
            .await
            .contains(&"sso.sync".to_owned())
    );

    // An admin grants a role by hand; SSO never touches it.
    sso.app.grant(&sso.admin, &alice, OPERATOR, &sso.org).await;

    // Second sign-in, no longer in the group: the SSO binding goes, the default role comes,
    // the binding made by hand stays. Same account.
    sso.idp
        .set_account("alice", json!({ "email": "alice@example.com", "name": "Alice Liddell", "groups": ["unmapped"] }))
        .await;
    let token2 = sso.signed_in(&provider, "alice").await;
    assert_ne!(token, token2, "a new session");
    assert_eq!(sso.app.user_id(&token2).await, alice, "the same account");
    assert_eq!(
        sso.bindings(&alice).await,
        sorted(vec![
            binding(OPERATOR, &sso.org, "manual"),
            binding(VIEWER, &sso.org, "sso"),
        ])
    );

    // Back in the group: the mapped role again, and the default role gone.
    sso.idp
        .set_account(
            "alice",
            json!({ "email": "alice@example.com", "groups": ["engineering"] }),
        )
        .await;
    sso.signed_in(&provider, "alice").await;
    assert_eq!(
        sso.bindings(&alice).await,
        sorted(vec![
            binding(DEVELOPER, &ws, "sso"),
            binding(OPERATOR, &sso.org, "manual"),
        ])
    );
    // Both sessions still work.
    for t in [&token, &token2] {
        let r = sso.app.gql(Some(t), "{ me { email } }", json!({})).await;
        assert_eq!(r["data"]["me"]["email"], "alice@example.com", "{r}");
    }
    // The organization's SSO created the account: it manages it, so its admin may hand over
    // a reset link (this server sends no email).
    let r = sso
        .app
        .gql(
            Some(&sso.admin),
            "mutation($o: ID!, $u: ID!) { resetMemberPassword(input: {organizationId: $o, userId: $u}) { emailed link } }",
            json!({ "o": sso.org, "u": alice }),
        )
        .await;
    assert_eq!(r["data"]["resetMemberPassword"]["emailed"], false, "{r}");
    assert!(data_str(&r, &["resetMemberPassword", "link"]).contains("/password-reset?token="));
}

#[tokio::test]
async fn default_role_when_no_group_maps_and_groups_from_userinfo() {
    // With conforming ID tokens the IdP puts email, name and groups only at userinfo.
    let sso = Sso::start_with(
        json!({
            "bob": { "email": "bob@example.com", "name": "Bob", "groups": ["ops"] },
            "carol": { "email": "carol@example.com", "groups": ["nothing-mapped"] },
        }),
        true,
    )
    .await;
    let provider = sso.provider(CLIENT_SECRET, true, Some(VIEWER)).await;
    sso.map_group(&provider, "ops", ADMIN, &sso.org).await;

    let bob = sso.signed_in(&provider, "bob").await;
    let me = sso
        .app
        .gql(Some(&bob), "{ me { id email name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["email"], "bob@example.com", "{me}");
    assert_eq!(me["data"]["me"]["name"], "Bob");
    let bob_id = data_str(&me, &["me", "id"]);
    assert_eq!(
        sso.bindings(&bob_id).await,
        vec![binding(ADMIN, &sso.org, "sso")]
    );

    let carol = sso.signed_in(&provider, "carol").await;
    let carol_id = sso.app.user_id(&carol).await;
    assert_eq!(
        sso.bindings(&carol_id).await,
        vec![binding(VIEWER, &sso.org, "sso")],
        "no group maps: the provider's default role"
    );
}

#[tokio::test]
async fn state_mismatch_and_replayed_callbacks_are_refused() {
    let sso = Sso::start(json!({ "dave": { "email": "dave@example.com", "groups": [] } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let mut browser = Browser::new();
    let callback = sso.authorize(&mut browser, &provider, "dave").await;

    // A state the gateway never issued.
    let forged = with_param(&callback, "state", "not-a-state-we-issued");
    let landed = sso.callback(&mut browser, &forged).await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("state"), "{landed:?}");
    // No state at all.
    let landed = sso
        .callback(
            &mut browser,
            &format!("{}?code=abc", sso.app.url("/auth/oidc/callback")),
        )
        .await;
    assert!(landed["error"].contains("state"), "{landed:?}");

    // The real one works once...
    let landed = sso.callback(&mut browser, &callback).await;
    assert!(landed.contains_key("token"), "{landed:?}");
    // ...and a replay of the same callback is refused.
    let replay = sso.callback(&mut browser, &callback).await;
    assert!(!replay.contains_key("token"));
    assert!(replay["error"].contains("state"), "{replay:?}");
}

#[tokio::test]
async fn a_nonce_that_does_not_match_is_refused() {
    let sso = Sso::start(json!({ "erin": { "email": "erin@example.com" } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let mut browser = Browser::new();
    let callback = sso.authorize(&mut browser, &provider, "erin").await;
    // The ID token carries the nonce sent to the IdP; the pending sign-in now expects another
    // (as if the code had been obtained for somebody else's sign-in).
    let state = param(&callback, "state");
    sso.app
        .state
        .services
        .store()
        .execute_unprepared(&format!(
            "UPDATE sso_requests SET nonce = 'another-nonce' WHERE id = '{state}'"
        ))
        .await
        .unwrap();
    let landed = sso.callback(&mut browser, &callback).await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("nonce"), "{landed:?}");
    let r = sso.app.gql(None, "{ me { id } }", json!({})).await;
    assert!(r["data"]["me"].is_null(), "nobody signed in: {r}");
}

#[tokio::test]
async fn unknown_disabled_and_non_oidc_providers_are_refused() {
    let sso = Sso::start(json!({ "frank": { "email": "frank@example.com" } })).await;
    let mut browser = Browser::new();

    let disabled = sso.provider(CLIENT_SECRET, false, None).await;
    let r = browser.get(&sso.login_url(&disabled)).await;
    assert_eq!(r.status, 404, "a disabled provider: {}", r.body);
    assert!(r.location.is_none());

    let r = browser
        .get(&sso.app.url(&format!("/auth/oidc/{}/login", Uuid::new_v4())))
        .await;
    assert_eq!(r.status, 404, "an unknown provider");
    let r = browser
        .get(&sso.app.url("/auth/oidc/not-an-id/login"))
        .await;
    assert_eq!(r.status, 404, "not a provider id");

    let saml = sso
        .provider_with(
            ProviderSettings::Saml(SamlSettings {
                idp_metadata_url: None,
                idp_metadata_xml: None,
                idp_entity_id: Some("https://idp.example.com".to_owned()),
                idp_sso_url: Some("https://idp.example.com/sso".to_owned()),
                idp_certificate: None,
                email_attribute: "email".to_owned(),
                name_attribute: "name".to_owned(),
                groups_attribute: "groups".to_owned(),
            }),
            "unused",
            true,
            None,
        )
        .await;
    let r = browser.get(&sso.login_url(&saml)).await;
    assert_eq!(r.status, 404, "a SAML provider has no OIDC login");

    // Turned off while a sign-in was under way: refused at the callback.
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let callback = sso.authorize(&mut browser, &provider, "frank").await;
    sso.app
        .state
        .services
        .store()
        .update_provider(
            provider.id,
            ProviderChange {
                enabled: Some(false),
                ..ProviderChange::default()
            },
            &Actor::default(),
        )
        .await
        .unwrap();
    let landed = sso.callback(&mut browser, &callback).await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("turned off"), "{landed:?}");
}

#[tokio::test]
async fn a_wrong_client_secret_ends_in_a_clean_error() {
    let sso = Sso::start(json!({ "grace": { "email": "grace@example.com" } })).await;
    let provider = sso.provider("not-the-secret", true, None).await;
    let landed = sso.sign_in(&provider, "grace").await;
    assert!(!landed.contains_key("token"));
    let error = &landed["error"];
    assert!(error.contains("client id or secret"), "{landed:?}");
    assert!(
        !error.contains("invalid_client") && !error.contains("http://"),
        "plain words, no detail: {error}"
    );
}

#[tokio::test]
async fn the_idp_refusing_or_sending_no_email_ends_in_an_error() {
    let sso = Sso::start(json!({ "heidi": { "name": "Heidi", "groups": [] } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let landed = sso.sign_in(&provider, "heidi").await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("no email address"), "{landed:?}");

    // The IdP answers with an error (the user cancelled): the state is used up too.
    let mut browser = Browser::new();
    let start = browser.get(&sso.login_url(&provider)).await;
    let state = param(&start.location.unwrap(), "state");
    let cancelled = format!(
        "{}?error=access_denied&error_description=End-User+aborted+%3Cb%3Einteraction%3C%2Fb%3E&state={state}",
        sso.app.url("/auth/oidc/callback")
    );
    let landed = sso.callback(&mut browser, &cancelled).await;
    assert_eq!(
        landed["error"],
        "the sign-in was cancelled or refused at the identity provider"
    );
    let again = sso
        .callback(
            &mut browser,
            &with_param(&cancelled, "error", "server_error"),
        )
        .await;
    assert!(again["error"].contains("server_error"), "{again:?}");
}

#[tokio::test]
async fn test_connection_says_what_is_wrong() {
    let sso = Sso::start(json!({})).await;
    let services = &sso.app.state.services;
    let ok = iam_gateway::sso::oidc::test_connection(&services.sso, &sso.settings())
        .await
        .unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    assert!(ok.contains("userinfo"), "{ok}");

    let mut wrong = sso.settings();
    wrong.issuer_url = format!("{}/", sso.idp.issuer);
    let e = iam_gateway::sso::oidc::test_connection(&services.sso, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("names the issuer"), "{e}");

    // Not an issuer: nothing at its discovery address, or a web page there.
    wrong.issuer_url = sso.app.url("/healthz");
    let e = iam_gateway::sso::oidc::test_connection(&services.sso, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("HTTP 404"), "{e}");
    wrong.issuer_url = format!("{}/__test/html", sso.idp.issuer);
    let e = iam_gateway::sso::oidc::test_connection(&services.sso, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("did not answer JSON"), "{e}");

    // Nothing listens there (a port just bound and released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    wrong.issuer_url = format!("http://127.0.0.1:{port}");
    let e = iam_gateway::sso::oidc::test_connection(&services.sso, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("could not fetch"), "{e}");
    // A sign-in with such a provider lands on the error, in plain words.
    let dead = sso
        .provider_with(
            ProviderSettings::Oidc(wrong.clone()),
            CLIENT_SECRET,
            true,
            None,
        )
        .await;
    let landed = sso.landed(Browser::new().get(&sso.login_url(&dead)).await);
    assert!(
        landed["error"].contains("could not be reached") && !landed["error"].contains("127.0.0.1"),
        "{landed:?}"
    );

    wrong.issuer_url = "not a url".to_owned();
    let e = iam_gateway::sso::oidc::test_connection(&services.sso, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("is not a URL"), "{e}");
}

#[tokio::test]
async fn a_group_mapped_to_a_team_puts_the_member_in_it_at_each_sign_in() {
    let sso = Sso::start(json!({
        "alice": { "email": "alice@example.com", "name": "Alice", "groups": ["platform"] }
    }))
    .await;
    let ws = sso.app.create_workspace(&sso.admin, &sso.org, "prod").await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let team = sso
        .app
        .gql(
            Some(&sso.admin),
            "mutation($o: ID!) { createTeam(input: {organizationId: $o, name: \"Platform\"}) { team { id } } }",
            json!({ "o": sso.org }),
        )
        .await;
    let team = data_str(&team, &["createTeam", "team", "id"]);
    sso.app.grant(&sso.admin, &team, DEVELOPER, &ws).await;
    let map = sso
        .app
        .gql(
            Some(&sso.admin),
            "mutation($p: ID!, $t: ID!) { addSsoTeamMapping(input: {providerId: $p, group: \"platform\", teamId: $t}) { id group teamId } }",
            json!({ "p": provider.id, "t": team }),
        )
        .await;
    assert_eq!(
        map["data"]["addSsoTeamMapping"]["teamId"],
        team.as_str(),
        "{map}"
    );
    // A team of another organization is not found.
    let outsider = sso.app.sign_up("mallory@example.com").await;
    let other_org = sso.app.create_org(&outsider, "other").await;
    let foreign = sso
        .app
        .gql(
            Some(&outsider),
            "mutation($o: ID!) { createTeam(input: {organizationId: $o, name: \"Crew\"}) { team { id } } }",
            json!({ "o": other_org }),
        )
        .await;
    let foreign = data_str(&foreign, &["createTeam", "team", "id"]);
    let r = sso
        .app
        .gql(
            Some(&sso.admin),
            "mutation($p: ID!, $t: ID!) { addSsoTeamMapping(input: {providerId: $p, group: \"x\", teamId: $t}) { id } }",
            json!({ "p": provider.id, "t": foreign }),
        )
        .await;
    crate::common::assert_error(&r, "NOT_FOUND");

    let members = |token: String| {
        let app = &sso.app;
        let team = team.clone();
        async move {
            let r = app
                .gql(
                    Some(&token),
                    "query($t: ID!) { team(id: $t) { members { user { email } source } } }",
                    json!({ "t": team }),
                )
                .await;
            r["data"]["team"]["members"].clone()
        }
    };
    let check = "query($n: ID!) { check(input: {resourceType: \"apps\", action: \"write\", nodeId: $n}) { allowed } }";
    let token = sso.signed_in(&provider, "alice").await;
    assert_eq!(
        members(sso.admin.clone()).await,
        json!([{ "user": { "email": "alice@example.com" }, "source": "sso" }])
    );
    let r = sso.app.gql(Some(&token), check, json!({ "n": ws })).await;
    assert_eq!(r["data"]["check"]["allowed"], true, "{r}");

    // Out of the group at the next sign-in: out of the team, and the access gone.
    sso.idp
        .set_account(
            "alice",
            json!({ "email": "alice@example.com", "groups": [] }),
        )
        .await;
    let token = sso.signed_in(&provider, "alice").await;
    assert_eq!(members(sso.admin.clone()).await, json!([]));
    let r = sso.app.gql(Some(&token), check, json!({ "n": ws })).await;
    assert_eq!(r["data"]["check"]["allowed"], false, "{r}");
    let listed = sso
        .app
        .gql(
            Some(&sso.admin),
            "query($o: ID!) { organization(id: $o) { ssoProviders { teamMappings { group teamId } } } }",
            json!({ "o": sso.org }),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"]["ssoProviders"][0]["teamMappings"],
        json!([{ "group": "platform", "teamId": team }]),
        "{listed}"
    );
}

/// The team a group maps to denies something at the organization: a sign-in that would put the
/// only admin into it is refused, and nothing of it is kept.
#[tokio::test]
async fn attack_a_team_mapping_cannot_take_away_the_last_admin() {
    let sso = Sso::start(json!({})).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let store = sso.app.state.services.store();
    let r = sso
        .app
        .gql(
            Some(&sso.admin),
            "mutation($o: ID!) { createRole(input: {organizationId: $o, name: \"No audit\", policies: [{effect: DENY, permission: \"audit:*:read\"}]}) { role { id } } }",
            json!({ "o": sso.org }),
        )
        .await;
    let no_audit = data_str(&r, &["createRole", "role", "id"]);
    let r = sso
        .app
        .gql(
            Some(&sso.admin),
            "mutation($o: ID!) { createTeam(input: {organizationId: $o, name: \"Restricted\"}) { team { id } } }",
            json!({ "o": sso.org }),
        )
        .await;
    let team = data_str(&r, &["createTeam", "team", "id"]);
    sso.app.grant(&sso.admin, &team, &no_audit, &sso.org).await;
    let r = sso
        .app
        .gql(
            Some(&sso.admin),
            "mutation($p: ID!, $t: ID!) { addSsoTeamMapping(input: {providerId: $p, group: \"restricted\", teamId: $t}) { id } }",
            json!({ "p": provider.id, "t": team }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    // The only admin signs in through the provider with that group.
    let admin_id: Uuid = sso.app.user_id(&sso.admin).await.parse().unwrap();
    let admin = store.user(admin_id).await.unwrap().unwrap();
    let identity = iam_gateway::sso::Identity {
        subject: "admin-subject".to_owned(),
        email: admin.email.clone(),
        name: None,
        groups: vec!["restricted".to_owned()],
    };
    let refused = store
        .sso_sync(&provider, &admin, &identity, &Actor::default())
        .await;
    assert!(
        matches!(refused, Err(iam_gateway::store::StoreError::Conflict(_))),
        "{refused:?}"
    );
    let members = sso
        .app
        .gql(
            Some(&sso.admin),
            "query($t: ID!) { team(id: $t) { members { principalId } } }",
            json!({ "t": team }),
        )
        .await;
    assert_eq!(members["data"]["team"]["members"], json!([]), "{members}");
    // Without the group the sign-in goes through.
    let fine = iam_gateway::sso::Identity {
        groups: Vec::new(),
        ..identity
    };
    store
        .sso_sync(&provider, &admin, &fine, &Actor::default())
        .await
        .unwrap();
}
