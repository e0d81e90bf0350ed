//! Attacks on the single sign-on trust boundary (issue #12, holes 1, 2 and 10): an identity
//! provider is trusted for its own organization's people, never for anyone else's account.
//!
//! Each test performs the attack through the real API, with a real signed SAML response from
//! pysaml2 (see `sso_saml.rs`), and sees it refused.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::common::dns::{Dns, free_port};
use crate::common::saml_idp::{Fixture, Idp, refusal};
use crate::common::smtp::SmtpSink;
use crate::common::{TestApp, assert_error, data_str};

/// A SAML fixture whose app sends email to `smtp` and asks the DNS server at `dns`.
async fn fixture(smtp: &SmtpSink, dns: SocketAddr) -> Fixture {
    let smtp_url = smtp.url();
    Fixture::with(move |c| {
        c.smtp_url = Some(smtp_url);
        c.dns_resolver = Some(dns);
    })
    .await
}

use crate::common::dns::{ADD_DOMAIN, REMOVE_DOMAIN, VERIFY_DOMAIN, verified_domain};

/// Signs `email` up and proves the address with the link mailed to it; the token.
async fn verified_account(app: &TestApp, smtp: &SmtpSink, email: &str) -> String {
    let token = app.sign_up(email).await;
    verify_by_link(app, smtp, email).await;
    token
}

/// Uses the newest verification link mailed to `email`; the email is then verified.
async fn verify_by_link(app: &TestApp, smtp: &SmtpSink, email: &str) {
    let link = verification_link(smtp, email).await;
    let token_part = link.split("token=").nth(1).unwrap().to_owned();
    let r = app
        .gql(
            None,
            "mutation($t: String!) { verifyEmail(input: {token: $t}) { user { email emailVerified } } }",
            json!({ "t": token_part }),
        )
        .await;
    assert_eq!(
        r["data"]["verifyEmail"]["user"]["emailVerified"], true,
        "{r}"
    );
}

/// Starts `startSsoLink` as `token`, has the IdP vouch for `email` (as NameID and attribute)
/// in answer to it, and posts that to the ACS: the landing page's fragment.
async fn link_round_trip(
    f: &Fixture,
    provider: &iam_gateway::sso::Provider,
    token: &str,
    email: &str,
) -> std::collections::HashMap<String, String> {
    let started = f
        .app
        .gql(Some(token), START_LINK, json!({ "p": provider.id }))
        .await;
    let url = data_str(&started, &["startSsoLink", "url"]);
    let sp_metadata = f.sp_metadata(provider).await;
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({ "request_url": url, "name_id": email, "attributes": { "email": [email] } }),
    );
    f.post_acs(
        provider,
        answer["saml_response"].as_str().unwrap(),
        answer["relay_state"].as_str(),
    )
    .await
}

const CONFIRM_LINK: &str =
    "mutation($c: String!) { confirmSsoLink(input: {code: $c}) { providerId } }";

/// Confirms, as `token`, the link a round trip handed the landing page.
async fn confirm_link(
    f: &Fixture,
    token: &str,
    landed: &std::collections::HashMap<String, String>,
) -> serde_json::Value {
    let code = landed
        .get("link_code")
        .unwrap_or_else(|| panic!("no link code: {landed:?}"));
    f.app
        .gql(Some(token), CONFIRM_LINK, json!({ "c": code }))
        .await
}

