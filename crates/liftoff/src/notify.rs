//! Sends notifications: Slack-compatible and generic webhooks over HTTP(S), email over SMTP
//! (lettre; plain, STARTTLS or TLS with rustls). Every connection obeys `--outbound-deny`
//! (see [`crate::outbound`]): webhook hosts are resolved through the policy's resolver, and
//! SMTP connects only to an address the policy allows. A failure is described in Liftoff's
//! words; what the receiver answered is kept apart (100 bytes at most) for admins.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use liftoff_core::alerts::model::ChannelConfig;
use liftoff_core::alerts::notify::{
    EXCERPT_BYTES, Notifier, SendFailure, email_text, response_excerpt, slack_body,
};
use liftoff_core::outbound::OutboundPolicy;
use liftoff_core::reports::{Format, ReportStore};
use serde_json::Value;

use crate::outbound::{client_builder, describe, resolve_allowed};

const TIMEOUT: Duration = Duration::from_secs(10);

/// An email's body: a notice is plain text; a report notice carries the report.
enum Body {
    Plain(SinglePart),
    Report(MultiPart),
}

pub struct HttpSmtpNotifier {
    http: reqwest::Client,
    policy: Arc<OutboundPolicy>,
    /// Where a report notice's HTML body and attachment are read (the archive).
    reports: Option<Arc<dyn ReportStore>>,
}

impl HttpSmtpNotifier {
    pub fn new(policy: Arc<OutboundPolicy>) -> anyhow::Result<Self> {
        Ok(Self {
            http: client_builder(&policy)
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                // A webhook answers; it does not send Liftoff elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("liftoff/", env!("CARGO_PKG_VERSION")))
                .build()?,
            policy,
            reports: None,
        })
    }

    /// Email for a report notice carries the archived report: its HTML as the body and the
    /// schedule's format attached.
    pub fn with_reports(mut self, reports: Arc<dyn ReportStore>) -> Self {
        self.reports = Some(reports);
        self
    }

    /// The message body: plain text, or for a report notice the report's HTML beside the
    /// text and the report attached.
    async fn email_body(&self, payload: &Value, text: String) -> Result<Body, SendFailure> {
        let (Some(id), Some(store)) = (payload["report"]["archive_id"].as_i64(), &self.reports)
        else {
            return Ok(Body::Plain(SinglePart::plain(text)));
        };
        let read = |format: Format| async move {
            store
                .archived_body(id, format)
                .await
                .map_err(|e| SendFailure::new(format!("cannot read archived report {id}: {e}")))?
                .ok_or_else(|| SendFailure::new(format!("archived report {id} no longer exists")))
        };
        let html = String::from_utf8_lossy(&read(Format::Html).await?).into_owned();
        let attach = payload["report"]["attach"]
            .as_str()
            .and_then(Format::parse)
            .unwrap_or(Format::Pdf);
        let bytes = read(attach).await?;
        let kind = payload["report"]["kind"].as_str().unwrap_or("report");
        let name = format!("{kind}-report-{id}.{}", attach.as_str());
        let content_type = ContentType::parse(attach.content_type())
            .map_err(|e| SendFailure::new(format!("attachment type: {e}")))?;
        Ok(Body::Report(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(text, html))
                .singlepart(Attachment::new(name).body(bytes, content_type)),
        ))
    }

    async fn post(&self, url: &str, body: &Value) -> Result<(), SendFailure> {
        let host = host_of(url);
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| SendFailure::new("the channel's URL is not a valid URL"))?;
        // An address literal never reaches the resolver: check it here.
        self.policy
            .check_parsed_url(&parsed)
            .map_err(|d| SendFailure::new(d.to_string()))?;
        let res = self
            .http
            .post(parsed)
            .json(body)
            .send()
            .await
            .map_err(|e| match crate::outbound::denied_in(&e) {
                Some(d) => SendFailure::new(d.to_string()),
                None => SendFailure::new(format!("cannot reach {host}: {}", describe(&e))),
            })?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        Err(SendFailure {
            reason: format!("HTTP {} from the receiver at {host}", status_text(status)),
            response_excerpt: read_excerpt(res).await,
        })
    }

    async fn email(&self, config: &ChannelConfig, payload: &Value) -> Result<(), SendFailure> {
        let ChannelConfig::Email {
            host,
            port,
            tls,
            username,
            password,
            from,
            to,
        } = config
        else {
            return Err(SendFailure::new("not an email channel"));
        };
        let (subject, body) = email_text(payload);
        let from: Mailbox = from
            .parse()
            .map_err(|e| SendFailure::new(format!("invalid from address: {e}")))?;
        let body = self.email_body(payload, body).await?;
        let mut message = Message::builder().from(from).subject(subject);
        for addr in to {
            message = message.to(addr
                .parse()
                .map_err(|e| SendFailure::new(format!("invalid address `{addr}`: {e}")))?);
        }
        let message = match body {
            Body::Plain(part) => message.singlepart(part),
            Body::Report(parts) => message.multipart(parts),
        }
        .map_err(|e| SendFailure::new(format!("cannot build the message: {e}")))?;
        // Resolve here, through the policy, and connect to an allowed address only (the first
        // that accepts a connection, like a client trying each address); TLS still checks the
        // certificate against the host name.
        let allowed = resolve_allowed(&self.policy, host, *port)
            .await
            .map_err(|e| SendFailure::new(format!("SMTP {host}:{port}: {e}")))?;
        let addr = match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(allowed.as_slice()),
        )
        .await
        {
            Ok(Ok(stream)) => stream
                .peer_addr()
                .map_err(|e| SendFailure::new(format!("SMTP {host}:{port} failed: {e}")))?,
            Ok(Err(e)) => {
                return Err(SendFailure::new(format!(
                    "SMTP {host}:{port} failed: cannot connect: {e}"
                )));
            }
            Err(_) => {
                return Err(SendFailure::new(format!(
                    "SMTP {host}:{port} timed out connecting"
                )));
            }
        };
        let tls_for = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|e| SendFailure::new(format!("SMTP TLS setup failed: {e}")))
        };
        let tls = match tls.as_str() {
            "tls" => Tls::Wrapper(tls_for(host)?),
            "starttls" => Tls::Required(tls_for(host)?),
            _ => Tls::None,
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
                .port(addr.port())
                .tls(tls)
                .timeout(Some(TIMEOUT));
        if let (Some(u), Some(p)) = (username, password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        builder
            .build()
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| smtp_failure(host, *port, &e))
    }
}

