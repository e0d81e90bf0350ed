//! Outgoing email (invitations, password resets) through SMTP with lettre.
//!
//! Without `smtp_url` the gateway sends nothing: callers learn that no mail went out and act
//! on it (an invitation returns its link for the admin to share). Sending never happens inside
//! a database transaction, and a failure to send is reported to the caller, never hidden.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::Email;

/// What went wrong handing a message to the SMTP server.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the SMTP settings are not valid: {0}")]
    Config(String),
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the SMTP server refused or could not be reached: {0}")]
    Send(String),
}

impl MailError {
    /// What a client may be told: the kind of failure, never the SMTP server's own words
    /// (which can name hosts, accounts and internal relays). The detail goes to the log.
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::Config(_) => "the server's email settings are not valid; ask its operator",
            Self::Build(_) => "the message could not be built for this address",
            Self::Send(_) => "the email server refused the message or could not be reached",
        }
    }
}

/// An email to send: plain text.
pub struct Mail<'a> {
    pub to: &'a Email,
    /// The recipient's display name, if known.
    pub to_name: Option<&'a str>,
    pub subject: String,
    pub body: String,
}

pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `smtp_url` (none: sends nothing) with sender `from`.
    pub fn new(smtp_url: Option<&str>, from: &str) -> Result<Self, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Config(format!("`smtp_from` ({from}): {e}")))?;
        let transport = smtp_url
            .map(|url| {
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map(|b| b.build())
                    .map_err(|e| MailError::Config(format!("`smtp_url`: {e}")))
            })
            .transpose()?;
        Ok(Self { transport, from })
    }

    /// Whether an SMTP server is configured.
    pub fn configured(&self) -> bool {
        self.transport.is_some()
    }

    /// Sends `mail`. `Ok(false)` when no SMTP server is configured (nothing was sent).
    pub async fn send(&self, mail: Mail<'_>) -> Result<bool, MailError> {
        let Some(transport) = &self.transport else {
            return Ok(false);
        };
        let to = Mailbox::new(
            mail.to_name.map(str::to_owned),
            mail.to
                .as_str()
                .parse()
                .map_err(|e| MailError::Build(format!("recipient: {e}")))?,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        transport
            .send(message)
            .await
            .map_err(|e| MailError::Send(e.to_string()))?;
        Ok(true)
    }
}
