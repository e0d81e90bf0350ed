//! Login CSRF through OIDC (issue 12, hole 11): the `state` of a sign-in was not bound to the
//! browser that started it, so an attacker could start a sign-in with their own IdP account,
//! stop at the callback, and have a victim's browser finish it: the victim would then work in
//! the attacker's account (and type secrets into it). The login route now binds `state` to an
//! HttpOnly, SameSite=Lax cookie, and the callback refuses a `state` the browser was not given.

use serde_json::json;

use crate::common::oidc_idp::{Browser, CLIENT_SECRET, Sso};

#[tokio::test]
async fn a_callback_started_in_another_browser_signs_no_one_in() {
    let sso =
        Sso::start(json!({ "mallory": { "email": "mallory@example.com", "groups": [] } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;

    // The attacker signs in at the IdP in their own browser and keeps the callback URL.
    let mut attacker = Browser::new();
    let callback = sso.authorize(&mut attacker, &provider, "mallory").await;

    // The victim's browser is made to visit it: refused, no session.
    let mut victim = Browser::new();
    let landed = sso.callback(&mut victim, &callback).await;
    assert!(!landed.contains_key("token"), "{landed:?}");
    assert!(landed["error"].contains("browser"), "{landed:?}");

    // And the code is spent: the attacker's own browser cannot use it afterwards either.
    let landed = sso.callback(&mut attacker, &callback).await;
    assert!(!landed.contains_key("token"), "{landed:?}");
}

#[tokio::test]
async fn the_state_cookie_is_http_only_lax_and_scoped_to_the_sso_routes() {
    let sso = Sso::start(json!({ "dave": { "email": "dave@example.com", "groups": [] } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .get(sso.app.url(&format!("/auth/oidc/{}/login", provider.id)))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("iam_oidc_state="))
        .expect("the login sets the state cookie")
        .to_owned();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/auth/oidc"] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }

    // The same browser finishes its own sign-in.
    let mut browser = Browser::new();
    let callback = sso.authorize(&mut browser, &provider, "dave").await;
    let landed = sso.callback(&mut browser, &callback).await;
    assert!(landed.contains_key("token"), "{landed:?}");
}
