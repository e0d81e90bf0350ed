//! The address table, and the client against tiny local servers: each hop (redirects, the
//! OIDC library's requests) checked, bodies capped.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[test]
fn addresses_are_classified() {
    use Reserved::*;
    let table: &[(&str, Option<Reserved>)] = &[
        ("0.0.0.0", Some(Unspecified)),
        ("0.1.2.3", Some(Special)),
        ("127.0.0.1", Some(Loopback)),
        ("127.255.255.254", Some(Loopback)),
        ("10.0.0.1", Some(Private)),
        ("172.16.0.1", Some(Private)),
        ("172.31.255.255", Some(Private)),
        ("172.32.0.1", None),
        ("192.168.1.1", Some(Private)),
        ("100.64.0.1", Some(SharedAddressSpace)),
        ("100.127.255.255", Some(SharedAddressSpace)),
        ("100.128.0.1", None),
        ("169.254.169.254", Some(LinkLocal)),
        ("192.0.0.8", Some(Special)),
        ("192.0.2.1", Some(Documentation)),
        ("198.51.100.7", Some(Documentation)),
        ("203.0.113.9", Some(Documentation)),
        ("198.18.0.1", Some(Special)),
        ("224.0.0.1", Some(Multicast)),
        ("239.255.255.250", Some(Multicast)),
        ("240.0.0.1", Some(Special)),
        ("255.255.255.255", Some(Broadcast)),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("::", Some(Unspecified)),
        ("::1", Some(Loopback)),
        ("::ffff:127.0.0.1", Some(Loopback)),
        ("::ffff:10.1.2.3", Some(Private)),
        ("::ffff:169.254.169.254", Some(LinkLocal)),
        ("::ffff:8.8.8.8", None),
        ("::127.0.0.1", Some(Special)),
        ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
        ("64:ff9b::808:808", None),
        ("64:ff9b:1::1", Some(Special)),
        ("100::1", Some(Special)),
        ("2001:db8::1", Some(Documentation)),
        ("3fff::1", Some(Documentation)),
        ("2001::1", Some(Special)),
        ("2002:7f00:1::1", Some(Loopback)),
        ("2002:808:808::1", None),
        ("fc00::1", Some(UniqueLocal)),
        ("fd12:3456::1", Some(UniqueLocal)),
        ("fe80::1", Some(LinkLocal)),
        ("febf::1", Some(LinkLocal)),
        ("fec0::1", Some(Special)),
        ("ff02::1", Some(Multicast)),
        ("2606:4700::1111", None),
        ("2a00:1450:4001::200e", None),
    ];
    for (text, expected) in table {
        let ip: IpAddr = text.parse().unwrap();
        assert_eq!(classify(ip), *expected, "{text}");
    }
}

#[test]
fn the_policy_opens_private_networks_only_when_told_and_never_multicast() {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let metadata: IpAddr = "169.254.169.254".parse().unwrap();
    let multicast: IpAddr = "224.0.0.1".parse().unwrap();
    let public: IpAddr = "8.8.8.8".parse().unwrap();
    let closed = AddressPolicy::public_only();
    assert_eq!(closed.check(loopback), Err(Reserved::Loopback));
    assert_eq!(closed.check(metadata), Err(Reserved::LinkLocal));
    assert_eq!(closed.check(public), Ok(()));
    let open = AddressPolicy::from_setting(true);
    assert_eq!(open.check(loopback), Ok(()));
    assert_eq!(open.check(metadata), Ok(()));
    assert_eq!(open.check(multicast), Err(Reserved::Multicast));
    let one = AddressPolicy::public_only().allowing(loopback);
    assert_eq!(one.check(loopback), Ok(()));
    assert_eq!(
        one.check("::ffff:127.0.0.1".parse().unwrap()),
        Ok(()),
        "the same address, mapped"
    );
    assert_eq!(
        one.check("127.0.0.2".parse().unwrap()),
        Err(Reserved::Loopback)
    );
}

/// A local HTTP server that answers every request with `answer(path)` and counts the
/// connections it accepted.
struct Peer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    written: Arc<AtomicUsize>,
}

enum Reply {
    /// A complete answer (head and body).
    Raw(String),
    /// `200`, closed-delimited, `n` bytes of `x` written in chunks until the client leaves.
    Endless(usize),
}

