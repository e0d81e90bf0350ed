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
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use iam_gateway::domain::Actor;
use iam_gateway::outbound::{AddressPolicy, Outbound};
use iam_gateway::sso::{OidcSettings, Provider, ProviderSettings, SamlSettings, saml};
use iam_gateway::store::NewProvider;
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::{Url, form_urlencoded};
use uuid::Uuid;

use crate::common::{DEVELOPER, OPERATOR, TestApp, VIEWER, data_str};

const IDP_ENTITY_ID: &str = "https://idp.test/saml/metadata";
const IDP_SSO_URL: &str = "https://idp.test/saml/sso";

fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp/saml")
}

/// A key pair made with openssl: `(private key, certificate)` PEM files.
pub(crate) struct KeyPair {
    key: PathBuf,
    cert: PathBuf,
}

/// The IdP's key pair, and a rogue one (another key, same subject), made once per process.
fn key_pairs() -> &'static (KeyPair, KeyPair) {
    static PAIRS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("iam-saml-idp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let make = |name: &str| {
            let pair = KeyPair {
                key: dir.join(format!("{name}-key.pem")),
                cert: dir.join(format!("{name}-cert.pem")),
            };
            let out = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=test-idp"])
                .arg("-keyout")
                .arg(&pair.key)
                .arg("-out")
                .arg(&pair.cert)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            pair
        };
        (make("idp"), make("rogue"))
    })
}

/// The identity provider, signing with `pair`.
pub(crate) struct Idp {
    pair: &'static KeyPair,
}

impl Idp {
    pub(crate) fn new() -> Self {
        Self {
            pair: &key_pairs().0,
        }
    }

    /// The same IdP (entity id, SSO URL) but signing with another key.
    fn rogue() -> Self {
        Self {
            pair: &key_pairs().1,
        }
    }

    pub(crate) fn certificate_pem(&self) -> String {
        std::fs::read_to_string(&self.pair.cert).unwrap()
    }

