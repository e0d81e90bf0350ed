//! SAML single sign-on against a real identity provider: pysaml2 (PyPI), signing with Debian's
//! xmlsec1, driven by `tests/idp/saml/idp.py`. The tests install pysaml2 into
//! `tests/idp/saml/pydeps` themselves when it is missing, and make the IdP's key pairs (its own
//! and a rogue one) with openssl, once per test process.
//!
//! A test plays the browser: it asks the gateway's login route for the redirect to the IdP,
//! hands that URL (with the AuthnRequest in it) to the IdP, posts the signed response the IdP
//! makes to the assertion consumer service, and reads the outcome from the fragment of the
//! gateway's redirect to the landing page.

use std::collections::HashMap;

use iam_gateway::outbound::{AddressPolicy, Outbound};
use iam_gateway::sso::{OidcSettings, ProviderSettings, SamlSettings, saml};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::saml_idp::{Fixture, IDP_ENTITY_ID, IDP_SSO_URL, Idp, refusal, signed_ids};
use crate::common::{DEVELOPER, OPERATOR, VIEWER, data_str};

#[tokio::test]
async fn sp_initiated_sign_in_creates_the_account_and_a_working_session() {
    let f = Fixture::new().await;
    let provider = f.provider_by_metadata().await;

    let sp_metadata = f.sp_metadata(&provider).await;
    let sp_entity_id = f.app.url(&format!("/auth/saml/{}/metadata", provider.id));
    let acs_url = f.app.url(&format!("/auth/saml/{}/acs", provider.id));
    assert!(sp_metadata.contains(&format!("entityID=\"{sp_entity_id}\"")));
    assert!(sp_metadata.contains(&format!(
        "Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{acs_url}\""
    )));
    assert!(sp_metadata.contains("nameid-format:emailAddress"));

    let to_idp = f.login(&provider, Some("/projects/billing?tab=keys")).await;
    assert!(to_idp.as_str().starts_with(IDP_SSO_URL), "{to_idp}");
    let query: HashMap<String, String> = to_idp.query_pairs().into_owned().collect();
    assert!(query.contains_key("SAMLRequest"), "{to_idp}");
    assert!(query.contains_key("RelayState"), "{to_idp}");
    assert!(!f.user_exists("ada@example.com").await);

    // The IdP reads the AuthnRequest from the redirect and answers it.
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({
            "request_url": to_idp.as_str(),
            "name_id": "ada@example.com",
            "attributes": {
                "email": ["Ada@Example.com"],
                "displayName": ["Ada Lovelace"],
                "groups": ["engineers", "everyone"],
            },
        }),
    );
    assert!(
        answer["in_response_to"].as_str().unwrap().starts_with('_'),
        "the IdP answers our request: {answer}"
    );
    assert_eq!(answer["destination"], json!(acs_url));
    let landed = f
        .post_acs(
            &provider,
            answer["saml_response"].as_str().unwrap(),
            answer["relay_state"].as_str(),
        )
        .await;
    assert!(!landed.contains_key("error"), "{landed:?}");
    assert_eq!(landed["return_to"], "/projects/billing?tab=keys");
    let expires_at = chrono::DateTime::parse_from_rfc3339(&landed["expires_at"]).unwrap();
    assert!(expires_at > chrono::Utc::now());

    let token = &landed["token"];
    let me = f
        .app
        .gql(
            Some(token),
            "{ me { email name organizations { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com", "{me}");
    assert_eq!(me["data"]["me"]["name"], "Ada Lovelace", "{me}");
    assert_eq!(me["data"]["me"]["organizations"][0]["id"], json!(f.org));
    assert!(
        f.user_exists("ada@example.com").await,
        "created just in time"
    );
    assert!(f.app.audit_actions().await.contains(&"sso.sync".to_owned()));
}

