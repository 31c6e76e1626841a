//! [`LaunchGate`]: a tower layer that makes an application obey its launch controls.
//!
//! - **Maintenance mode**: while it is on, requests get `503 Service Unavailable` with
//!   `Retry-After` and the operator's message, as JSON or as a small HTML page (by `Accept`).
//!   Users on the allow-list (testers, support) pass: the gate asks Liftoff through the
//!   reserved OFREP flag `liftoff.maintenance` with the user as `targetingKey`.
//! - **The soft-launch cap**: a request for a user without a seat gets `403 Forbidden` with the
//!   user's waitlist position (or a redirect to a waitlist page). Asking takes a seat when one
//!   is free, exactly like `GET /api/launch/user-limit`.
//!
//! The gate follows `GET /api/launch/status` in the background with `If-None-Match` (one
//! small request per poll interval, `304` while nothing changed), so a maintenance switch
//! reaches every instance within the interval. Seats are stable, so an admitted user's answer
//! is cached; a waiting user's briefly. Requests without a user (see
//! [`LaunchGateBuilder::user`]) only obey maintenance mode.
//!
//! When Liftoff cannot be reached the gate keeps its last known state and, by default, lets
//! users through whose seat it could not check (fail open: an outage of the control plane
//! must not take the application down). [`LaunchGateBuilder::fail_closed`] answers 503
//! instead.
//!
//! ```no_run
//! # async fn demo() -> Result<(), liftoff_sdk::SdkError> {
//! use liftoff_sdk::launch::LaunchGate;
//!
//! let gate = LaunchGate::builder("https://liftoff.example.com", "ingest-token")
//!     .user(|req| {
//!         req.headers
//!             .get("x-user-id")
//!             .and_then(|v| v.to_str().ok())
//!             .map(str::to_owned)
//!     })
//!     .build()
//!     .await?;
//! // axum: Router::new().route(…).layer(gate)
//! # let _ = gate;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode, header};
use serde::Deserialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::SdkError;
use crate::layer::ReportedUser;

/// Reads the user a request is made for.
pub type UserFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// The most users whose answers are cached at once (beyond it the cache starts over).
const CACHE_USERS: usize = 100_000;

/// What a user without a seat gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotAdmitted {
    /// `403 Forbidden` with the waitlist position.
    Refuse,
    /// `303 See Other` to this URL (a waitlist page).
    Redirect(String),
}

/// Configures a [`LaunchGate`]; made by [`LaunchGate::builder`].
pub struct LaunchGateBuilder {
    base: String,
    token: String,
    poll_interval: Duration,
    request_timeout: Duration,
    admitted_ttl: Duration,
    waiting_ttl: Duration,
    user: Box<UserFn>,
    not_admitted: NotAdmitted,
    gate_admission: bool,
    fail_open: bool,
}

impl fmt::Debug for LaunchGateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchGateBuilder")
            .field("base", &self.base)
            .field("poll_interval", &self.poll_interval)
            .field("not_admitted", &self.not_admitted)
            .field("gate_admission", &self.gate_admission)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

