//! The one HTTP client for every URL that someone other than the operator names: an
//! organization admin's OIDC issuer (its discovery document, and the token, userinfo and JWKS
//! endpoints that document names) and SAML metadata URL. Nothing else in the gateway fetches
//! such a URL (the OIDC library is built without an HTTP client of its own).
//!
//! Every hop is checked where it connects, not only where it starts:
//! - the host is resolved by the client's own resolver (`GuardedResolver`), which hands the
//!   connector only the addresses the [`AddressPolicy`] permits: the connection goes to an
//!   address that was checked, so a DNS answer that changes after the check (rebinding) cannot
//!   move it; a host given as an IP address is checked before the request is sent;
//! - redirects are followed by this module, never by reqwest: at most [`MAX_REDIRECTS`], each
//!   to an http(s) URL checked as above (OIDC requests follow none, as before);
//! - an answer larger than [`MAX_BODY_BYTES`] is refused as soon as it is known to be (a
//!   `Content-Length` over the limit, or the first chunk past it), without reading the rest;
//! - a connection must be made within [`CONNECT_TIMEOUT`], and the whole fetch (redirects and
//!   body included) end within [`TOTAL_TIMEOUT`];
//! - environment proxies are ignored (a proxy would connect on the client's behalf, unchecked).
//!
//! Errors ([`FetchError`]) are written for the admin and say no more than "refused: the
//! address is private" or "could not fetch": no body of an answer that was refused, and no
//! connection detail that would tell a closed port from a filtered one.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::{Host, Url};

/// Largest answer read (metadata, discovery documents, JWKS, token and userinfo answers).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole fetch may take, redirects and body included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most redirects followed by [`Redirects::Follow`].
pub const MAX_REDIRECTS: usize = 3;

/// Why an address is not a public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 (carrier-grade NAT): `100.64/10`.
    SharedAddressSpace,
    /// `169.254/16` (where cloud metadata services answer), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// The other special-purpose ranges: `0/8`, `192.0.0/24`, `192.88.99/24`, `198.18/15`,
    /// `240/4`, IPv4-compatible `::/96`, `64:ff9b:1::/48`, `100::/64`, `2001::/23`,
    /// `fec0::/10`.
    Special,
}

impl Reserved {
    /// "a loopback address", for messages.
    fn described(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private network address",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "a unique-local (private) address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Special => "a special-purpose address",
        }
    }

    /// Whether `IAM_SSO_ALLOW_PRIVATE_NETWORKS` opens it: addresses a server can listen at.
    fn opened_by_allow_private(self) -> bool {
        match self {
            Self::Loopback
            | Self::Private
            | Self::SharedAddressSpace
            | Self::LinkLocal
            | Self::UniqueLocal
            | Self::Documentation
            | Self::Special => true,
            Self::Unspecified | Self::Multicast | Self::Broadcast => false,
        }
    }
}

/// What `ip` is when it is not a public address; `None` when it is one.
pub fn classify(ip: IpAddr) -> Option<Reserved> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Reserved> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => Reserved::Unspecified,
        _ if ip.is_broadcast() => Reserved::Broadcast,
        (0, _, _) => Reserved::Special,
        (127, _, _) => Reserved::Loopback,
        (10, _, _) | (192, 168, _) => Reserved::Private,
        (172, b, _) if (16..32).contains(&b) => Reserved::Private,
        (100, b, _) if (64..128).contains(&b) => Reserved::SharedAddressSpace,
        (169, 254, _) => Reserved::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Reserved::Documentation,
        (192, 0, 0) | (192, 88, 99) => Reserved::Special,
        (198, 18 | 19, _) => Reserved::Special,
        (224..=239, _, _) => Reserved::Multicast,
        (240..=255, _, _) => Reserved::Special,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Reserved> {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() {
        return Some(Reserved::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Reserved::Loopback);
    }
    // INVARIANT: an address that carries an IPv4 address reaches that address (mapped, NAT64,
    // 6to4): it is what the IPv4 address is.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    match s {
        [0, 0, 0, 0, 0, 0, _, _] => Some(Reserved::Special),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded_v4(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Some(Reserved::Special),
        [0x100, 0, 0, 0, ..] => Some(Reserved::Special),
        [0x2001, 0xdb8, ..] => Some(Reserved::Documentation),
        [0x2001, b, ..] if b < 0x200 => Some(Reserved::Special),
        [0x2002, hi, lo, ..] => classify_v4(embedded_v4(hi, lo)),
        [0x3fff, b, ..] if b < 0x1000 => Some(Reserved::Documentation),
        [a, ..] if a & 0xfe00 == 0xfc00 => Some(Reserved::UniqueLocal),
        [a, ..] if a & 0xffc0 == 0xfe80 => Some(Reserved::LinkLocal),
        [a, ..] if a & 0xffc0 == 0xfec0 => Some(Reserved::Special),
        [a, ..] if a & 0xff00 == 0xff00 => Some(Reserved::Multicast),
        _ => None,
    }
}

