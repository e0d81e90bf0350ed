//! DNS TXT lookups, which prove that an organization owns an email domain: it publishes
//! `iam-gateway-verification=<token>` at `_iam-gateway-challenge.<domain>`.
//!
//! The resolver is the system's (`/etc/resolv.conf`), or the one name server of
//! `IAM_DNS_RESOLVER` (`ip:port`). Answers are not cached here: a verification is rare and
//! must see the record as it is now.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// The label under the domain where the TXT record goes.
pub const CHALLENGE_LABEL: &str = "_iam-gateway-challenge";
/// What the TXT value starts with, before the token.
pub const VALUE_PREFIX: &str = "iam-gateway-verification=";

/// Where the TXT record proving `domain` goes.
pub fn record_name(domain: &str) -> String {
    format!("{CHALLENGE_LABEL}.{domain}")
}

/// The TXT value that proves a domain with `token`.
pub fn record_value(token: &str) -> String {
    format!("{VALUE_PREFIX}{token}")
}

/// Looks up TXT records.
pub struct TxtResolver {
    resolver: TokioResolver,
}

impl TxtResolver {
    /// The system's resolver, or the one name server at `server`.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, String> {
        let mut builder = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("the system's DNS configuration: {e}"))?,
        };
        let opts = builder.options_mut();
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        opts.cache_size = 0;
        let resolver = builder
            .build()
            .map_err(|e| format!("the DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }

    /// The TXT values at `name` (each record's strings joined); empty when there are none.
    /// `Err` only when the resolver could not be asked (the message is safe to show).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        // Fully qualified: no search domain is tried.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => {
                tracing::warn!(%name, error = %e, "TXT lookup failed");
                Err("the DNS lookup failed; try again later".to_owned())
            }
        }
    }
}
