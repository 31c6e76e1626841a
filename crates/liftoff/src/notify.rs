//! Sends notifications: Slack-compatible and generic webhooks over HTTP(S), email over SMTP
//! (lettre; plain, STARTTLS or TLS with rustls).

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use liftoff_core::alerts::model::ChannelConfig;
use liftoff_core::alerts::notify::{Notifier, email_text, slack_body};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpSmtpNotifier {
    http: reqwest::Client,
}

impl HttpSmtpNotifier {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("liftoff/", env!("CARGO_PKG_VERSION")))
                .build()?,
        })
    }

    async fn post(&self, url: &str, body: &Value) -> Result<(), String> {
        let res = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", host_of(url), error_chain(&e)))?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let text = res.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        Err(format!("{} answered {status}: {text}", host_of(url)))
    }

    async fn email(&self, config: &ChannelConfig, payload: &Value) -> Result<(), String> {
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
            return Err("not an email channel".into());
        };
        let (subject, body) = email_text(payload);
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("invalid from address: {e}"))?;
        let mut message = Message::builder()
            .from(from)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for addr in to {
            message = message.to(addr
                .parse()
                .map_err(|e| format!("invalid address `{addr}`: {e}"))?);
        }
        let message = message
            .body(body)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        let mut builder = match tls.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            _ => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| format!("SMTP setup failed: {e}"))?
        .port(*port)
        .timeout(Some(TIMEOUT));
        if let (Some(u), Some(p)) = (username, password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        builder
            .build()
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP {host}:{port} failed: {}", error_chain(&e)))
    }
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[async_trait]
impl Notifier for HttpSmtpNotifier {
    async fn send(&self, channel: &ChannelConfig, payload: &Value) -> Result<(), String> {
        match channel {
            ChannelConfig::Webhook { url } => self.post(url, payload).await,
            ChannelConfig::Slack { url } => self.post(url, &slack_body(payload)).await,
            ChannelConfig::Email { .. } => self.email(channel, payload).await,
        }
    }
}
