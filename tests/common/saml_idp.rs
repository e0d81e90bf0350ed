//! A real SAML identity provider for the tests: pysaml2 (PyPI), signing with Debian's xmlsec1,
//! driven by `tests/idp/saml/idp.py`. It installs pysaml2 into `tests/idp/saml/pydeps` when it
//! is missing, and makes the IdP's key pairs (its own and a rogue one) with openssl, once per
//! test process. [`Fixture`] is an organization with a SAML provider over it.
use super::TestApp;
use iam_gateway::domain::Actor;
use iam_gateway::sso::{Provider, ProviderSettings, SamlSettings};
use iam_gateway::store::NewProvider;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use url::{Url, form_urlencoded};
use uuid::Uuid;

pub const IDP_ENTITY_ID: &str = "https://idp.test/saml/metadata";
pub const IDP_SSO_URL: &str = "https://idp.test/saml/sso";

pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp/saml")
}

/// A key pair made with openssl: `(private key, certificate)` PEM files.
pub struct KeyPair {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// The IdP's key pair, and a rogue one (another key, same subject), made once per process.
pub fn key_pairs() -> &'static (KeyPair, KeyPair) {
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
pub struct Idp {
    pub pair: &'static KeyPair,
}

impl Idp {
    pub fn new() -> Self {
        Self {
            pair: &key_pairs().0,
        }
    }

    /// The same IdP (entity id, SSO URL) but signing with another key.
    pub fn rogue() -> Self {
        Self {
            pair: &key_pairs().1,
        }
    }

    pub fn certificate_pem(&self) -> String {
        std::fs::read_to_string(&self.pair.cert).unwrap()
    }

    /// Runs `idp.py` with `request` (plus who the IdP is); its JSON answer.
    pub fn run(&self, mut request: Value) -> Value {
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
    pub fn metadata(&self) -> String {
        self.run(json!({ "command": "metadata" }))["metadata"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A signed response for the SP described by `sp_metadata`, with `options` (see idp.py).
    pub fn respond(&self, sp_metadata: &str, options: Value) -> Value {
        let mut request = json!({ "command": "respond", "sp_metadata": sp_metadata });
        for (k, v) in options.as_object().unwrap() {
            request[k] = v.clone();
        }
        self.run(request)
    }
}

/// An organization with an admin, on an app whose `public_url` is its own address.
pub struct Fixture {
    pub app: TestApp,
    pub admin: String,
    pub admin_id: Uuid,
    pub org: String,
    pub landing: String,
    /// A browser: redirects are not followed.
    pub browser: reqwest::Client,
}

/// Where the landing page is, for an app at `addr`.
pub fn landing_of(addr: SocketAddr) -> String {
    format!("http://{addr}/signed-in")
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// As [`Fixture::new`], with more settings changed by `tweak`.
    pub async fn with(tweak: impl FnOnce(&mut iam_gateway::config::Config)) -> Self {
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

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.admin_id),
            ..Actor::default()
        }
    }

    pub fn settings(by_metadata: Option<String>, idp: &Idp) -> SamlSettings {
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

    pub async fn create_provider(&self, settings: ProviderSettings, enabled: bool) -> Provider {
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
    pub async fn provider(&self) -> Provider {
        let settings = Self::settings(None, &Idp::new());
        self.create_provider(ProviderSettings::Saml(settings), true)
            .await
    }

    /// A SAML provider for the IdP, known by its metadata XML.
    pub async fn provider_by_metadata(&self) -> Provider {
        let settings = Self::settings(Some(Idp::new().metadata()), &Idp::new());
        self.create_provider(ProviderSettings::Saml(settings), true)
            .await
    }

    pub async fn map_group(
        &self,
        provider: &Provider,
        group: &str,
        role: &str,
        node: &str,
    ) -> Uuid {
        let store = &self.app.state.services.store();
        let node = store.node(node.parse().unwrap()).await.unwrap().unwrap();
        store
            .add_group_mapping(provider, group, role.parse().unwrap(), &node, &self.actor())
            .await
            .unwrap()
            .id
    }

    /// The gateway's SP metadata for `provider`, from its route.
    pub async fn sp_metadata(&self, provider: &Provider) -> String {
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
    pub async fn login(&self, provider: &Provider, return_to: Option<&str>) -> Url {
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
    pub async fn post_acs(
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
    pub async fn sign_in(
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
    pub async fn signed_in(&self, provider: &Provider, email: &str, groups: &[&str]) -> String {
        let landed = self.sign_in(provider, email, groups).await;
        assert!(!landed.contains_key("error"), "sign-in failed: {landed:?}");
        landed["token"].clone()
    }

    /// The (role, node, made by hand) bindings of `user` in the organization, sorted.
    pub async fn bindings(&self, user: &str) -> Vec<(String, String, bool)> {
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
    pub async fn user_exists(&self, email: &str) -> bool {
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
pub fn signed_ids(saml_response: &str) -> (String, Vec<String>) {
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
pub fn refusal(landed: &HashMap<String, String>) -> &str {
    assert!(
        !landed.contains_key("token"),
        "no token on failure: {landed:?}"
    );
    landed
        .get("error")
        .unwrap_or_else(|| panic!("expected an error: {landed:?}"))
}