#[tokio::test]
async fn group_mappings_follow_the_idp_groups_and_leave_hand_made_bindings() {
    let f = Fixture::new().await;
    let provider = f.provider().await;
    let ws = f.app.create_workspace(&f.admin, &f.org, "prod").await;
    f.map_group(&provider, "engineers", DEVELOPER, &f.org).await;
    let ops = f.map_group(&provider, "ops", OPERATOR, &ws).await;

    let token = f
        .signed_in(
            &provider,
            "grace@example.com",
            &["engineers", "ops", "unmapped"],
        )
        .await;
    let grace = f.app.user_id(&token).await;
    assert_eq!(
        f.bindings(&grace).await,
        sorted(vec![
            (DEVELOPER.to_owned(), f.org.clone(), false),
            (OPERATOR.to_owned(), ws.clone(), false),
        ])
    );

    // An admin grants Viewer by hand; the IdP drops `engineers`, and the `ops` mapping goes.
    f.app.grant(&f.admin, &grace, VIEWER, &f.org).await;
    f.app
        .state
        .services
        .store()
        .remove_group_mapping(&provider, ops, &f.actor())
        .await
        .unwrap();
    f.signed_in(&provider, "grace@example.com", &["ops"]).await;
    assert_eq!(
        f.bindings(&grace).await,
        vec![(VIEWER.to_owned(), f.org.clone(), true)],
        "the SSO bindings are revoked; the one made by hand stays"
    );
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[tokio::test]
async fn idp_initiated_sign_in_is_accepted_with_a_signed_response() {
    let f = Fixture::new().await;
    let provider = f.provider().await;
    let sp_metadata = f.sp_metadata(&provider).await;

    // No AuthnRequest: no InResponseTo. The whole response is signed, not the assertion.
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({
            "name_id": "lin@example.com",
            "attributes": { "email": ["lin@example.com"], "groups": [] },
            "sign_response": true,
            "sign_assertion": false,
        }),
    );
    assert!(answer["in_response_to"].is_null());
    let (response_id, signed) = signed_ids(answer["saml_response"].as_str().unwrap());
    assert_eq!(signed, vec![response_id], "only the Response is signed");
    let landed = f
        .post_acs(
            &provider,
            answer["saml_response"].as_str().unwrap(),
            Some("/dashboard"),
        )
        .await;
    assert!(!landed.contains_key("error"), "{landed:?}");
    assert_eq!(landed["return_to"], "/dashboard");
    let me = f
        .app
        .gql(Some(&landed["token"]), "{ me { email } }", json!({}))
        .await;
    assert_eq!(data_str(&me, &["me", "email"]), "lin@example.com");

    // A RelayState that leaves the site is not handed on; the NameID stands in for the email.
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({ "name_id": "lin@example.com", "attributes": {} }),
    );
    let landed = f
        .post_acs(
            &provider,
            answer["saml_response"].as_str().unwrap(),
            Some("https://evil.example/"),
        )
        .await;
    assert!(!landed.contains_key("error"), "{landed:?}");
    assert!(!landed.contains_key("return_to"), "{landed:?}");
}

#[tokio::test]
async fn a_response_signed_by_another_key_or_not_at_all_is_refused() {
    let f = Fixture::new().await;
    let provider = f.provider().await;
    let sp_metadata = f.sp_metadata(&provider).await;

    let to_idp = f.login(&provider, None).await;
    let forged = Idp::rogue().respond(
        &sp_metadata,
        json!({
            "request_url": to_idp.as_str(),
            "name_id": "mallory@example.com",
            "attributes": { "email": ["mallory@example.com"] },
            "sign_response": true,
        }),
    );
    let landed = f
        .post_acs(&provider, forged["saml_response"].as_str().unwrap(), None)
        .await;
    assert_eq!(refusal(&landed), "the response's signature does not verify");

    let unsigned = Idp::new().respond(
        &sp_metadata,
        json!({
            "name_id": "mallory@example.com",
            "attributes": { "email": ["mallory@example.com"] },
            "sign_response": false,
            "sign_assertion": false,
        }),
    );
    let landed = f
        .post_acs(&provider, unsigned["saml_response"].as_str().unwrap(), None)
        .await;
    assert_eq!(refusal(&landed), "the response's signature does not verify");
    assert!(!f.user_exists("mallory@example.com").await);

    // What is not a SAML response at all.
    let landed = f.post_acs(&provider, "bm90IFNBTUw=", None).await;
    assert_eq!(
        refusal(&landed),
        "the sign-in response is not a SAML response"
    );
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_refused() {
    let f = Fixture::new().await;
    let provider = f.provider().await;
    let sp_metadata = f.sp_metadata(&provider).await;
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({
            "name_id": "ada@example.com",
            "attributes": { "email": ["ada@example.com"] },
            "audience": "https://another-app.example/saml",
        }),
    );
    let landed = f
        .post_acs(&provider, answer["saml_response"].as_str().unwrap(), None)
        .await;
    assert_eq!(refusal(&landed), "the assertion is for another audience");
    assert!(!f.user_exists("ada@example.com").await);
}

