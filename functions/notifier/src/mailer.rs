//! Sending one mail: through SES v2 in AWS, over SMTP locally.

use shared::notify::message::Message;
use std::{future::Future, time::Duration};

/// Why a send failed: a short summary for the delivery's `last_error` and the logs,
/// never the message or a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SendError(String);

impl SendError {
    pub fn new(summary: impl Into<String>) -> Self {
        let mut summary: String = summary.into();
        summary.truncate(300);
        Self(summary)
    }

    pub fn summary(&self) -> &str {
        &self.0
    }
}

/// Sends one message to one address.
pub trait Mailer: Send + Sync {
    fn send(&self, to: &str, message: &Message) -> impl Future<Output = Result<(), SendError>> + Send;
}

/// SMTP without TLS, for the local mail sink on loopback (`make run`, the tests).
pub struct Smtp {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Smtp {
    pub fn new(host: &str, port: u16, from: &str, timeout: Duration) -> Result<Self, SendError> {
        let from = from
            .parse()
            .map_err(|_| SendError::new("the sender is not an email address"))?;
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport, from })
    }
}

impl Mailer for Smtp {
    async fn send(&self, to: &str, message: &Message) -> Result<(), SendError> {
        use lettre::AsyncTransport;
        let to = to
            .parse()
            .map_err(|_| SendError::new("the recipient is not an email address"))?;
        let mail = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .multipart(lettre::message::MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|_| SendError::new("the message could not be built"))?;
        self.transport.send(mail).await.map(|_| ()).map_err(|e| {
            let what = if e.is_permanent() {
                "the SMTP server refused the message"
            } else if e.is_transient() {
                "the SMTP server deferred the message"
            } else {
                "could not reach the SMTP server"
            };
            SendError::new(what)
        })
    }
}

/// Amazon SES v2 (`SendEmail`) from a verified sender identity.
pub struct Ses {
    pub client: aws_sdk_sesv2::Client,
    /// The sender address (the template's `NotificationSender`).
    pub from: String,
}

impl Mailer for Ses {
    async fn send(&self, to: &str, message: &Message) -> Result<(), SendError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|_| SendError::new("the message could not be built"))
        };
        let body = Body::builder()
            .text(content(&message.text)?)
            .html(content(&message.html)?)
            .build();
        let mail = SesMessage::builder()
            .subject(content(&message.subject)?)
            .body(body)
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(mail).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                use aws_sdk_sesv2::error::ProvideErrorMetadata;
                SendError::new(format!("SES SendEmail failed ({})", e.code().unwrap_or("no answer")))
            })
    }
}