/// Which addresses the client may connect to: public ones; with `allow_private`, also the
/// private and reserved ones a server can listen at; and the exact addresses of `allowed`.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow_private: bool,
    allowed: Vec<IpAddr>,
}

impl AddressPolicy {
    /// Public addresses only (the default).
    pub fn public_only() -> Self {
        Self::default()
    }

    /// As configured by `sso_allow_private_networks`.
    pub fn from_setting(allow_private_networks: bool) -> Self {
        Self {
            allow_private: allow_private_networks,
            allowed: Vec::new(),
        }
    }

    /// Also permits exactly `ip`, whatever it is.
    pub fn allowing(mut self, ip: IpAddr) -> Self {
        self.allowed.push(ip);
        self
    }

    /// `Ok` when a connection to `ip` is permitted; else why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Reserved> {
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|a| a.to_canonical() == ip) {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(kind) if self.allow_private && kind.opened_by_allow_private() => Ok(()),
            Some(kind) => Err(kind),
        }
    }
}

/// Why a fetch failed, in words for the admin who named the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("`{0}` is not an http(s) URL")]
    BadUrl(String),
    #[error(
        "refused: `{host}` is {}; this server fetches only from public addresses (its operator can allow private networks)",
        .kind.described()
    )]
    Refused { host: String, kind: Reserved },
    /// Whatever went wrong on the way (no address, no connection, no answer in time, a
    /// broken answer): deliberately one case.
    #[error("could not fetch `{0}`")]
    Unreachable(String),
    #[error("`{url}` answered more than {} KiB", MAX_BODY_BYTES >> 10)]
    TooLarge { url: String },
    #[error("`{0}` redirects more than {MAX_REDIRECTS} times")]
    TooManyRedirects(String),
}

/// Whether [`Outbound::get`] follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Returns a redirect as the answer.
    Refuse,
    /// Follows at most [`MAX_REDIRECTS`], each hop checked.
    Follow,
}

/// An answer, its body read (at most [`MAX_BODY_BYTES`]).
#[derive(Debug)]
pub struct Answer {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The refusal that [`GuardedResolver`] returns, found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0:?}")]
struct Refusal(Reserved);

/// Resolves names with the system resolver and keeps only the addresses the policy permits.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let permitted = permitted_addresses(&policy, &host).await?;
            let addrs: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses of `host` that `policy` permits; a [`Refusal`] when it has some and none is.
async fn permitted_addresses(
    policy: &AddressPolicy,
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let mut refused = None;
    let permitted: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match policy.check(a.ip()) {
            Ok(()) => true,
            Err(kind) => {
                refused.get_or_insert(kind);
                false
            }
        })
        .collect();
    match (permitted.is_empty(), refused) {
        (true, Some(kind)) => Err(Box::new(Refusal(kind))),
        _ => Ok(permitted),
    }
}