#[tokio::test]
async fn an_expired_assertion_is_refused() {
    let f = Fixture::new().await;
    let provider = f.provider().await;
    let sp_metadata = f.sp_metadata(&provider).await;
    // NotOnOrAfter ten minutes ago: beyond the minute of clock skew allowed.
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({
            "name_id": "ada@example.com",
            "attributes": { "email": ["ada@example.com"] },
            "lifetime_minutes": -10,
        }),
    );
    let landed = f
        .post_acs(&provider, answer["saml_response"].as_str().unwrap(), None)
        .await;
    assert_eq!(refusal(&landed), "the assertion has expired");
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let f = Fixture::new().await;
    let provider = f.provider().await;
    let sp_metadata = f.sp_metadata(&provider).await;

    // SP-initiated.
    let to_idp = f.login(&provider, None).await;
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({
            "request_url": to_idp.as_str(),
            "name_id": "ada@example.com",
            "attributes": { "email": ["ada@example.com"] },
        }),
    );
    let response = answer["saml_response"].as_str().unwrap();
    let first = f.post_acs(&provider, response, None).await;
    assert!(first.contains_key("token"), "{first:?}");
    let again = f.post_acs(&provider, response, None).await;
    assert_eq!(refusal(&again), "this assertion was already used");

    // IdP-initiated: nothing but the assertion id stops a second use.
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({ "name_id": "ada@example.com", "attributes": { "email": ["ada@example.com"] } }),
    );
    let response = answer["saml_response"].as_str().unwrap();
    assert!(
        f.post_acs(&provider, response, None)
            .await
            .contains_key("token")
    );
    let again = f.post_acs(&provider, response, None).await;
    assert_eq!(refusal(&again), "this assertion was already used");
}

#[tokio::test]
async fn an_unknown_in_response_to_is_refused() {
    let f = Fixture::new().await;
    let provider = f.provider().await;
    let other = f.provider().await;
    let sp_metadata = f.sp_metadata(&provider).await;
    let expected = "this sign-in was not started here, took too long or was already completed; please start again";

    let answer = Idp::new().respond(
        &sp_metadata,
        json!({
            "in_response_to": "_0123456789abcdef0123456789abcdef01234567",
            "name_id": "ada@example.com",
            "attributes": { "email": ["ada@example.com"] },
        }),
    );
    let landed = f
        .post_acs(&provider, answer["saml_response"].as_str().unwrap(), None)
        .await;
    assert_eq!(refusal(&landed), expected);

    // A sign-in pending at another provider is not one of this provider's.
    let to_other = f.login(&other, None).await;
    let pending: String = to_other
        .query_pairs()
        .find(|(k, _)| k == "RelayState")
        .unwrap()
        .1
        .into_owned();
    let answer = Idp::new().respond(
        &sp_metadata,
        json!({
            "in_response_to": pending,
            "name_id": "ada@example.com",
            "attributes": { "email": ["ada@example.com"] },
        }),
    );
    let landed = f
        .post_acs(&provider, answer["saml_response"].as_str().unwrap(), None)
        .await;
    assert_eq!(refusal(&landed), expected);
    assert!(!f.user_exists("ada@example.com").await);
}

