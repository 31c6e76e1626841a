//! The background task: follows the server's event stream, falls back to polling, keeps the
//! last good definitions, writes the backup file.

use std::error::Error as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use liftoff_eval::Snapshot;
use reqwest::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, ETAG, HeaderValue, IF_NONE_MATCH};
use reqwest::{Response, StatusCode, Url};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::client::{Shared, SnapshotSource, State};
use crate::files::{content_hash, parse_definitions, write_atomic};
use crate::sse::SseParser;

/// First reconnection delay after the stream fails (before jitter).
const RECONNECT_BASE: Duration = Duration::from_millis(500);
/// Longest reconnection delay.
const RECONNECT_CAP: Duration = Duration::from_secs(30);
/// A stream session that delivered definitions and lasted this long resets the backoff.
const STABLE_SESSION: Duration = Duration::from_secs(5);
/// The server sends a keep-alive every 15 s; this long without a byte means the connection is
/// dead even if TCP has not noticed.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Refuse stream events (and lines) larger than this.
const MAX_EVENT_BYTES: usize = 64 << 20;

/// The server's two SDK endpoints.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints {
    /// `GET …/api/sdk/flags?environment=…`
    pub flags: Url,
    /// `GET …/api/sdk/stream?environment=…`
    pub stream: Url,
}

/// How the background task talks to the server.
pub(crate) struct SyncConfig {
    pub http: reqwest::Client,
    pub endpoints: Endpoints,
    pub auth: HeaderValue,
    pub stream: bool,
    pub refresh_interval: Duration,
    pub request_timeout: Duration,
    pub backup_file: Option<PathBuf>,
}

/// The connection as last observed, to log changes rather than every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Starting,
    Streaming,
    /// The stream broke; reconnecting (and polling when due).
    Reconnecting,
    /// Polling answers; the stream does not (or is off).
    Polling,
    /// Nothing answers.
    Down,
    /// The server refuses the token.
    Rejected,
}

/// One failed exchange with the server.
struct Failure {
    rejected: bool,
    message: String,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            rejected: false,
            message: message.into(),
        }
    }

    fn from_reqwest(error: &reqwest::Error) -> Failure {
        // reqwest's Display omits the cause ("connection refused" and the like).
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Failure::new(message)
    }

    fn from_status(status: StatusCode) -> Failure {
        let rejected = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        Failure {
            rejected,
            message: if rejected {
                format!("the server refused the SDK token ({status})")
            } else {
                format!("unexpected status {status}")
            },
        }
    }
}

pub(crate) struct Syncer {
    shared: Arc<Shared>,
    config: SyncConfig,
    last_poll: Option<Instant>,
    link: Link,
}

impl Syncer {
    pub fn new(shared: Arc<Shared>, config: SyncConfig) -> Syncer {
        Syncer {
            shared,
            config,
            last_poll: None,
            link: Link::Starting,
        }
    }

    /// Runs until aborted.
    pub async fn run(mut self) {
        if !self.config.stream {
            loop {
                self.poll().await;
                sleep_until(Instant::now() + self.config.refresh_interval).await;
            }
        }
        let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_CAP);
        loop {
            let started = Instant::now();
            // Back to quick reconnection only after a session that worked for a while: a
            // server or proxy that cuts every stream right away is not hammered.
            if self.stream_session().await && started.elapsed() >= STABLE_SESSION {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            debug!(
                ?delay,
                "reconnecting to the liftoff flag stream after a pause"
            );
            self.poll_until(Instant::now() + delay).await;
        }
    }

    fn set_link(&mut self, link: Link, failure: Option<&Failure>) {
        let detail = failure.map_or("", |f| f.message.as_str());
        if link == self.link {
            if !detail.is_empty() {
                debug!(error = detail, "liftoff server still unavailable");
            }
            return;
        }
        match link {
            Link::Starting => {}
            Link::Streaming => info!("connected to the liftoff flag stream"),
            Link::Reconnecting => warn!(
                error = detail,
                "liftoff flag stream lost; reconnecting, keeping the current flag definitions"
            ),
            Link::Polling if self.config.stream => info!(
                error = detail,
                "liftoff flag stream unavailable; polling for flag definitions"
            ),
            Link::Polling => info!("polling liftoff for flag definitions"),
            Link::Down => warn!(
                error = detail,
                "liftoff server unreachable; keeping the current flag definitions"
            ),
            Link::Rejected => error!(
                error = detail,
                "liftoff refused the SDK token; keeping the current flag definitions"
            ),
        }
        self.link = link;
    }