impl LaunchGateBuilder {
    /// How often the launch status is polled [1 s].
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(100));
        self
    }

    /// Timeout of each call to Liftoff [2 s].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long an admitted user's answer is reused [5 min] (a revoked seat is noticed after
    /// it); a waiting user's is reused [`poll_interval`](Self::poll_interval) long.
    pub fn admitted_ttl(mut self, ttl: Duration) -> Self {
        self.admitted_ttl = ttl;
        self
    }

    /// Reads the user of a request. The default reads a [`ReportedUser`] extension, then the
    /// `X-User-Id` header.
    pub fn user(
        mut self,
        user: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.user = Box::new(user);
        self
    }

    /// Sends users without a seat to `url` (`303`) instead of answering `403`.
    pub fn redirect_not_admitted(mut self, url: impl Into<String>) -> Self {
        self.not_admitted = NotAdmitted::Redirect(url.into());
        self
    }

    /// Only maintenance mode; every user passes the cap.
    pub fn maintenance_only(mut self) -> Self {
        self.gate_admission = false;
        self
    }

    /// Answers 503 when a seat cannot be checked because Liftoff is unreachable.
    pub fn fail_closed(mut self) -> Self {
        self.fail_open = false;
        self
    }

    /// Reads the launch status once (so the first requests are already gated) and starts
    /// following it. Needs a running Tokio runtime. Fails when the first read fails: a wrong
    /// URL or key is better found at start than at the first maintenance.
    pub async fn build(self) -> Result<LaunchGate, SdkError> {
        let http = reqwest::Client::builder()
            .user_agent(crate::builder::USER_AGENT)
            .timeout(self.request_timeout)
            .build()
            .map_err(|e| SdkError::HttpClient(Box::new(e)))?;
        let shared = Arc::new(Shared {
            http,
            base: self.base.trim_end_matches('/').to_owned(),
            token: self.token,
            poll_interval: self.poll_interval,
            admitted_ttl: self.admitted_ttl,
            waiting_ttl: self.waiting_ttl.min(self.poll_interval),
            user: self.user,
            not_admitted: self.not_admitted,
            gate_admission: self.gate_admission,
            fail_open: self.fail_open,
            status: RwLock::new(Status::default()),
            seats: Mutex::new(HashMap::new()),
            passes: Mutex::new(HashMap::new()),
        });
        shared.refresh().await?;
        tokio::spawn(follow(Arc::downgrade(&shared)));
        Ok(LaunchGate { shared })
    }
}

/// Polls the status until every gate is dropped.
async fn follow(shared: Weak<Shared>) {
    loop {
        let Some(every) = shared.upgrade().map(|s| s.poll_interval) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(s) = shared.upgrade() else { return };
        if let Err(e) = s.refresh().await {
            tracing::warn!(error = %e, "Launch status not refreshed; keeping the last one.");
        }
    }
}

/// The layer: wrap a service with it (axum's `Router::layer`, tower's `ServiceBuilder`).
#[derive(Clone)]
pub struct LaunchGate {
    shared: Arc<Shared>,
}

impl fmt::Debug for LaunchGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchGate")
            .field("base", &self.shared.base)
            .field("maintenance", &self.maintenance())
            .finish()
    }
}

impl LaunchGate {
    /// A gate for the Liftoff at `base_url`, with an ingest key.
    pub fn builder(base_url: impl Into<String>, token: impl Into<String>) -> LaunchGateBuilder {
        LaunchGateBuilder {
            base: base_url.into(),
            token: token.into(),
            poll_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            admitted_ttl: Duration::from_secs(300),
            waiting_ttl: Duration::from_secs(1),
            user: Box::new(default_user),
            not_admitted: NotAdmitted::Refuse,
            gate_admission: true,
            fail_open: true,
        }
    }

    /// Whether maintenance mode is on, as last read.
    pub fn maintenance(&self) -> bool {
        self.shared.status().maintenance
    }
}

fn default_user(parts: &http::request::Parts) -> Option<String> {
    parts
        .extensions
        .get::<ReportedUser>()
        .map(|u| u.0.clone())
        .or_else(|| {
            parts
                .headers
                .get("x-user-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|u| !u.trim().is_empty())
}

impl<S> Layer<S> for LaunchGate {
    type Service = LaunchGateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LaunchGateService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The wrapped service; made by [`LaunchGate`].
#[derive(Clone)]
pub struct LaunchGateService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for LaunchGateService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchGateService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, R> Service<Request<B>> for LaunchGateService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: From<String>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let user = (shared.user)(&parts);
            let html = wants_html(&parts.headers);
            match shared.decide(user.as_deref()).await {
                Decision::Pass => inner.call(Request::from_parts(parts, body)).await,
                refusal => Ok(refusal.into_response(html)),
            }
        })
    }
}

fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Status {
    maintenance: bool,
    message: Option<String>,
    retry_after_seconds: Option<u32>,
    #[serde(default)]
    revision: i64,
    #[serde(skip)]
    etag: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Seat {
    allowed: bool,
    waitlist_position: Option<u64>,
}

struct Shared {
    http: reqwest::Client,
    base: String,
    token: String,
    poll_interval: Duration,
    admitted_ttl: Duration,
    waiting_ttl: Duration,
    user: Box<UserFn>,
    not_admitted: NotAdmitted,
    gate_admission: bool,
    fail_open: bool,
    status: RwLock<Status>,
    /// Seats by user, with when they were read.
    seats: Mutex<HashMap<String, (Seat, Instant)>>,
    /// Whether a user passes maintenance, by (user, status revision).
    passes: Mutex<HashMap<(String, i64), bool>>,
}

enum Decision {
    Pass,
    Maintenance {
        message: Option<String>,
        retry_after: u32,
    },
    Waiting {
        position: Option<u64>,
        redirect: Option<String>,
    },
    Unavailable,
}

impl Shared {
    fn status(&self) -> Status {
        self.status
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    async fn refresh(&self) -> Result<(), SdkError> {
        let etag = self.status().etag;
        let mut req = self
            .http
            .get(format!("{}/api/launch/status", self.base))
            .bearer_auth(&self.token);
        if let Some(tag) = &etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let res = req
            .send()
            .await
            .map_err(|e| SdkError::LaunchStatus(e.to_string()))?;
        if res.status() == StatusCode::NOT_MODIFIED {
            return Ok(());
        }
        if !res.status().is_success() {
            return Err(SdkError::LaunchStatus(format!(
                "GET /api/launch/status answered {}",
                res.status()
            )));
        }
        let tag = res
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut status: Status = res
            .json()
            .await
            .map_err(|e| SdkError::LaunchStatus(format!("launch status: {e}")))?;
        status.etag = tag;
        let mut slot = self.status.write().unwrap_or_else(|e| e.into_inner());
        *slot = status;
        Ok(())
    }

    async fn decide(&self, user: Option<&str>) -> Decision {
        let status = self.status();
        if status.maintenance && !self.passes_maintenance(user, status.revision).await {
            return Decision::Maintenance {
                message: status.message,
                retry_after: status.retry_after_seconds.unwrap_or(60),
            };
        }
        let Some(user) = user.filter(|_| self.gate_admission) else {
            return Decision::Pass;
        };
        match self.seat(user).await {
            Some(seat) if seat.allowed => Decision::Pass,
            Some(seat) => Decision::Waiting {
                position: seat.waitlist_position,
                redirect: match &self.not_admitted {
                    NotAdmitted::Redirect(url) => Some(url.clone()),
                    NotAdmitted::Refuse => None,
                },
            },
            None if self.fail_open => Decision::Pass,
            None => Decision::Unavailable,
        }
    }

    /// Whether an allow-listed user passes maintenance; unknown users and errors do not.
    async fn passes_maintenance(&self, user: Option<&str>, revision: i64) -> bool {
        let Some(user) = user else { return false };
        let key = (user.to_owned(), revision);
        if let Some(pass) = lock(&self.passes).get(&key) {
            return *pass;
        }
        let answer = self
            .http
            .post(format!(
                "{}/ofrep/v1/evaluate/flags/liftoff.maintenance",
                self.base
            ))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"context": {"targetingKey": user}}))
            .send()
            .await;
        let held_out = match answer {
            Ok(res) if res.status().is_success() => res
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["value"].as_bool()),
            _ => None,
        };
        let Some(held_out) = held_out else {
            return false;
        };
        let mut passes = lock(&self.passes);
        if passes.len() >= CACHE_USERS {
            passes.clear();
        }
        passes.insert(key, !held_out);
        !held_out
    }

    /// The user's seat (asking for one), from the cache while it is fresh; `None` when
    /// Liftoff could not answer.
    async fn seat(&self, user: &str) -> Option<Seat> {
        if let Some((seat, at)) = lock(&self.seats).get(user) {
            let ttl = if seat.allowed {
                self.admitted_ttl
            } else {
                self.waiting_ttl
            };
            if at.elapsed() < ttl {
                return Some(seat.clone());
            }
        }
        let res = self
            .http
            .get(format!("{}/api/launch/user-limit", self.base))
            .query(&[("user_id", user)])
            .bearer_auth(&self.token)
            .send()
            .await;
        let seat = match res {
            Ok(r) if r.status().is_success() => r.json::<Seat>().await.ok(),
            Ok(r) => {
                tracing::warn!(status = %r.status(), "Launch seat not checked.");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "Launch seat not checked.");
                None
            }
        }?;
        let mut seats = lock(&self.seats);
        if seats.len() >= CACHE_USERS {
            seats.clear();
        }
        seats.insert(user.to_owned(), (seat.clone(), Instant::now()));
        Some(seat)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Decision {
    fn into_response<R: From<String>>(self, html: bool) -> Response<R> {
        let (status, title, text, json, extra) = match self {
            Decision::Pass | Decision::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The service cannot check access right now. Please try again shortly.".to_owned(),
                serde_json::json!({"error": "launch_unavailable"}),
                Some((header::RETRY_AFTER, "5".to_owned())),
            ),
            Decision::Maintenance {
                message,
                retry_after,
            } => {
                let text = message
                    .clone()
                    .unwrap_or_else(|| "We are doing maintenance. Please come back soon.".into());
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Down for maintenance",
                    text,
                    serde_json::json!({"maintenance": true, "message": message, "retry_after_seconds": retry_after}),
                    Some((header::RETRY_AFTER, retry_after.to_string())),
                )
            }
            Decision::Waiting {
                position,
                redirect: Some(url),
            } => {
                return redirect(&url, position);
            }
            Decision::Waiting { position, .. } => (
                StatusCode::FORBIDDEN,
                "You are on the waitlist",
                match position {
                    Some(p) => format!("Thanks for your interest! You are number {p} on the waitlist; we will let you in as seats open."),
                    None => "Thanks for your interest! You are on the waitlist; we will let you in as seats open.".to_owned(),
                },
                serde_json::json!({"allowed": false, "waitlist_position": position}),
                None,
            ),
        };
        let (content_type, body) = if html {
            (
                "text/html; charset=utf-8",
                format!(
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
                     <title>{t}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:15vh auto;padding:0 1em;color:#1b1f24}}</style>\
                     </head><body><h1>{t}</h1><p>{m}</p></body></html>",
                    t = escape(title),
                    m = escape(&text)
                ),
            )
        } else {
            let mut json = json;
            json["message"] = text.into();
            ("application/json", json.to_string())
        };
        let mut res = Response::new(R::from(body));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some((name, value)) = extra
            && let Ok(v) = HeaderValue::from_str(&value)
        {
            h.insert(name, v);
        }
        res
    }
}