/// The client. Cheap to share (`Arc` inside reqwest's client).
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Outbound {
    pub fn new(policy: AddressPolicy) -> Result<Self, String> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver {
                policy: policy.clone(),
            })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .user_agent(concat!("iam-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the outbound HTTP client: {e}"))?;
        Ok(Self { client, policy })
    }

    /// Whether `raw` may be fetched as far as can be told now: an http(s) URL whose host is a
    /// permitted address, or a name none of whose current addresses is refused (a name that
    /// does not resolve now passes: every fetch checks again).
    pub async fn check_url(&self, raw: &str) -> Result<(), FetchError> {
        let url = http_url(raw)?;
        self.check_literal(&url)?;
        if let Some(Host::Domain(name)) = url.host()
            && let Err(e) = permitted_addresses(&self.policy, name).await
            && let Some(Refusal(kind)) = e.downcast_ref::<Refusal>()
        {
            return Err(FetchError::Refused {
                host: name.to_owned(),
                kind: *kind,
            });
        }
        Ok(())
    }

    /// GETs `raw` (accepting `accept`), following redirects or not.
    pub async fn get(
        &self,
        raw: &str,
        accept: &str,
        redirects: Redirects,
    ) -> Result<Answer, FetchError> {
        let start = http_url(raw)?;
        let fetch = async {
            let mut url = start.clone();
            let mut hops = 0;
            loop {
                let mut request = reqwest::Request::new(reqwest::Method::GET, url.clone());
                if let Ok(value) = accept.parse() {
                    request.headers_mut().insert(reqwest::header::ACCEPT, value);
                }
                let answer = self.hop(request).await?;
                let next = answer
                    .status
                    .is_redirection()
                    .then(|| answer.headers.get(reqwest::header::LOCATION))
                    .flatten()
                    .and_then(|l| l.to_str().ok())
                    .map(|l| answer.url.join(l));
                match (redirects, next) {
                    (Redirects::Follow, Some(next)) => {
                        hops += 1;
                        if hops > MAX_REDIRECTS {
                            return Err(FetchError::TooManyRedirects(start.to_string()));
                        }
                        let next = next.map_err(|_| FetchError::Unreachable(url.to_string()))?;
                        url = http_url(next.as_str())?;
                    }
                    _ => return Ok(answer),
                }
            }
        };
        tokio::time::timeout(TOTAL_TIMEOUT, fetch)
            .await
            .map_err(|_| FetchError::Unreachable(start.to_string()))?
    }

    /// Sends one request (no redirect followed) and reads its answer.
    async fn hop(&self, request: reqwest::Request) -> Result<Answer, FetchError> {
        let url = request.url().clone();
        self.check_literal(&url)?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| failure(&url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, &url).await?;
        Ok(Answer {
            url,
            status,
            headers,
            body,
        })
    }

    /// Refuses a URL whose host is an address the policy does not permit. (A name is checked
    /// by the resolver, when the connection is made.)
    fn check_literal(&self, url: &Url) -> Result<(), FetchError> {
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(FetchError::BadUrl(url.to_string())),
        };
        self.policy.check(ip).map_err(|kind| FetchError::Refused {
            host: ip.to_string(),
            kind,
        })
    }

    /// One exchange for the OIDC library: its request, the answer as it is (no redirect
    /// followed), through the same checks.
    async fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, FetchError> {
        let (parts, body) = request.into_parts();
        let url = http_url(&parts.uri.to_string())?;
        let mut outgoing = reqwest::Request::new(parts.method, url.clone());
        *outgoing.headers_mut() = parts.headers;
        *outgoing.body_mut() = Some(body.into());
        let answer = tokio::time::timeout(TOTAL_TIMEOUT, self.hop(outgoing))
            .await
            .map_err(|_| FetchError::Unreachable(url.to_string()))??;
        let mut response = HttpResponse::new(answer.body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        Ok(response)
    }
}

impl<'c> AsyncHttpClient<'c> for Outbound {
    type Error = FetchError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, FetchError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.exchange(request))
    }
}

fn http_url(raw: &str) -> Result<Url, FetchError> {
    Url::parse(raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| FetchError::BadUrl(raw.trim().to_owned()))
}

/// A failed request: the resolver's refusal when that is what it was, else "could not fetch"
/// (the detail is logged, not returned).
fn failure(url: &Url, e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(Refusal(kind)) = err.downcast_ref::<Refusal>() {
            return FetchError::Refused {
                host: url.host_str().unwrap_or_default().to_owned(),
                kind: *kind,
            };
        }
        source = err.source();
    }
    tracing::warn!(%url, error = ?e, "outbound fetch failed");
    FetchError::Unreachable(url.to_string())
}

/// The body, refused as soon as it is known to be larger than [`MAX_BODY_BYTES`].
async fn read_capped(mut response: reqwest::Response, url: &Url) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failure(url, &e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
