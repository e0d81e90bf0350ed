//! A real DNS server for the tests: Debian's dnsmasq (`dnsmasq-base`, installed by
//! `.ci/setup`), answering the TXT records a test gives it on a port of its own.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{TestApp, data_str};

/// A port for a DNS server: free for TCP and UDP alike when asked (dnsmasq binds both).
pub fn free_port() -> SocketAddr {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let addr = tcp.local_addr().expect("local addr");
        if UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// A running dnsmasq with some TXT records; stopped when dropped.
pub struct Dns {
    child: Child,
}

impl Dns {
    /// Serves `records` (name, value) at `addr` until dropped.
    pub async fn serve(addr: SocketAddr, records: &[(&str, &str)]) -> Self {
        let mut command = Command::new("dnsmasq");
        command
            .args([
                "--no-daemon",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .arg(format!("--port={}", addr.port()))
            .arg(format!("--listen-address={}", addr.ip()))
            .arg("--conf-file=/dev/null")
            .arg("--user=root")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in records {
            // Passed straight to dnsmasq (no shell): quotes would be part of the value.
            command.arg(format!("--txt-record={name},{value}"));
        }
        // The port was free when chosen; a connection of another test may take it meanwhile,
        // and dnsmasq then exits at once: start it again.
        for _ in 0..20 {
            let child = command
                .spawn()
                .expect("start dnsmasq (Debian's dnsmasq-base; .ci/setup installs it)");
            let mut dns = Self { child };
            // Ready once it answers on the port.
            for _ in 0..100 {
                if query_answers(addr) {
                    return dns;
                }
                if dns.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("dnsmasq did not come up on {addr}");
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a DNS server answers a query (any answer) at `addr`.
fn query_answers(addr: SocketAddr) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
    // A query for `ready.test.` TXT: id 1, recursion desired, one question.
    let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["ready", "test"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 16, 0, 1]);
    if socket.send_to(&q, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    socket.recv_from(&mut buf).is_ok()
}

pub const ADD_DOMAIN: &str = "mutation($o: ID!, $d: String!) { addOrganizationDomain(input: {organizationId: $o, domain: $d}) { id domain verified txtRecordName txtRecordValue } }";
pub const VERIFY_DOMAIN: &str =
    "mutation($i: ID!) { verifyOrganizationDomain(input: {id: $i}) { id verified verifiedAt } }";
pub const REMOVE_DOMAIN: &str =
    "mutation($i: ID!) { removeOrganizationDomain(input: {id: $i}) { removedId } }";

/// Adds `domain` to `org` as `token`, publishes its TXT record at `dns` and verifies it: the
/// domain's id and the DNS server (which must stay up while the record is needed).
pub async fn verified_domain(
    app: &TestApp,
    token: &str,
    org: &str,
    domain: &str,
    dns: SocketAddr,
) -> (String, Dns) {
    let added = app
        .gql(Some(token), ADD_DOMAIN, json!({ "o": org, "d": domain }))
        .await;
    let id = data_str(&added, &["addOrganizationDomain", "id"]);
    assert_eq!(added["data"]["addOrganizationDomain"]["verified"], false);
    let name = data_str(&added, &["addOrganizationDomain", "txtRecordName"]);
    let value = data_str(&added, &["addOrganizationDomain", "txtRecordValue"]);
    let server = Dns::serve(dns, &[(&name, &value)]).await;
    let verified = app
        .gql(Some(token), VERIFY_DOMAIN, json!({ "i": id }))
        .await;
    assert_eq!(
        verified["data"]["verifyOrganizationDomain"]["verified"], true,
        "{verified}"
    );
    (id, server)
}
