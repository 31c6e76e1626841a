//! The HTTP/1.1 server loop in front of the router, with the limits a public edge needs
//! (nginx and Envoy are the models):
//!
//! - a connection must send its request head within `header_timeout` of connecting or of the
//!   head's first byte, and is closed after `idle_timeout` without a request;
//! - request bodies must keep arriving ([`BodyPace`]); a stalled one answers 408;
//! - at most `max_connections` are open; at the cap, idle connections are closed to make room
//!   (nginx's reusable connections), and accepting pauses while none can be;
//! - at most `max_in_flight` requests are handled at once; beyond that a request waits at most
//!   `queue_timeout` (and behind at most as many others) before a 503 with `Retry-After`;
//! - accept errors (out of file descriptors) are logged and retried while the open
//!   connections keep being served.
//!
//! Health probes (`/healthz`, `/readyz`) skip admission so a busy server still says it lives.

mod admission;
pub mod body;
mod conn;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken as CancelFlag;
use tower::Service;

pub use admission::Admission;
pub use body::{BodyPace, BodyTimeout};
use body::{PacedBody, RequestDone, TrackedBody};
use conn::{ConnState, Epoch, Expiry, Watched};

use crate::error::ApiError;

/// The edge's limits; `liftoff serve` fills them from its settings.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body: BodyPace,
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub queue_timeout: Duration,
    /// How long shutdown waits for open connections (streams) before closing them.
    pub drain_timeout: Duration,
    /// Largest buffer per connection; request heads must fit in it.
    pub max_buf_size: usize,
    /// Proxies whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: liftoff_core::network::Networks,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body: BodyPace {
                gap: Duration::from_secs(15),
                min_rate: 240,
                grace: Duration::from_secs(5),
            },
            max_connections: 10_000,
            max_in_flight: 128,
            queue_timeout: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(10),
            max_buf_size: 64 * 1024,
            trusted_proxies: liftoff_core::network::Networks::default(),
        }
    }
}

/// What the edge has done, for `/metrics` and tests.
#[derive(Default, Debug)]
pub struct EdgeStats {
    pub open_connections: AtomicUsize,
    pub accepted: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_closed: AtomicU64,
    pub reclaimed: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub overloaded: AtomicU64,
    pub accept_errors: AtomicU64,
    /// Requests being handled now.
    pub in_flight: AtomicUsize,
}

/// Open connections, so the loop can find idle ones to close when it needs room.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    freed: Notify,
}

impl Registry {
    fn insert(&self, state: Arc<ConnState>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, state);
        }
        id
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
        self.freed.notify_waiters();
    }

    fn len(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }

    /// Asks up to `n` of the longest-idle connections to close; how many were asked.
    fn reclaim(&self, n: usize) -> usize {
        let Ok(open) = self.open.lock() else {
            return 0;
        };
        let mut idle: Vec<&Arc<ConnState>> = open.values().filter(|c| c.is_idle()).collect();
        idle.sort_by_key(|c| c.last_active_ms());
        for c in idle.iter().take(n) {
            c.reclaim.notify_one();
        }
        idle.len().min(n)
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish
/// (up to `drain_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    stats: Arc<EdgeStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = Arc::new(options);
    let registry = Arc::new(Registry::default());
    let admission = Arc::new(Admission::new(options.max_in_flight, options.queue_timeout));
    let epoch = Epoch::new();
    let stop = CancelFlag::default();
    let stopper = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.cancel();
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // The watchdog enforces the header timeout (hyper's would also cut idle keep-alive).
        .header_read_timeout(None)
        .max_buf_size(options.max_buf_size)
        .keep_alive(true);
    let http = Arc::new(http);
    let mut last_accept_error_log: Option<std::time::Instant> = None;
    loop {
        // Room for one more connection: close idle ones at the cap, or wait for one to end.
        while registry.len() >= options.max_connections {
            if registry.reclaim(32) > 0 {
                stats.reclaimed.fetch_add(1, Ordering::Relaxed);
            }
            tokio::select! {
                () = registry.freed.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop.cancelled() => break,
            }
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stop.cancelled() => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                let now = std::time::Instant::now();
                if last_accept_error_log.is_none_or(|t| now - t > Duration::from_secs(10)) {
                    last_accept_error_log = Some(now);
                    tracing::error!(error = %e, open = registry.len(), "Cannot accept connections (out of file descriptors?); serving the open ones. Raise `ulimit -n` or lower --max-connections.");
                }
                // Free a slot if any connection is idle, then try again shortly.
                registry.reclaim(32);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new(epoch));
        let id = registry.insert(state.clone());
        stats.open_connections.fetch_add(1, Ordering::Relaxed);
        let handler = Handler {
            app: app.clone(),
            peer,
            state: state.clone(),
            admission: admission.clone(),
            options: options.clone(),
            stats: stats.clone(),
        };
        let (registry, stats, http, options, stop) = (
            registry.clone(),
            stats.clone(),
            http.clone(),
            options.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            run_connection(socket, handler, state, &http, &options, &stats, &stop).await;
            stats.open_connections.fetch_sub(1, Ordering::Relaxed);
            registry.remove(id);
        });
    }
    // Drain: connections finish their current request and close; streams are cut at the bound.
    let deadline = tokio::time::Instant::now() + options.drain_timeout;
    while registry.len() > 0 {
        tokio::select! {
            () = registry.freed.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(open = registry.len(), "Closing connections still open after the drain period.");
                break;
            }
        }
    }
    Ok(())
}