#[tokio::test]
async fn unknown_disabled_and_oidc_providers_are_not_found() {
    let f = Fixture::new().await;
    let disabled = f
        .create_provider(
            ProviderSettings::Saml(Fixture::settings(None, &Idp::new())),
            false,
        )
        .await;
    let oidc = f
        .create_provider(
            ProviderSettings::Oidc(OidcSettings {
                issuer_url: "https://idp.test".to_owned(),
                client_id: "client".to_owned(),
                scopes: vec!["openid".to_owned()],
                groups_claim: "groups".to_owned(),
            }),
            true,
        )
        .await;
    let random = Uuid::new_v4().to_string();
    let disabled_id = disabled.id.to_string();
    let oidc_id = oidc.id.to_string();
    for id in [random.as_str(), "not-a-uuid", &disabled_id, &oidc_id] {
        let login = f
            .browser
            .get(f.app.url(&format!("/auth/saml/{id}/login")))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::NOT_FOUND, "login {id}");
        let acs = f
            .browser
            .post(f.app.url(&format!("/auth/saml/{id}/acs")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("SAMLResponse=eA%3D%3D")
            .send()
            .await
            .unwrap();
        assert_eq!(acs.status(), StatusCode::NOT_FOUND, "acs {id}");
    }
    for id in [random.as_str(), "not-a-uuid", &oidc_id] {
        let metadata = f
            .browser
            .get(f.app.url(&format!("/auth/saml/{id}/metadata")))
            .send()
            .await
            .unwrap();
        assert_eq!(metadata.status(), StatusCode::NOT_FOUND, "metadata {id}");
    }
    // The metadata of a provider that is still off is what its IdP is set up with.
    assert!(
        f.sp_metadata(&disabled)
            .await
            .contains("AssertionConsumerService")
    );
}

/// Serves `routes` on an ephemeral port; its base URL.
async fn serve(routes: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn test_connection_says_what_is_wrong_or_what_was_found() {
    let idp = Idp::new();
    let metadata = idp.metadata();
    let base = serve(
        axum::Router::new()
            .route(
                "/metadata",
                axum::routing::get(move || async move { metadata }),
            )
            .route(
                "/page",
                axum::routing::get(|| async { "<html><body>Welcome</body></html>" }),
            ),
    )
    .await;
    let by_url = |url: String| SamlSettings {
        idp_metadata_url: Some(url),
        ..Fixture::settings(None, &idp)
    };
    let only_url = |url: String| SamlSettings {
        idp_entity_id: None,
        idp_sso_url: None,
        idp_certificate: None,
        ..by_url(url)
    };

    // As the suite's applications are configured: the test IdP listens on loopback.
    let outbound = Outbound::new(AddressPolicy::from_setting(true)).unwrap();
    let ok = saml::test_connection(
        &outbound,
        &saml::MetadataCache::default(),
        &only_url(format!("{base}/metadata")),
    )
    .await
    .unwrap();
    assert!(ok.contains(IDP_ENTITY_ID), "{ok}");
    assert!(ok.contains(IDP_SSO_URL), "{ok}");
    assert!(ok.contains("test-idp"), "names the certificate: {ok}");

    let err = saml::test_connection(
        &outbound,
        &saml::MetadataCache::default(),
        &only_url(format!("{base}/page")),
    )
    .await
    .unwrap_err();
    assert!(err.contains("not SAML metadata"), "{err}");

    let err = saml::test_connection(
        &outbound,
        &saml::MetadataCache::default(),
        &only_url(format!("{base}/missing")),
    )
    .await
    .unwrap_err();
    assert!(err.contains("HTTP 404"), "{err}");

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = saml::test_connection(
        &outbound,
        &saml::MetadataCache::default(),
        &only_url(format!("http://127.0.0.1:{port}/metadata")),
    )
    .await
    .unwrap_err();
    assert!(err.contains("could not fetch"), "{err}");

    // Given one by one, without the certificate.
    let err = saml::test_connection(
        &outbound,
        &saml::MetadataCache::default(),
        &SamlSettings {
            idp_certificate: None,
            ..Fixture::settings(None, &idp)
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("no signing certificate"), "{err}");

    let err = saml::test_connection(
        &outbound,
        &saml::MetadataCache::default(),
        &SamlSettings {
            idp_certificate: Some(
                "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----"
                    .to_owned(),
            ),
            ..Fixture::settings(None, &idp)
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("not an X.509 certificate"), "{err}");
}
