//! A real SMTP server for the tests: Python's aiosmtpd (`tests/smtp/sink.py`), which saves each
//! message it receives as a file. The package is installed into `tests/smtp/pydeps` the first
//! time a test needs it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn smtp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp")
}

/// A running SMTP sink; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The whole message as received.
    pub raw: String,
    /// The body, decoded from quoted-printable when it was sent so.
    pub body: String,
}

impl ReceivedMail {
    /// The value of header `name` (first occurrence).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next()?;
        let prefix = format!("{}:", name.to_ascii_lowercase());
        head.split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// The first URL in the body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let start = self.body.find(prefix)?;
        let rest = &self.body[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '"')
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

impl SmtpSink {
    pub fn start() -> Self {
        let pythonpath = super::peers::pip_install("tests/smtp", "aiosmtpd==1.4.6", "aiosmtpd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("iam-smtp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("sink directory");
        let mut child = Command::new("python3")
            .arg(smtp_dir().join("sink.py"))
            .arg(port.to_string())
            .arg(&dir)
            .env("PYTHONPATH", pythonpath)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("sink stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the sink's first line");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Self { child, port, dir }
    }

    /// The URL the gateway sends through (`IAM_SMTP_URL`).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| {
                        let path = e.path();
                        let n = path.file_stem()?.to_str()?.parse().ok()?;
                        (path.extension()? == "eml").then_some((n, path))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .map(|raw| {
                let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
                let qp = raw
                    .to_ascii_lowercase()
                    .contains("content-transfer-encoding: quoted-printable");
                let body = if qp { decode_qp(body) } else { body.to_owned() };
                ReceivedMail { raw, body }
            })
            .collect()
    }

    /// Waits (up to 10 s) until at least `n` messages have arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<ReceivedMail> {
        self.wait_for_with(n, "").await
    }

    /// As [`SmtpSink::wait_for`], counting only the messages whose body contains `needle`
    /// (e.g. a reset link, when sign-up's verification mail arrives too).
    pub async fn wait_for_with(&self, n: usize, needle: &str) -> Vec<ReceivedMail> {
        let start = Instant::now();
        loop {
            let mut got = self.messages();
            got.retain(|m| m.body.contains(needle));
            if got.len() >= n || start.elapsed() > Duration::from_secs(10) {
                assert!(got.len() >= n, "expected {n} messages, got {}", got.len());
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Decodes a quoted-printable body (soft line breaks and `=XX` escapes).
fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=' && i + 3 <= bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(v) = escaped {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