/// The newest verification link mailed to `email`.
async fn verification_link(smtp: &SmtpSink, email: &str) -> String {
    for _ in 0..200 {
        if let Some(link) = smtp
            .messages()
            .iter()
            .rev()
            .filter(|m| m.header("To").is_some_and(|to| to.contains(email)))
            .find_map(|m| {
                m.link("http://")
                    .filter(|l| l.contains("/verify-email?token="))
            })
        {
            return link;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no verification link was mailed to {email}");
}

/// Creates an enabled SAML provider through the API, as `token`, trusting the test IdP's key.
async fn saml_provider_via_api(f: &Fixture, token: &str, org: &str) -> Value {
    let r = f
        .app
        .gql(
            Some(token),
            "mutation($i: CreateSsoProviderInput!) { createSsoProvider(input: $i) { id } }",
            json!({ "i": {
                "organizationId": org,
                "name": "mine",
                "enabled": true,
                "saml": {
                    "idpEntityId": "https://idp.test/saml/metadata",
                    "idpSsoUrl": "https://idp.test/saml/sso",
                    "idpCertificate": Idp::new().certificate_pem(),
                    "emailAttribute": "email",
                },
            }}),
        )
        .await;
    r["data"]["createSsoProvider"]
        .as_object()
        .map(|_| r["data"]["createSsoProvider"].clone())
        .unwrap_or_else(|| panic!("createSsoProvider failed: {r}"))
}

/// The provider with `id`, as the flows see it.
async fn provider(f: &Fixture, id: &Value) -> iam_gateway::sso::Provider {
    f.app
        .state
        .services
        .store()
        .provider(id.as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_provider_anyone_can_make_does_not_sign_in_as_an_existing_account() {
    let f = Fixture::new().await;
    // The victim has a password account and an organization of their own.
    let victim = f.app.sign_up("victim@corp.example").await;
    let victim_org = f.app.create_org(&victim, "victim-co").await;

    // The attacker signs up, makes an organization and a provider signed with their own key.
    let attacker = f.app.sign_up("mallory@evil.example").await;
    let evil_org = f.app.create_org(&attacker, "evil").await;
    let made = saml_provider_via_api(&f, &attacker, &evil_org).await;
    let evil = provider(&f, &made["id"]).await;

    // ...and has their IdP vouch for the victim's email.
    let landed = f.sign_in(&evil, "victim@corp.example", &[]).await;
    let why = refusal(&landed);
    assert!(
        why.contains("link"),
        "the refusal says how to link an account: {why}"
    );

    // Nothing of the victim's was reached: the victim's organization has no new member.
    let members = f
        .app
        .gql(
            Some(&victim),
            "query($o: ID!) { organization(id: $o) { members { edges { node { email } } } } }",
            json!({ "o": victim_org }),
        )
        .await;
    assert!(
        !members.to_string().contains("mallory"),
        "the attacker joined nothing: {members}"
    );
}

#[tokio::test]
async fn changing_where_a_client_secret_goes_requires_the_secret_again() {
    let app = TestApp::start_with(|c| {
        c.secret_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned());
    })
    .await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let r = app
        .gql(
            Some(&admin),
            "mutation($i: CreateSsoProviderInput!) { createSsoProvider(input: $i) { id } }",
            json!({ "i": {
                "organizationId": org,
                "name": "Okta",
                "oidc": {
                    "issuerUrl": "https://login.example.com",
                    "clientId": "gateway",
                    "clientSecret": "s3cret-for-the-real-idp",
                },
            }}),
        )
        .await;
    let id = data_str(&r, &["createSsoProvider", "id"]);

    // Pointing the provider at another issuer, keeping the stored secret, is refused: the next
    // sign-in would send the secret there.
    let moved = app
        .gql(
            Some(&admin),
            "mutation($i: UpdateSsoProviderInput!) { updateSsoProvider(input: $i) { id } }",
            json!({ "i": { "id": id, "oidc": {
                "issuerUrl": "https://attacker.example",
                "clientId": "gateway",
            }}}),
        )
        .await;
    assert_error(&moved, "BAD_USER_INPUT");
    assert!(
        moved.to_string().contains("clientSecret"),
        "the error names the field to send again: {moved}"
    );

    // With the secret sent again, the move is accepted; so is a change that keeps the issuer.
    let with_secret = app
        .gql(
            Some(&admin),
            "mutation($i: UpdateSsoProviderInput!) { updateSsoProvider(input: $i) { id } }",
            json!({ "i": { "id": id, "oidc": {
                "issuerUrl": "https://login2.example.com",
                "clientId": "gateway",
                "clientSecret": "another-secret",
            }}}),
        )
        .await;
    assert!(with_secret["errors"].is_null(), "{with_secret}");
    let same_issuer = app
        .gql(
            Some(&admin),
            "mutation($i: UpdateSsoProviderInput!) { updateSsoProvider(input: $i) { id } }",
            json!({ "i": { "id": id, "oidc": {
                "issuerUrl": "https://login2.example.com",
                "clientId": "gateway-2",
            }}}),
        )
        .await;
    assert!(same_issuer["errors"].is_null(), "{same_issuer}");
}

#[tokio::test]
async fn a_pre_claimed_account_is_never_reached_by_sso() {
    let smtp = SmtpSink::start();
    let dns = free_port();
    let f = fixture(&smtp, dns).await;
    let (_, _dns) = verified_domain(&f.app, &f.admin, &f.org, "corp.example", dns).await;
    let corp = f.provider().await;

    // The attacker registers Alice's address before she ever signs in; they cannot read the
    // verification link, which goes to Alice.
    let attacker = f.app.sign_up("alice@corp.example").await;
    let me = f
        .app
        .gql(Some(&attacker), "{ me { emailVerified } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["emailVerified"], false, "{me}");

    // Alice signs in through her company's IdP, in a domain the company verified: refused, so
    // the attacker's password does not become a way into her SSO roles.
    let landed = f.sign_in(&corp, "alice@corp.example", &[]).await;
    assert!(refusal(&landed).contains("link"), "{landed:?}");
    let orgs = f
        .app
        .gql(Some(&attacker), "{ organizations { id } }", json!({}))
        .await;
    assert_eq!(orgs["data"]["organizations"], json!([]), "{orgs}");
}

#[tokio::test]
async fn a_verified_account_in_a_verified_domain_links_and_its_sso_session_stays_in_the_organization()
 {
    let smtp = SmtpSink::start();
    let dns = free_port();
    let f = fixture(&smtp, dns).await;
    // Bob has a password account with a proven email and an organization of his own.
    let bob = verified_account(&f.app, &smtp, "bob@corp.example").await;
    let own_org = f.app.create_org(&bob, "bobs").await;
    let (_, _dns) = verified_domain(&f.app, &f.admin, &f.org, "corp.example", dns).await;
    let corp = f.provider().await;

    // His company's IdP may speak for him: the sign-in links his identity to his account.
    let landed = f.sign_in(&corp, "bob@corp.example", &[]).await;
    assert!(!landed.contains_key("error"), "{landed:?}");
    let sso = landed["token"].clone();
    let me = f.app.gql(Some(&sso), "{ me { email } }", json!({})).await;
    assert_eq!(data_str(&me, &["me", "email"]), "bob@corp.example");
    // ...and a second sign-in finds him through the link.
    let again = f.sign_in(&corp, "bob@corp.example", &[]).await;
    assert!(!again.contains_key("error"), "{again:?}");

    // The SSO session acts in the provider's organization...
    let acme = f
        .app
        .gql(
            Some(&sso),
            "query($o: ID!) { organization(id: $o) { slug } }",
            json!({ "o": f.org }),
        )
        .await;
    assert_eq!(data_str(&acme, &["organization", "slug"]), "acme");
    // ...and nowhere else: not his own organization, not in lists, not in checks.
    let other = f
        .app
        .gql(
            Some(&sso),
            "query($o: ID!) { organization(id: $o) { slug } }",
            json!({ "o": own_org }),
        )
        .await;
    assert_error(&other, "NOT_FOUND");
    let listed = f
        .app
        .gql(
            Some(&sso),
            "{ organizations { slug } me { organizations { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["data"]["organizations"],
        json!([{ "slug": "acme" }]),
        "{listed}"
    );
    assert_eq!(
        listed["data"]["me"]["organizations"],
        json!([{ "slug": "acme" }]),
        "{listed}"
    );
    let check = "query($n: ID!) { check(input: {nodeId: $n, resourceType: \"workspace\", action: \"read\"}) { allowed } }";
    for _ in 0..2 {
        // Twice: the second would be answered without the executor if the first ran cleanly.
        let r = f.app.gql(Some(&sso), check, json!({ "n": own_org })).await;
        assert_error(&r, "NOT_FOUND");
    }
    let by_password = f.app.gql(Some(&bob), check, json!({ "n": own_org })).await;
    assert_eq!(
        by_password["data"]["check"]["allowed"], true,
        "{by_password}"
    );

    // Account-wide operations need a session that is not bound to one organization.
    let change = f
        .app
        .gql(
            Some(&sso),
            "mutation { changePassword(input: {currentPassword: \"x\", newPassword: \"a much longer new password\"}) { sessionsRevoked } }",
            json!({}),
        )
        .await;
    assert_error(&change, "FORBIDDEN");
    let create = f
        .app
        .gql(
            Some(&sso),
            "mutation { createOrganization(input: {slug: \"bobs-2\", name: \"Bob 2\"}) { organization { id } } }",
            json!({}),
        )
        .await;
    assert_error(&create, "FORBIDDEN");
    let others = f
        .app
        .gql(
            Some(&sso),
            "mutation { revokeOtherSessions { revokedCount } }",
            json!({}),
        )
        .await;
    assert_error(&others, "FORBIDDEN");
    let sessions = f
        .app
        .gql(Some(&sso), "{ mySessions { id } }", json!({}))
        .await;
    assert_eq!(
        sessions["data"]["mySessions"].as_array().map(Vec::len),
        Some(2),
        "only the two SSO sessions of this organization, not the password one: {sessions}"
    );
}

#[tokio::test]
async fn a_verification_link_works_once() {
    let smtp = SmtpSink::start();
    let f = fixture(&smtp, free_port()).await;
    f.app.sign_up("once@example.com").await;
    let link = verification_link(&smtp, "once@example.com").await;
    let token = link.split("token=").nth(1).unwrap();
    let verify =
        "mutation($t: String!) { verifyEmail(input: {token: $t}) { user { emailVerified } } }";
    let first = f.app.gql(None, verify, json!({ "t": token })).await;
    assert_eq!(
        first["data"]["verifyEmail"]["user"]["emailVerified"], true,
        "{first}"
    );
    let replayed = f.app.gql(None, verify, json!({ "t": token })).await;
    assert_error(&replayed, "BAD_USER_INPUT");
    let forged = f
        .app
        .gql(None, verify, json!({ "t": "iam_v_not-a-real-token" }))
        .await;
    assert_error(&forged, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_domain_is_verified_by_one_organization_at_a_time_and_only_by_its_managers() {
    let dns = free_port();
    let f = Fixture::with(move |c| c.dns_resolver = Some(dns)).await;
    let (acme_domain, acme_dns) =
        verified_domain(&f.app, &f.admin, &f.org, "corp.example", dns).await;

    // Another organization claims the same domain, and even gets a record published: CONFLICT.
    let mallory = f.app.sign_up("mallory@evil.example").await;
    let evil = f.app.create_org(&mallory, "evil").await;
    let added = f
        .app
        .gql(
            Some(&mallory),
            ADD_DOMAIN,
            json!({ "o": evil, "d": "corp.example" }),
        )
        .await;
    let evil_domain = data_str(&added, &["addOrganizationDomain", "id"]);
    let name = data_str(&added, &["addOrganizationDomain", "txtRecordName"]);
    let value = data_str(&added, &["addOrganizationDomain", "txtRecordValue"]);
    drop(acme_dns);
    let _both = Dns::serve(dns, &[(&name, &value)]).await;
    let stolen = f
        .app
        .gql(Some(&mallory), VERIFY_DOMAIN, json!({ "i": evil_domain }))
        .await;
    assert_error(&stolen, "CONFLICT");

    // Nobody outside acme reaches its domain; a member without `sso:*:manage` is refused.
    for attempt in [VERIFY_DOMAIN, REMOVE_DOMAIN] {
        let r = f
            .app
            .gql(Some(&mallory), attempt, json!({ "i": acme_domain }))
            .await;
        assert_error(&r, "NOT_FOUND");
    }
    let viewer = f.app.sign_up("viewer@example.com").await;
    f.app
        .join(&f.admin, &f.org, "viewer@example.com", &viewer)
        .await;
    let r = f
        .app
        .gql(Some(&viewer), REMOVE_DOMAIN, json!({ "i": acme_domain }))
        .await;
    assert_error(&r, "FORBIDDEN");
    let listed = f
        .app
        .gql(
            Some(&viewer),
            "query($o: ID!) { organization(id: $o) { domains { domain } } }",
            json!({ "o": f.org }),
        )
        .await;
    assert_error(&listed, "FORBIDDEN");
    let bad = f
        .app
        .gql(
            Some(&f.admin),
            ADD_DOMAIN,
            json!({ "o": f.org, "d": "not a domain" }),
        )
        .await;
    assert_error(&bad, "BAD_USER_INPUT");

    // Once acme lets it go, the other organization can verify it.
    let removed = f
        .app
        .gql(Some(&f.admin), REMOVE_DOMAIN, json!({ "i": acme_domain }))
        .await;
    assert!(removed["errors"].is_null(), "{removed}");
    let now_theirs = f
        .app
        .gql(Some(&mallory), VERIFY_DOMAIN, json!({ "i": evil_domain }))
        .await;
    assert_eq!(
        now_theirs["data"]["verifyOrganizationDomain"]["verified"], true,
        "{now_theirs}"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_txt_record_does_not_verify_a_domain() {
    let dns = free_port();
    let smtp = SmtpSink::start();
    let f = fixture(&smtp, dns).await;
    let added = f
        .app
        .gql(
            Some(&f.admin),
            ADD_DOMAIN,
            json!({ "o": f.org, "d": "corp.example" }),
        )
        .await;
    let id = data_str(&added, &["addOrganizationDomain", "id"]);
    let name = data_str(&added, &["addOrganizationDomain", "txtRecordName"]);
    let _dns = Dns::serve(
        dns,
        &[(&name, "iam-gateway-verification=someone-elses-token")],
    )
    .await;
    let r = f
        .app
        .gql(Some(&f.admin), VERIFY_DOMAIN, json!({ "i": id }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert!(
        r.to_string().contains(&name),
        "the error says where the record goes: {r}"
    );
    let domains = f
        .app
        .gql(
            Some(&f.admin),
            "query($o: ID!) { organization(id: $o) { domains { verified } } }",
            json!({ "o": f.org }),
        )
        .await;
    assert_eq!(
        domains["data"]["organization"]["domains"],
        json!([{ "verified": false }])
    );
}

#[tokio::test]
async fn a_provider_limited_to_domains_creates_no_account_elsewhere() {
    let f = Fixture::new().await;
    let made = saml_provider_via_api(&f, &f.admin, &f.org).await;
    let r = f
        .app
        .gql(
            Some(&f.admin),
            "mutation($i: UpdateSsoProviderInput!) { updateSsoProvider(input: $i) { jitDomains } }",
            json!({ "i": { "id": made["id"], "jitDomains": ["Corp.Example"] } }),
        )
        .await;
    assert_eq!(
        r["data"]["updateSsoProvider"]["jitDomains"],
        json!(["corp.example"]),
        "{r}"
    );
    let p = provider(&f, &made["id"]).await;
    let landed = f.sign_in(&p, "stranger@gmail.example", &[]).await;
    assert!(refusal(&landed).contains("domain"), "{landed:?}");
    let landed = f.sign_in(&p, "new.hire@corp.example", &[]).await;
    assert!(!landed.contains_key("error"), "{landed:?}");
}

#[tokio::test]
async fn an_unsolicited_saml_response_is_refused_unless_the_provider_allows_it() {
    let f = Fixture::new().await;
    let made = saml_provider_via_api(&f, &f.admin, &f.org).await;
    let p = provider(&f, &made["id"]).await;
    assert!(!p.allow_idp_initiated, "off by default");
    let sp_metadata = f.sp_metadata(&p).await;
    let unsolicited = || {
        Idp::new().respond(
            &sp_metadata,
            json!({ "name_id": "lin@example.com", "attributes": { "email": ["lin@example.com"] } }),
        )
    };
    // Anyone holding such a response could sign a victim's browser in to it (login CSRF).
    let answer = unsolicited();
    let landed = f
        .post_acs(&p, answer["saml_response"].as_str().unwrap(), None)
        .await;
    assert!(refusal(&landed).contains("start signing in"), "{landed:?}");

    let r = f
        .app
        .gql(
            Some(&f.admin),
            "mutation($i: UpdateSsoProviderInput!) { updateSsoProvider(input: $i) { allowIdpInitiated } }",
            json!({ "i": { "id": made["id"], "allowIdpInitiated": true } }),
        )
        .await;
    assert_eq!(
        r["data"]["updateSsoProvider"]["allowIdpInitiated"], true,
        "{r}"
    );
    let p = provider(&f, &made["id"]).await;
    let answer = unsolicited();
    let landed = f
        .post_acs(&p, answer["saml_response"].as_str().unwrap(), None)
        .await;
    assert!(!landed.contains_key("error"), "{landed:?}");
}

const START_LINK: &str = "mutation($p: ID!) { startSsoLink(input: {providerId: $p}) { url } }";

#[tokio::test]
async fn an_identity_links_only_by_a_round_trip_from_the_accounts_own_password_session() {
    let f = Fixture::new().await;
    let corp = f.provider().await;
    let carol = f.app.sign_up("carol@elsewhere.example").await;

    // Not linked, email not verified, domain not the organization's: refused.
    let landed = f.sign_in(&corp, "carol@elsewhere.example", &[]).await;
    assert!(refusal(&landed).contains("startSsoLink"), "{landed:?}");

    // Nobody but a signed-in account holder starts a link, and only with a usable provider.
    let anonymous = f.app.gql(None, START_LINK, json!({ "p": corp.id })).await;
    assert_error(&anonymous, "UNAUTHENTICATED");
    let unknown = f
        .app
        .gql(
            Some(&carol),
            START_LINK,
            json!({ "p": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_error(&unknown, "NOT_FOUND");

    // Carol starts the link from her password session and signs in at the IdP.
    let linked = link_round_trip(&f, &corp, &carol, "carol@elsewhere.example").await;
    assert!(
        !linked.contains_key("token"),
        "a link opens no session: {linked:?}"
    );
    // Not linked until her own session confirms it.
    let landed = f.sign_in(&corp, "carol@elsewhere.example", &[]).await;
    assert!(refusal(&landed).contains("startSsoLink"), "{landed:?}");
    let confirmed = confirm_link(&f, &carol, &linked).await;
    assert_eq!(
        data_str(&confirmed, &["confirmSsoLink", "providerId"]),
        corp.id.to_string()
    );
    // A code works once.
    let again = confirm_link(&f, &carol, &linked).await;
    assert_error(&again, "BAD_USER_INPUT");

    // Now the identity signs in to her account.
    let landed = f.sign_in(&corp, "carol@elsewhere.example", &[]).await;
    assert!(!landed.contains_key("error"), "{landed:?}");
    let sso = landed["token"].clone();
    let me = f.app.gql(Some(&sso), "{ me { email } }", json!({})).await;
    assert_eq!(data_str(&me, &["me", "email"]), "carol@elsewhere.example");

    // An SSO session cannot start a link (it would bind more identities to the account).
    let from_sso = f
        .app
        .gql(Some(&sso), START_LINK, json!({ "p": corp.id }))
        .await;
    assert_error(&from_sso, "FORBIDDEN");

    // Another account cannot take over the identity by linking it too.
    let dave = f.app.sign_up("dave@elsewhere.example").await;
    let stolen = link_round_trip(&f, &corp, &dave, "carol@elsewhere.example").await;
    let r = confirm_link(&f, &dave, &stolen).await;
    assert_error(&r, "BAD_USER_INPUT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already linked"),
        "{r}"
    );
}

/// Link CSRF: Mallory starts a link from her account and has Victor's browser finish the round
/// trip at the IdP (a link in an email is enough when Victor is signed in there). Were the
/// identity linked then, Victor's later SSO sign-ins would open Mallory's account, and his IdP
/// groups would bind their roles to it. The round trip only hands Victor's browser a code that
/// Mallory's account must confirm, and Victor's session cannot.
#[tokio::test]
async fn a_link_finished_in_someone_elses_browser_is_never_made() {
    let f = Fixture::new().await;
    let corp = f.provider().await;
    let mallory = f.app.sign_up("mallory@elsewhere.example").await;
    let victor = f.app.sign_up("victor@elsewhere.example").await;

    // Mallory's link URL, finished by Victor at the IdP: his browser lands with the code.
    let landed = link_round_trip(&f, &corp, &mallory, "victor@elsewhere.example").await;
    assert!(!landed.contains_key("token"), "{landed:?}");

    // Victor's frontend confirms it with his own session: refused, since he did not start it.
    let r = confirm_link(&f, &victor, &landed).await;
    assert_error(&r, "BAD_USER_INPUT");
    // An SSO session of anyone cannot confirm either, nor can an anonymous caller.
    let anonymous = f
        .app
        .gql(None, CONFIRM_LINK, json!({ "c": landed["link_code"] }))
        .await;
    assert_error(&anonymous, "UNAUTHENTICATED");

    // Nothing was linked: Victor's identity does not open Mallory's account.
    let signed_in = f.sign_in(&corp, "victor@elsewhere.example", &[]).await;
    assert!(
        !signed_in.contains_key("token"),
        "an SSO sign-in reached an account: {signed_in:?}"
    );
}

#[tokio::test]
async fn a_closed_deployment_lets_only_verified_operators_create_organizations() {
    let smtp = SmtpSink::start();
    let smtp_url = smtp.url();
    let app = TestApp::start_with(move |c| {
        c.smtp_url = Some(smtp_url);
        c.org_creation = iam_gateway::config::OrgCreation::Operators;
        c.platform_operators = vec!["Ops@Example.com".to_owned()];
    })
    .await;
    let create = "mutation($s: String!) { createOrganization(input: {slug: $s, name: \"X\"}) { organization { id } } }";
    let stranger = app.sign_up("stranger@example.com").await;
    let r = app
        .gql(Some(&stranger), create, json!({ "s": "mine" }))
        .await;
    assert_error(&r, "FORBIDDEN");
    // The operator's address, registered but not proven, could be anyone's.
    let operator = app.sign_up("ops@example.com").await;
    let r = app
        .gql(Some(&operator), create, json!({ "s": "early" }))
        .await;
    assert_error(&r, "FORBIDDEN");
    verify_by_link(&app, &smtp, "ops@example.com").await;
    let r = app
        .gql(Some(&operator), create, json!({ "s": "acme" }))
        .await;
    assert!(r["errors"].is_null(), "{r}");
}
