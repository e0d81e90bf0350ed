//! Server-side request forgery through SSO settings (issue 12, hole 9): an organization admin
//! names the URLs the gateway fetches (an OIDC issuer, and what its discovery document names;
//! a SAML metadata URL). With `sso_allow_private_networks` off, as deployed by default, nothing
//! on loopback, private, link-local or other reserved addresses is fetched: not when named by
//! address, nor by a name that resolves there, nor when such a provider was stored before;
//! and `testSsoConnection` is no oracle. With it on (as the rest of the suite runs), answers
//! are still capped. Redirect hops and discovered endpoints at other addresses are refused by
//! the same client: see the unit tests in `src/outbound/tests.rs` (a first hop on 127.0.0.1 is
//! refused here before any redirect could be seen).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iam_gateway::domain::Actor;
use iam_gateway::sso::{OidcSettings, Provider, ProviderSettings, SamlSettings};
use iam_gateway::store::NewProvider;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{TestApp, assert_error, data_str};
use crate::sso_config::SECRET_KEY;

const CREATE: &str =
    "mutation($i: CreateSsoProviderInput!) { createSsoProvider(input: $i) { id } }";
const UPDATE: &str =
    "mutation($i: UpdateSsoProviderInput!) { updateSsoProvider(input: $i) { id } }";
const TEST: &str = "mutation($id: ID!) { testSsoConnection(input: {id: $id}) { ok message } }";

/// An internal service: answers every request with `body` (or streams `endless` bytes of
/// JSON-looking filler until the client leaves), counting connections and bytes sent.
struct Internal {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    written: Arc<AtomicUsize>,
}