fn redirect<R: From<String>>(url: &str, position: Option<u64>) -> Response<R> {
    let mut res = Response::new(R::from(String::new()));
    *res.status_mut() = StatusCode::SEE_OTHER;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(url) {
        h.insert(header::LOCATION, v);
    }
    if let Some(p) = position.and_then(|p| HeaderValue::from_str(&p.to_string()).ok()) {
        h.insert("x-waitlist-position", p);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_answers_503_with_retry_after_as_json_or_escaped_html() {
        let d = || Decision::Maintenance {
            message: Some("Back at <b>14:00</b>".into()),
            retry_after: 120,
        };
        let res: Response<String> = d().into_response(false);
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[header::RETRY_AFTER], "120");
        let v: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(v["maintenance"], true);
        assert_eq!(v["message"], "Back at <b>14:00</b>");
        let page: Response<String> = d().into_response(true);
        assert!(page.body().contains("Back at &lt;b&gt;14:00&lt;/b&gt;"));
        assert!(!page.body().contains("<b>"));
    }

    #[test]
    fn waiting_users_get_403_with_their_place_or_a_redirect() {
        let res: Response<String> = Decision::Waiting {
            position: Some(7),
            redirect: None,
        }
        .into_response(false);
        assert_eq!(res.status(), 403);
        let v: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(v["waitlist_position"], 7);
        let res: Response<String> = Decision::Waiting {
            position: Some(7),
            redirect: Some("/waitlist".into()),
        }
        .into_response(true);
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()[header::LOCATION], "/waitlist");
        assert_eq!(res.headers()["x-waitlist-position"], "7");
    }
}
