//! A TCP proxy in front of PostgreSQL that can hold back the answer to one statement: a "slow
//! load" that PostgreSQL runs (and takes its snapshot for) at once, but whose rows reach the
//! instance only when the test says so.
//!
//! It reads the client side of the wire protocol just enough for that: each Parse message's
//! statement name and text, so that a Bind of a statement whose text contains the marker the
//! test armed with (prepared on that connection earlier or just now) holds the answers after
//! it on that connection.
//! Connections must be plain (`sslmode=disable`): a TLS stream cannot be read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Everything flows.
    Open,
    /// The next Bind of a statement containing this text holds its connection's answers.
    Armed(String),
    /// A connection's answers are held; `true` once the first of them has arrived.
    Holding { answer_waiting: bool },
    /// Released: everything flows again.
    Released,
}

pub struct PgProxy {
    pub addr: SocketAddr,
    phase: watch::Sender<Phase>,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl PgProxy {
    /// A proxy to the server `database_url` names.
    pub async fn start(database_url: &str) -> Self {
        let upstream = authority(database_url).to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (phase, _) = watch::channel(Phase::Open);
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (p, k) = (phase.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let phase = p.clone();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(&upstream).await {
                        relay(inbound, outbound, phase).await;
                    }
                });
                k.lock().expect("conns").push(task);
            }
        });
        Self {
            addr,
            phase,
            accept,
            conns,
        }
    }

    /// `database_url` with its server replaced by this proxy, and TLS off.
    pub fn url_for(&self, database_url: &str) -> String {
        let url = database_url.replacen(authority(database_url), &self.addr.to_string(), 1);
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode=disable")
    }

    /// Holds the answers to the next statement whose text contains `marker`.
    pub fn arm(&self, marker: &str) {
        self.phase.send_replace(Phase::Armed(marker.to_owned()));
    }

    /// Waits (at most 10 s) until PostgreSQL has answered the held statement: it ran, and its
    /// snapshot is taken.
    pub async fn answer_held(&self) {
        let mut rx = self.phase.subscribe();
        tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|p| {
                *p == Phase::Holding {
                    answer_waiting: true,
                }
            }),
        )
        .await
        .expect("no statement with the marker was answered within 10 s")
        .expect("proxy gone");
    }

    /// Lets the held answers through.
    pub fn release(&self) {
        self.phase.send_replace(Phase::Released);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self
            .conns
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
        {
            t.abort();
        }
    }
}

/// `host:port` of a `postgres://user@host:port/db?…` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

async fn relay(inbound: TcpStream, outbound: TcpStream, phase: watch::Sender<Phase>) {
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_server, mut to_server) = outbound.into_split();
    // Whether this connection's answers are the held ones.
    let held = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = {
        let (phase, held) = (phase.clone(), held.clone());
        async move {
            let mut frames = Frames::default();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let bound = frames.feed(&buf[..n]);
                if let Phase::Armed(marker) = &*phase.borrow()
                    && bound.iter().any(|text| text.contains(marker.as_str()))
                {
                    held.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if held.load(std::sync::atomic::Ordering::SeqCst) {
                    phase.send_if_modified(|p| {
                        let armed = matches!(p, Phase::Armed(_));
                        if armed {
                            *p = Phase::Holding {
                                answer_waiting: false,
                            };
                        }
                        armed
                    });
                }
                if to_server.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if held.load(std::sync::atomic::Ordering::SeqCst) {
                phase.send_if_modified(|p| {
                    let first = matches!(
                        p,
                        Phase::Holding {
                            answer_waiting: false
                        }
                    );
                    if first {
                        *p = Phase::Holding {
                            answer_waiting: true,
                        };
                    }
                    first
                });
                let mut rx = phase.subscribe();
                if rx.wait_for(|p| *p == Phase::Released).await.is_err() {
                    break;
                }
                held.store(false, std::sync::atomic::Ordering::SeqCst);
            }
            if to_client.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(up, down);
}

/// The client side of the PostgreSQL wire protocol, message by message.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
    /// Past the start-up message (which has no type byte).
    started: bool,
    /// Per prepared statement name, its text.
    statements: HashMap<Vec<u8>, String>,
}

impl Frames {
    /// Reads `data`; the texts of the statements it binds.
    fn feed(&mut self, data: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(data);
        let mut bound = Vec::new();
        loop {
            if !self.started {
                let Some(len) = be_u32(&self.buf, 0) else {
                    break;
                };
                if self.buf.len() < len {
                    break;
                }
                // An SSLRequest or GSSENCRequest is followed by the real start-up message.
                let code = be_u32(&self.buf, 4).unwrap_or(0);
                self.started = !matches!(code, 80_877_103 | 80_877_104);
                self.buf.drain(..len);
                continue;
            }
            let Some(len) = be_u32(&self.buf, 1) else {
                break;
            };
            if self.buf.len() < 1 + len {
                break;
            }
            let body = &self.buf[5..1 + len];
            match self.buf[0] {
                b'P' => {
                    let mut parts = body.splitn(3, |b| *b == 0);
                    let name = parts.next().unwrap_or_default().to_vec();
                    let text = parts.next().unwrap_or_default();
                    self.statements
                        .insert(name, String::from_utf8_lossy(text).into_owned());
                }
                b'B' => {
                    let mut parts = body.splitn(3, |b| *b == 0);
                    let _portal = parts.next();
                    let statement = parts.next().unwrap_or_default();
                    if let Some(text) = self.statements.get(statement) {
                        bound.push(text.clone());
                    }
                }
                _ => {}
            }
            self.buf.drain(..1 + len);
        }
        bound
    }
}

fn be_u32(buf: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(bytes)).ok()
}