impl Internal {
    async fn start(ip: &str, body: &'static str, endless: Option<usize>) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicUsize::new(0));
        let (count, sent) = (connections.clone(), written.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let sent = sent.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    match endless {
                        None => {
                            let reply = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = socket.write_all(reply.as_bytes()).await;
                        }
                        Some(total) => {
                            // No length: the answer ends when the connection does.
                            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"issuer\":\"";
                            if socket.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = vec![b'a'; 64 * 1024];
                            while sent.load(Ordering::SeqCst) < total {
                                if socket.write_all(&chunk).await.is_err() {
                                    return;
                                }
                                sent.fetch_add(chunk.len(), Ordering::SeqCst);
                            }
                        }
                    }
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            addr,
            connections,
            written,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The answer an internal admin API might give: what an oracle would leak.
const SECRET_BODY: &str = r#"{"issuer":"internal","AccessKeyId":"AKIA-INTERNAL-SECRET"}"#;

async fn app(allow_private: bool) -> TestApp {
    TestApp::start_with(|c| {
        c.secret_key = Some(SECRET_KEY.to_owned());
        c.public_url = "https://iam.example.com".to_owned();
        c.sso_allow_private_networks = allow_private;
    })
    .await
}

fn oidc(org: &str, issuer: &str) -> Value {
    json!({ "organizationId": org, "name": "Internal", "enabled": true, "oidc": {
        "issuerUrl": issuer, "clientId": "gateway", "clientSecret": "s3cr3t" } })
}

fn saml(org: &str, metadata_url: &str) -> Value {
    json!({ "organizationId": org, "name": "Internal SAML", "enabled": true, "saml": {
        "idpMetadataUrl": metadata_url } })
}

/// A provider stored as it was before these checks (or for a name that resolved elsewhere
/// then), bypassing the API's own check at creation.
async fn stored(app: &TestApp, org: &str, settings: ProviderSettings) -> Provider {
    let services = &app.state.services;
    services
        .store()
        .create_provider(
            NewProvider {
                organization_id: org.parse().unwrap(),
                name: "Stored".to_owned(),
                enabled: true,
                settings,
                secret_ciphertext: Some(services.secrets.encrypt("s3cr3t").unwrap()),
                default_role_id: None,
                jit_domains: None,
                allow_idp_initiated: false,
            },
            &Actor::default(),
        )
        .await
        .unwrap()
}

fn oidc_settings(issuer: &str) -> ProviderSettings {
    ProviderSettings::Oidc(OidcSettings {
        issuer_url: issuer.to_owned(),
        client_id: "gateway".to_owned(),
        scopes: vec!["openid".to_owned(), "email".to_owned()],
        groups_claim: "groups".to_owned(),
    })
}

fn saml_settings(metadata_url: &str) -> ProviderSettings {
    ProviderSettings::Saml(SamlSettings {
        idp_metadata_url: Some(metadata_url.to_owned()),
        idp_metadata_xml: None,
        idp_entity_id: None,
        idp_sso_url: None,
        idp_certificate: None,
        email_attribute: "email".to_owned(),
        name_attribute: "name".to_owned(),
        groups_attribute: "groups".to_owned(),
    })
}

/// Where `GET path` sends the browser (the sign-in start), not followed.
async fn location(app: &TestApp, path: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let response = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303, "{path}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The internal URLs an admin might name for the services below (loopback by address, IPv6
/// loopback, a name of loopback, IPv4-mapped IPv6, the cloud metadata service, RFC 1918).
fn internal_urls(v4: &Internal, v6: &Internal) -> Vec<String> {
    vec![
        format!("http://127.0.0.1:{}", v4.addr.port()),
        format!("http://[::1]:{}", v6.addr.port()),
        format!("http://localhost:{}", v4.addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}", v4.addr.port()),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1".to_owned(),
    ]
}

#[tokio::test]
async fn internal_issuer_and_metadata_urls_are_refused_when_created_or_changed() {
    let app = app(false).await;
    let v4 = Internal::start("127.0.0.1", SECRET_BODY, None).await;
    let v6 = Internal::start("::1", SECRET_BODY, None).await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    for url in internal_urls(&v4, &v6) {
        for input in [oidc(&org, &url), saml(&org, &format!("{url}/metadata"))] {
            let r = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
            assert_error(&r, "BAD_USER_INPUT");
            let message = r["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("refused: "), "{url}: {message}");
        }
    }
    // A public-looking issuer is taken; changing it to an internal one is not.
    let r = app
        .gql(
            Some(&admin),
            CREATE,
            json!({ "i": oidc(&org, "https://idp.example.com") }),
        )
        .await;
    let id = data_str(&r, &["createSsoProvider", "id"]);
    let r = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "i": { "id": id, "oidc": {
                "issuerUrl": format!("http://localhost:{}", v4.addr.port()),
                "clientId": "gateway", "clientSecret": "s3cr3t" } } }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert_eq!(
        v4.connections() + v6.connections(),
        0,
        "nothing was fetched"
    );
}

#[tokio::test]
async fn stored_internal_providers_are_refused_on_test_and_sign_in_without_an_oracle() {
    let app = app(false).await;
    let v4 = Internal::start("127.0.0.1", SECRET_BODY, None).await;
    let v6 = Internal::start("::1", SECRET_BODY, None).await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    for url in internal_urls(&v4, &v6) {
        for (kind, settings) in [
            ("oidc", oidc_settings(&url)),
            ("saml", saml_settings(&format!("{url}/metadata"))),
        ] {
            let provider = stored(&app, &org, settings).await;
            let r = app
                .gql(Some(&admin), TEST, json!({ "id": provider.id.to_string() }))
                .await;
            let test = &r["data"]["testSsoConnection"];
            assert_eq!(test["ok"], false, "{url}: {r}");
            let message = test["message"].as_str().unwrap_or_default();
            assert!(message.contains("refused: "), "{kind} {url}: {message}");
            assert!(!message.contains("AKIA"), "{message}");

            let to = location(&app, &format!("/auth/{kind}/{}/login", provider.id)).await;
            assert!(to.contains("#error="), "{kind} {url}: {to}");
            assert!(to.contains("refused"), "{kind} {url}: {to}");
        }
    }
    assert_eq!(
        v4.connections() + v6.connections(),
        0,
        "no request reached the internal services"
    );
}

#[tokio::test]
async fn oversized_answers_are_refused_without_reading_them_all() {
    // On: the IdP below listens on loopback, as an on-premises one may.
    let app = app(true).await;
    const TOTAL: usize = 128 << 20;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    for kind in ["oidc", "saml"] {
        let huge = Internal::start("127.0.0.1", "", Some(TOTAL)).await;
        let url = format!("http://127.0.0.1:{}", huge.addr.port());
        let input = match kind {
            "oidc" => oidc(&org, &url),
            _ => saml(&org, &format!("{url}/metadata")),
        };
        let r = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        let id = data_str(&r, &["createSsoProvider", "id"]);
        let r = app.gql(Some(&admin), TEST, json!({ "id": id })).await;
        let test = &r["data"]["testSsoConnection"];
        assert_eq!(test["ok"], false, "{r}");
        let message = test["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("answered more than 1024 KiB"),
            "{kind}: {message}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let written = huge.written.load(Ordering::SeqCst);
        assert!(
            written < TOTAL / 4,
            "{kind}: {written} bytes were sent before the gateway stopped reading"
        );
    }
}