    /// Runs `idp.py` with `request` (plus who the IdP is); its JSON answer.
    fn run(&self, mut request: Value) -> Value {
        let pythonpath =
            crate::common::peers::pip_install("tests/idp/saml", "pysaml2==7.5.5", "saml2");
        request["entity_id"] = json!(IDP_ENTITY_ID);
        request["sso_url"] = json!(IDP_SSO_URL);
        request["key_file"] = json!(self.pair.key);
        request["cert_file"] = json!(self.pair.cert);
        let mut child = Command::new("python3")
            .arg(idp_dir().join("idp.py"))
            .env("PYTHONPATH", pythonpath)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(request.to_string().as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the IdP failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the IdP prints JSON")
    }

    /// The IdP's metadata XML.
    fn metadata(&self) -> String {
        self.run(json!({ "command": "metadata" }))["metadata"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A signed response for the SP described by `sp_metadata`, with `options` (see idp.py).
    pub(crate) fn respond(&self, sp_metadata: &str, options: Value) -> Value {
        let mut request = json!({ "command": "respond", "sp_metadata": sp_metadata });
        for (k, v) in options.as_object().unwrap() {
            request[k] = v.clone();
        }
        self.run(request)
    }
}

/// An organization with an admin, on an app whose `public_url` is its own address.
pub(crate) struct Fixture {
    pub(crate) app: TestApp,
    pub(crate) admin: String,
    admin_id: Uuid,
    pub(crate) org: String,
    landing: String,
    /// A browser: redirects are not followed.
    browser: reqwest::Client,
}

/// Where the landing page is, for an app at `addr`.
fn landing_of(addr: SocketAddr) -> String {
    format!("http://{addr}/signed-in")
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// As [`Fixture::new`], with more settings changed by `tweak`.
    pub(crate) async fn with(tweak: impl FnOnce(&mut iam_gateway::config::Config)) -> Self {
        let app = TestApp::start_bound(|config, addr| {
            config.public_url = format!("http://{addr}");
            config.sso_redirect_url = Some(landing_of(addr));
            tweak(config);
        })
        .await;
        let admin = app.sign_up("admin@example.com").await;
        let org = app.create_org(&admin, "acme").await;
        let admin_id = app.user_id(&admin).await.parse().unwrap();
        let landing = landing_of(app.addr);
        Self {
            app,
            admin,
            admin_id,
            org,
            landing,
            browser: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.admin_id),
            ..Actor::default()
        }
    }

    fn settings(by_metadata: Option<String>, idp: &Idp) -> SamlSettings {
        let (xml, entity, sso, cert) = match by_metadata {
            Some(xml) => (Some(xml), None, None, None),
            None => (
                None,
                Some(IDP_ENTITY_ID.to_owned()),
                Some(IDP_SSO_URL.to_owned()),
                Some(idp.certificate_pem()),
            ),
        };
        SamlSettings {
            idp_metadata_url: None,
            idp_metadata_xml: xml,
            idp_entity_id: entity,
            idp_sso_url: sso,
            idp_certificate: cert,
            email_attribute: "email".to_owned(),
            name_attribute: "displayName".to_owned(),
            groups_attribute: "groups".to_owned(),
        }
    }

    async fn create_provider(&self, settings: ProviderSettings, enabled: bool) -> Provider {
        self.app
            .state
            .services
            .store()
            .create_provider(
                NewProvider {
                    organization_id: self.org.parse().unwrap(),
                    name: "Corporate SAML".to_owned(),
                    enabled,
                    settings,
                    secret_ciphertext: None,
                    default_role_id: None,
                    jit_domains: None,
                    // The IdP-initiated tests need it; the default is off (see attack_sso.rs).
                    allow_idp_initiated: true,
                },
                &self.actor(),
            )
            .await
            .unwrap()
    }

    /// A SAML provider for the IdP, known by its entity id, SSO URL and certificate.
    pub(crate) async fn provider(&self) -> Provider {
        let settings = Self::settings(None, &Idp::new());
        self.create_provider(ProviderSettings::Saml(settings), true)
            .await
    }

    /// A SAML provider for the IdP, known by its metadata XML.
    async fn provider_by_metadata(&self) -> Provider {
        let settings = Self::settings(Some(Idp::new().metadata()), &Idp::new());
        self.create_provider(ProviderSettings::Saml(settings), true)
            .await
    }

    async fn map_group(&self, provider: &Provider, group: &str, role: &str, node: &str) -> Uuid {
        let store = &self.app.state.services.store();
        let node = store.node(node.parse().unwrap()).await.unwrap().unwrap();
        store
            .add_group_mapping(provider, group, role.parse().unwrap(), &node, &self.actor())
            .await
            .unwrap()
            .id
    }

    /// The gateway's SP metadata for `provider`, from its route.
    pub(crate) async fn sp_metadata(&self, provider: &Provider) -> String {
        let r = self
            .browser
            .get(
                self.app
                    .url(&format!("/auth/saml/{}/metadata", provider.id)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/samlmetadata+xml"
        );
        r.text().await.unwrap()
    }

    /// `GET /auth/saml/{id}/login?return_to=…`: the IdP URL the browser is sent to.
    pub(crate) async fn login(&self, provider: &Provider, return_to: Option<&str>) -> Url {
        let mut url = format!("/auth/saml/{}/login", provider.id);
        if let Some(r) = return_to {
            url.push_str("?return_to=");
            url.push_str(&form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>());
        }
        let r = self.browser.get(self.app.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login redirects");
        Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
    }

    /// Posts a response to the ACS; the fields of the landing page's fragment.
    pub(crate) async fn post_acs(
        &self,
        provider: &Provider,
        saml_response: &str,
        relay_state: Option<&str>,
    ) -> HashMap<String, String> {
        let mut form = vec![("SAMLResponse", saml_response)];
        if let Some(r) = relay_state {
            form.push(("RelayState", r));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .browser
            .post(self.app.url(&format!("/auth/saml/{}/acs", provider.id)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "the ACS redirects");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let (base, fragment) = location.split_once('#').expect("a fragment");
        assert_eq!(base, self.landing, "lands on sso_redirect_url");
        form_urlencoded::parse(fragment.as_bytes())
            .into_owned()
            .collect()
    }

    /// A full SP-initiated sign-in of `email` with `groups`: the landing page's fragment.
    pub(crate) async fn sign_in(
        &self,
        provider: &Provider,
        email: &str,
        groups: &[&str],
    ) -> HashMap<String, String> {
        let sp_metadata = self.sp_metadata(provider).await;
        let to_idp = self.login(provider, None).await;
        let answer = Idp::new().respond(
            &sp_metadata,
            json!({
                "request_url": to_idp.as_str(),
                "name_id": email,
                "attributes": { "email": [email], "displayName": ["Ada Lovelace"], "groups": groups },
            }),
        );
        self.post_acs(
            provider,
            answer["saml_response"].as_str().unwrap(),
            answer["relay_state"].as_str(),
        )
        .await
    }

    /// The token of a sign-in that must succeed.
    async fn signed_in(&self, provider: &Provider, email: &str, groups: &[&str]) -> String {
        let landed = self.sign_in(provider, email, groups).await;
        assert!(!landed.contains_key("error"), "sign-in failed: {landed:?}");
        landed["token"].clone()
    }

    /// The (role, node, made by hand) bindings of `user` in the organization, sorted.
    async fn bindings(&self, user: &str) -> Vec<(String, String, bool)> {
        let r = self
            .app
            .gql(
                Some(&self.admin),
                "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { roleId nodeId grantedBy } }",
                json!({ "o": self.org, "p": user }),
            )
            .await;
        let mut out: Vec<(String, String, bool)> = r["data"]["roleBindings"]
            .as_array()
            .unwrap_or_else(|| panic!("roleBindings failed: {r}"))
            .iter()
            .map(|b| {
                (
                    b["roleId"].as_str().unwrap().to_owned(),
                    b["nodeId"].as_str().unwrap().to_owned(),
                    !b["grantedBy"].is_null(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Whether an account with `email` was created (seen in the audit trail).
    async fn user_exists(&self, email: &str) -> bool {
        self.app
            .state
            .services
            .store()
            .audit_events(None, 10_000)
            .await
            .unwrap()
            .iter()
            .any(|e| {
                e.action == "user.create" && e.after.as_ref().is_some_and(|a| a["email"] == email)
            })
    }
}

/// The id of the Response in a base64 SAML response, and the ids its signatures cover.
fn signed_ids(saml_response: &str) -> (String, Vec<String>) {
    use base64::Engine;
    let xml = base64::engine::general_purpose::STANDARD
        .decode(saml_response)
        .unwrap();
    let xml = String::from_utf8(xml).unwrap();
    let attribute = |from: &str, name: &str| -> Vec<String> {
        from.split(name)
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .collect()
    };
    let root = xml
        .split('>')
        .find(|tag| tag.contains("Response "))
        .unwrap();
    let id = attribute(root, " ID=\"").remove(0);
    (id, attribute(&xml, "Reference URI=\"#"))
}

/// The refusal the landing page was given (and that no token came with it).
pub(crate) fn refusal(landed: &HashMap<String, String>) -> &str {
    assert!(
        !landed.contains_key("token"),
        "no token on failure: {landed:?}"
    );
    landed
        .get("error")
        .unwrap_or_else(|| panic!("expected an error: {landed:?}"))
}

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