impl Peer {
    async fn start(ip: &str, answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(answer);
        let (count, bytes) = (connections.clone(), written.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                    match answer(&path) {
                        Reply::Raw(reply) => {
                            let _ = socket.write_all(reply.as_bytes()).await;
                        }
                        Reply::Endless(total) => {
                            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                            if socket.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = vec![b'x'; 64 * 1024];
                            let mut sent = 0;
                            while sent < total {
                                if socket.write_all(&chunk).await.is_err() {
                                    return;
                                }
                                sent += chunk.len();
                                bytes.fetch_add(chunk.len(), Ordering::SeqCst);
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

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn redirect_to(location: String) -> impl Fn(&str) -> Reply {
    move |_| {
        Reply::Raw(format!(
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ))
    }
}

fn ok(body: &'static str) -> impl Fn(&str) -> Reply {
    move |_| {
        Reply::Raw(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ))
    }
}

fn only(ip: &str) -> Outbound {
    Outbound::new(AddressPolicy::public_only().allowing(ip.parse().unwrap())).unwrap()
}

#[tokio::test]
async fn internal_addresses_are_refused_before_connecting() {
    let peer = Peer::start("127.0.0.1", ok("secret")).await;
    let outbound = Outbound::new(AddressPolicy::public_only()).unwrap();
    for url in [
        peer.url("/"),
        format!("http://localhost:{}/", peer.addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}/", peer.addr.port()),
        format!("http://2130706433:{}/", peer.addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00::1]/".to_owned(),
    ] {
        let err = outbound
            .get(&url, "*/*", Redirects::Follow)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{url}: {err:?}");
        assert!(err.to_string().starts_with("refused: "), "{err}");
        let checked = outbound.check_url(&url).await.unwrap_err();
        assert!(matches!(checked, FetchError::Refused { .. }), "{url}");
    }
    assert_eq!(peer.connections(), 0);
}

#[tokio::test]
async fn a_redirect_to_another_address_is_refused() {
    let inner = Peer::start("127.0.0.2", ok("internal")).await;
    let outer = Peer::start("127.0.0.1", redirect_to(inner.url("/metadata"))).await;
    let err = only("127.0.0.1")
        .get(&outer.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Refused { ref host, kind: Reserved::Loopback } if host == "127.0.0.2"),
        "{err:?}"
    );
    assert_eq!(outer.connections(), 1);
    assert_eq!(inner.connections(), 0, "the refused hop was never made");
}

#[tokio::test]
async fn a_redirect_to_a_name_of_an_internal_address_is_refused() {
    // `localhost` is 127.0.0.1 here; only 127.0.0.2 (the first hop) is permitted.
    let inner = Peer::start("127.0.0.1", ok("internal")).await;
    let outer = Peer::start(
        "127.0.0.2",
        redirect_to(format!("http://localhost:{}/", inner.addr.port())),
    )
    .await;
    let err = only("127.0.0.2")
        .get(&outer.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Refused { ref host, .. } if host == "localhost"),
        "{err:?}"
    );
    assert_eq!(inner.connections(), 0);
}

#[tokio::test]
async fn permitted_redirects_are_followed_a_few_times_and_other_schemes_never() {
    let target = Peer::start("127.0.0.1", ok("<EntityDescriptor/>")).await;
    let hop = Peer::start("127.0.0.1", redirect_to(target.url("/final"))).await;
    let outbound = only("127.0.0.1");
    let answer = outbound
        .get(&hop.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, b"<EntityDescriptor/>");
    assert_eq!(answer.url.as_str(), target.url("/final"));

    let refused = outbound
        .get(&hop.url("/"), "*/*", Redirects::Refuse)
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::FOUND, "returned, not followed");

    // A server that redirects to itself forever.
    let lp = Peer::start("127.0.0.1", |path: &str| {
        Reply::Raw(format!(
            "HTTP/1.1 302 Found\r\nlocation: {path}x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ))
    })
    .await;
    let err = outbound
        .get(&lp.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects(_)), "{err:?}");
    assert_eq!(lp.connections(), MAX_REDIRECTS + 1);

    let file = Peer::start("127.0.0.1", redirect_to("file:///etc/passwd".to_owned())).await;
    let err = outbound
        .get(&file.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::BadUrl(_)), "{err:?}");
}

#[tokio::test]
async fn the_oidc_library_goes_through_the_same_checks() {
    // What a discovery document names (a JWKS, a token endpoint) is fetched by the library
    // through this client: one request per hop, each checked.
    let inner = Peer::start("127.0.0.2", ok("{}")).await;
    let outbound = only("127.0.0.1");
    let request = HttpRequest::new(Vec::new());
    let (mut parts, body) = request.into_parts();
    parts.uri = inner.url("/jwks").parse().unwrap();
    let err = outbound
        .call(HttpRequest::from_parts(parts, body))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
    assert_eq!(inner.connections(), 0);

    let permitted = Peer::start("127.0.0.1", ok("{\"keys\":[]}")).await;
    let mut request = HttpRequest::new(Vec::new());
    *request.uri_mut() = permitted.url("/jwks").parse().unwrap();
    let response = outbound.call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), b"{\"keys\":[]}");
}

#[tokio::test]
async fn an_answer_over_the_cap_is_refused_without_reading_it_all() {
    let outbound = only("127.0.0.1");
    // Declared too large: refused on the head.
    let declared = Peer::start("127.0.0.1", |_: &str| {
        Reply::Raw(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            MAX_BODY_BYTES + 1
        ))
    })
    .await;
    let err = outbound
        .get(&declared.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");

    // Undeclared: refused at the first chunk past the cap; the server could not send it all.
    const TOTAL: usize = 256 << 20;
    let endless = Peer::start("127.0.0.1", |_: &str| Reply::Endless(TOTAL)).await;
    let err = outbound
        .get(&endless.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("more than 1024 KiB"), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = endless.written.load(Ordering::SeqCst);
    assert!(written < TOTAL / 4, "{written} bytes were sent");
}

#[tokio::test]
async fn failures_do_not_tell_a_closed_port_from_a_broken_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let garbage = Peer::start("127.0.0.1", |_: &str| {
        Reply::Raw("SSH-2.0-OpenSSH\r\n".into())
    })
    .await;
    let outbound = only("127.0.0.1");
    let a = outbound
        .get(&format!("http://{closed}/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    let b = outbound
        .get(&garbage.url("/"), "*/*", Redirects::Follow)
        .await
        .unwrap_err();
    assert_eq!(a, FetchError::Unreachable(format!("http://{closed}/")));
    assert_eq!(b, FetchError::Unreachable(garbage.url("/")));
}