async fn run_connection(
    socket: TcpStream,
    handler: Handler,
    state: Arc<ConnState>,
    http: &hyper::server::conn::http1::Builder,
    options: &ServeOptions,
    stats: &EdgeStats,
    stop: &CancelFlag,
) {
    let io = TokioIo::new(Watched::new(socket, state.clone()));
    let conn = http.serve_connection(io, handler);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let (at, expiry) = state.deadline(options.header_timeout, options.idle_timeout);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "Connection ended with an error.");
                }
                return;
            }
            () = tokio::time::sleep_until(at.into()) => {
                // Activity may have moved the deadline; only a deadline that still holds ends it.
                let (now_at, now_expiry) = state.deadline(options.header_timeout, options.idle_timeout);
                if now_expiry.is_some() && now_at <= std::time::Instant::now() {
                    match expiry {
                        Some(Expiry::Header) => stats.header_timeouts.fetch_add(1, Ordering::Relaxed),
                        _ => stats.idle_closed.fetch_add(1, Ordering::Relaxed),
                    };
                    return;
                }
            }
            () = state.reclaim.notified() => {
                if state.is_idle() {
                    stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            () = stop.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The per-connection service: admission, connection info, paced body, then the router.
#[derive(Clone)]
struct Handler {
    app: Router,
    peer: SocketAddr,
    state: Arc<ConnState>,
    admission: Arc<Admission>,
    options: Arc<ServeOptions>,
    stats: Arc<EdgeStats>,
}

/// Routes that answer even when the server is saturated.
fn skips_admission(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.state.request_started();
        let done = RequestDone(self.state.clone());
        let this = self.clone();
        Box::pin(async move {
            let permit = if skips_admission(req.uri().path()) {
                None
            } else {
                match this.admission.admit().await {
                    Some(p) => Some(p),
                    None => {
                        this.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                        let res = ApiError::unavailable(
                            1,
                            "Liftoff is handling as many requests as it can; retry after the time in Retry-After",
                        )
                        .with_extension("reason", "overloaded")
                        .into_response();
                        return Ok(res.map(|b| Body::new(TrackedBody::new(b, done))));
                    }
                }
            };
            this.stats.in_flight.fetch_add(1, Ordering::Relaxed);
            let expired = Arc::new(AtomicBool::new(false));
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(this.peer));
            if !this.options.trusted_proxies.is_empty() {
                let client = crate::mw::client::resolve(
                    this.peer.ip(),
                    &parts.headers,
                    &this.options.trusted_proxies,
                );
                parts
                    .extensions
                    .insert(crate::mw::client::ClientAddr(client));
            }
            let body = Body::new(PacedBody::new(body, this.options.body, expired.clone()));
            let mut app = this.app.clone();
            let res = app.call(Request::from_parts(parts, body)).await;
            this.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            let mut res = match res {
                Ok(res) => res,
                Err(never) => match never {},
            };
            if expired.load(Ordering::Acquire) {
                this.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
                res = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the request body stopped arriving; send it without pauses",
                )
                .into_response();
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(res.map(|b| Body::new(TrackedBody::new(b, done))))
        })
    }
}