/// A status as `500 Internal Server Error` (the reason phrase from Liftoff's table, not the
/// receiver's).
fn status_text(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {r}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Reads at most the first [`EXCERPT_BYTES`] of an answer's body, and no more of it.
async fn read_excerpt(mut res: reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    while body.len() < EXCERPT_BYTES {
        match tokio::time::timeout(Duration::from_secs(2), res.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    response_excerpt(&body)
}

/// An SMTP error in Liftoff's words; what the server said goes to the excerpt.
fn smtp_failure(host: &str, port: u16, e: &lettre::transport::smtp::Error) -> SendFailure {
    let code = e.status().map(|c| c.to_string());
    let said = std::error::Error::source(e).map(|s| s.to_string());
    if e.is_permanent() || e.is_transient() || e.is_response() {
        let how = if e.is_permanent() {
            "refused the message"
        } else if e.is_transient() {
            "refused the message for now"
        } else {
            "answered something unexpected"
        };
        return SendFailure {
            reason: match code {
                Some(c) => format!("SMTP {host}:{port} {how} (code {c})"),
                None => format!("SMTP {host}:{port} {how}"),
            },
            response_excerpt: said.and_then(|s| response_excerpt(s.as_bytes())),
        };
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_tls() {
        "TLS failed"
    } else {
        "failed"
    };
    let mut reason = format!("SMTP {host}:{port} {what}");
    // Connection, network and TLS causes are local errors (I/O, certificate checks).
    if let Some(s) = said {
        reason.push_str(": ");
        reason.push_str(&s);
    }
    SendFailure::new(reason.chars().take(300).collect::<String>())
}

/// The host of a URL, to name a receiver without repeating its secret path.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_else(|| "the receiver".to_owned())
}

#[async_trait]
impl Notifier for HttpSmtpNotifier {
    async fn send(&self, channel: &ChannelConfig, payload: &Value) -> Result<(), SendFailure> {
        match channel {
            ChannelConfig::Webhook { url } => self.post(url, payload).await,
            ChannelConfig::Slack { url } => self.post(url, &slack_body(payload)).await,
            ChannelConfig::Email { .. } => self.email(channel, payload).await,
        }
    }
}