    fn failed(&mut self, failure: &Failure) {
        let link = if failure.rejected {
            Link::Rejected
        } else {
            Link::Down
        };
        self.set_link(link, Some(failure));
    }

    /// When the stream failed: note it, without claiming the server is down (polling decides).
    fn stream_failed(&mut self, failure: &Failure) {
        if failure.rejected {
            self.set_link(Link::Rejected, Some(failure));
        } else if self.link == Link::Streaming || self.link == Link::Starting {
            self.set_link(Link::Reconnecting, Some(failure));
        } else {
            debug!(error = %failure.message, "liftoff flag stream unavailable");
        }
    }

    /// Polls whenever due until `deadline`.
    async fn poll_until(&mut self, deadline: Instant) {
        loop {
            let due = self
                .last_poll
                .is_none_or(|at| at.elapsed() >= self.config.refresh_interval);
            if due {
                self.poll().await;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let next_poll = self
                .last_poll
                .map_or(now, |at| at + self.config.refresh_interval);
            sleep_until(next_poll.min(deadline)).await;
        }
    }

    /// One `GET /api/sdk/flags`, conditional on the current ETag.
    async fn poll(&mut self) {
        self.last_poll = Some(Instant::now());
        let current = self.shared.current();
        let mut request = self
            .config
            .http
            .get(self.config.endpoints.flags.clone())
            .header(AUTHORIZATION, self.config.auth.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.config.request_timeout);
        if let Some(etag) = current
            .etag
            .as_deref()
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return self.failed(&Failure::from_reqwest(&e)),
        };
        match response.status() {
            StatusCode::NOT_MODIFIED => {
                debug!("liftoff flag definitions not modified");
                self.set_link(Link::Polling, None);
            }
            StatusCode::OK => {
                let etag = response
                    .headers()
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = match response.bytes().await {
                    Ok(body) => body,
                    Err(e) => return self.failed(&Failure::from_reqwest(&e)),
                };
                self.set_link(Link::Polling, None);
                match std::str::from_utf8(&body) {
                    Ok(text) => {
                        self.apply(text, etag.as_deref()).await;
                    }
                    Err(_) => warn!(
                        "ignoring liftoff flag definitions that are not UTF-8; keeping the current ones"
                    ),
                }
            }
            status => self.failed(&Failure::from_status(status)),
        }
    }

