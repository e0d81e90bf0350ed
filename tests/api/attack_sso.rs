//! Attacks on the single sign-on trust boundary (issue #12, holes 1, 2 and 10): an identity
//! provider is trusted for its own organization's people, never for anyone else's account.
//!
//! Each test performs the attack through the real API, with a real signed SAML response from
//! pysaml2 (see `sso_saml.rs`), and sees it refused.

use serde_json::{Value, json};

use crate::common::{TestApp, assert_error, data_str};
use crate::sso_saml::{Fixture, Idp, refusal};

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
        .store
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
