//! One accepted connection's life: what it is doing (waiting for a request, reading headers,
//! serving requests) and when it must be closed. The socket is wrapped so that every read and
//! write stamps the connection's clock; the serve loop's watchdog reads the stamps.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Milliseconds since the server's start, so stamps fit in atomics.
#[derive(Clone, Copy)]
pub struct Epoch(Instant);

impl Epoch {
    pub fn new() -> Self {
        Self(Instant::now())
    }
    pub fn now_ms(self) -> u64 {
        self.0.elapsed().as_millis() as u64 + 1
    }
    pub fn instant(self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms.saturating_sub(1))
    }
}

/// Shared between the socket wrapper, the request service and the watchdog.
pub struct ConnState {
    epoch: Epoch,
    /// Requests whose response has not been fully written yet.
    in_flight: AtomicU32,
    /// When the first byte of the next request's head arrived (0: none is being read).
    head_started: AtomicU64,
    /// Last read or write, or the end of the last response.
    last_active: AtomicU64,
    /// Whether a request was served: the wait before the first request is bounded by the
    /// header timeout, the wait between requests by the idle timeout.
    served: AtomicBool,
    /// Asks the connection to close if it is idle (the server needs its slot).
    pub reclaim: Notify,
}

/// Why the watchdog ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The request head did not arrive within the header timeout.
    Header,
    /// No request came within the idle timeout.
    Idle,
}

impl ConnState {
    pub fn new(epoch: Epoch) -> Self {
        let now = epoch.now_ms();
        Self {
            epoch,
            in_flight: AtomicU32::new(0),
            head_started: AtomicU64::new(0),
            last_active: AtomicU64::new(now),
            served: AtomicBool::new(false),
            reclaim: Notify::new(),
        }
    }

    fn on_read(&self) {
        let now = self.epoch.now_ms();
        self.last_active.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self
                .head_started
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_active
            .store(self.epoch.now_ms(), Ordering::Relaxed);
    }

    /// A request's head has been read; the service is handling it.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.served.store(true, Ordering::Relaxed);
    }

    /// A response has been written (or abandoned).
    pub fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.last_active
            .store(self.epoch.now_ms(), Ordering::Relaxed);
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    pub fn last_active_ms(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }

    /// When the watchdog should look again, and what expires then if nothing happens.
    pub fn deadline(&self, header: Duration, idle: Duration) -> (Instant, Option<Expiry>) {
        if !self.is_idle() {
            // Serving: bodies have their own timeouts; look again later.
            return (Instant::now() + idle, None);
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != 0 {
            return (self.epoch.instant(head) + header, Some(Expiry::Header));
        }
        let since = self.epoch.instant(self.last_active_ms());
        if self.served.load(Ordering::Relaxed) {
            (since + idle, Some(Expiry::Idle))
        } else {
            (since + header, Some(Expiry::Header))
        }
    }
}

pin_project! {
    /// A socket whose reads and writes stamp its connection's clock.
    pub struct Watched<T> {
        #[pin]
        io: T,
        state: Arc<ConnState>,
    }
}

impl<T> Watched<T> {
    pub fn new(io: T, state: Arc<ConnState>) -> Self {
        Self { io, state }
    }
}

impl<T: AsyncRead> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.io.poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.on_read();
        }
        res
    }
}

impl<T: AsyncWrite> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.io.poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.state.on_write();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.io.poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.state.on_write();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_must_send_its_head_within_the_header_timeout() {
        let state = ConnState::new(Epoch::new());
        let (at, what) = state.deadline(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(what, Some(Expiry::Header));
        assert!(at <= Instant::now() + Duration::from_secs(10));
    }

    #[test]
    fn between_requests_the_idle_timeout_applies_and_serving_never_expires() {
        let state = ConnState::new(Epoch::new());
        state.request_started();
        assert_eq!(
            state
                .deadline(Duration::from_secs(10), Duration::from_secs(60))
                .1,
            None
        );
        state.request_finished();
        let (at, what) = state.deadline(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(what, Some(Expiry::Idle));
        assert!(at > Instant::now() + Duration::from_secs(50));
        state.on_read();
        assert_eq!(
            state
                .deadline(Duration::from_secs(10), Duration::from_secs(60))
                .1,
            Some(Expiry::Header),
            "once the next head starts arriving, the header timeout runs"
        );
    }
}