    /// Connects to the event stream and applies its events until it ends. True when at least
    /// one event carried usable definitions.
    async fn stream_session(&mut self) -> bool {
        let mut request = self
            .config
            .http
            .get(self.config.endpoints.stream.clone())
            .header(AUTHORIZATION, self.config.auth.clone())
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        if let Some(etag) = self
            .shared
            .current()
            .etag
            .as_deref()
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            request = request.header("last-event-id", etag);
        }
        let mut response = match timeout(self.config.request_timeout, request.send()).await {
            Err(_) => {
                self.stream_failed(&Failure::new("timed out waiting for the stream to answer"));
                return false;
            }
            Ok(Err(e)) => {
                self.stream_failed(&Failure::from_reqwest(&e));
                return false;
            }
            Ok(Ok(response)) => response,
        };
        if let Err(failure) = check_event_stream(&response) {
            self.stream_failed(&failure);
            return false;
        }
        debug!("liftoff flag stream opened");
        let mut parser = SseParser::new(MAX_EVENT_BYTES);
        let mut worked = false;
        let end = loop {
            let chunk = match timeout(STREAM_IDLE_TIMEOUT, response.chunk()).await {
                Err(_) => {
                    break Failure::new(format!(
                        "nothing received for {}s",
                        STREAM_IDLE_TIMEOUT.as_secs()
                    ));
                }
                Ok(Err(e)) => break Failure::from_reqwest(&e),
                Ok(Ok(None)) => break Failure::new("closed by the server"),
                Ok(Ok(Some(chunk))) => chunk,
            };
            let events = match parser.feed(&chunk) {
                Ok(events) => events,
                Err(e) => break Failure::new(e.to_string()),
            };
            for event in events {
                if event.event != "flags" {
                    debug!(event = %event.event, "ignoring liftoff stream event");
                    continue;
                }
                if self.apply(&event.data, event.id.as_deref()).await {
                    worked = true;
                    self.set_link(Link::Streaming, None);
                }
            }
        };
        self.stream_failed(&end);
        worked
    }

    /// Adopts a definitions document from the server, unless it does not parse: then the
    /// current definitions stay. True when the document is usable (new or unchanged).
    async fn apply(&mut self, body: &str, etag: Option<&str>) -> bool {
        let etag = etag.and_then(normalize_etag);
        let hash = content_hash(body);
        let current = self.shared.current();
        let same_content = current.hash == Some(hash);
        if same_content && current.etag == etag && current.source == SnapshotSource::Server {
            return true;
        }
        let snapshot = if same_content {
            current.snapshot.clone()
        } else {
            match parse_definitions(body) {
                Ok(defs) => Arc::new(Snapshot::compile(&defs)),
                Err(reason) => {
                    warn!(
                        %reason,
                        etag = etag.as_deref().unwrap_or(""),
                        "ignoring liftoff flag definitions that do not parse; keeping the current ones"
                    );
                    return false;
                }
            }
        };
        if same_content {
            debug!(
                etag = etag.as_deref().unwrap_or(""),
                "liftoff flag definitions unchanged"
            );
        } else {
            info!(
                flags = snapshot.len(),
                etag = etag.as_deref().unwrap_or(""),
                "liftoff flag definitions updated"
            );
        }
        let write_backup = !same_content || current.source != SnapshotSource::Server;
        self.shared.publish(State {
            snapshot,
            etag,
            source: SnapshotSource::Server,
            hash: Some(hash),
        });
        if write_backup {
            self.write_backup(body).await;
        }
        true
    }

    async fn write_backup(&self, body: &str) {
        let Some(path) = self.config.backup_file.clone() else {
            return;
        };
        let contents = body.as_bytes().to_vec();
        let written = tokio::task::spawn_blocking(move || {
            let result = write_atomic(&path, &contents);
            (path, result)
        })
        .await;
        match written {
            Ok((path, Ok(()))) => debug!(path = %path.display(), "liftoff backup file written"),
            Ok((path, Err(e))) => {
                warn!(path = %path.display(), error = %e, "cannot write the liftoff backup file");
            }
            Err(e) => warn!(error = %e, "cannot write the liftoff backup file"),
        }
    }
}

/// A 200 with an event stream, or why not.
fn check_event_stream(response: &Response) -> Result<(), Failure> {
    let status = response.status();
    if status != StatusCode::OK {
        return Err(Failure::from_status(status));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        return Err(Failure::new(format!(
            "the stream answered {content_type:?}, not text/event-stream"
        )));
    }
    Ok(())
}

/// ETags as sent in `If-None-Match`: quoted. The SSE `id` may come without quotes.
fn normalize_etag(raw: &str) -> Option<String> {
    let etag = raw.trim();
    if etag.is_empty() {
        None
    } else if etag.starts_with('"') || etag.starts_with("W/\"") {
        Some(etag.to_owned())
    } else {
        Some(format!("\"{etag}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted() {
        assert_eq!(normalize_etag("abc").as_deref(), Some("\"abc\""));
        assert_eq!(normalize_etag(" \"abc\" ").as_deref(), Some("\"abc\""));
        assert_eq!(normalize_etag("W/\"abc\"").as_deref(), Some("W/\"abc\""));
        assert_eq!(normalize_etag(""), None);
    }
}
