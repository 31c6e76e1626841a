//! Bodies on the wire: request bodies that must keep arriving (a gap limit and a minimum
//! average rate, the way nginx's `client_body_timeout` and Kestrel's `MinRequestBodyDataRate`
//! do), and response bodies that tell their connection when they are done.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::conn::ConnState;

/// How slowly a request body may arrive.
#[derive(Clone, Copy, Debug)]
pub struct BodyPace {
    /// Longest wait for the next chunk.
    pub gap: Duration,
    /// Slowest average rate in bytes per second, enforced after `grace` (0: none).
    pub min_rate: u64,
    pub grace: Duration,
}

/// The body stopped arriving in time.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body arrived too slowly")
    }
}

impl std::error::Error for BodyTimeout {}

pin_project! {
    /// A request body that fails with [`BodyTimeout`] when it stalls or crawls; `expired` is
    /// set so the response can become a 408.
    pub struct PacedBody<B> {
        #[pin]
        inner: B,
        #[pin]
        timer: Sleep,
        pace: BodyPace,
        started: Option<Instant>,
        received: u64,
        expired: Arc<AtomicBool>,
    }
}

impl<B> PacedBody<B> {
    pub fn new(inner: B, pace: BodyPace, expired: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            timer: tokio::time::sleep(pace.gap),
            pace,
            started: None,
            received: 0,
            expired,
        }
    }
}

/// When the body must have made progress by, given what has arrived since `started`.
fn deadline(pace: &BodyPace, started: Instant, received: u64, now: Instant) -> Instant {
    let next_chunk = now + pace.gap;
    if pace.min_rate == 0 {
        return next_chunk;
    }
    let earned = Duration::from_secs_f64(received as f64 / pace.min_rate as f64);
    next_chunk.min(started + earned.max(pace.grace))
}

impl<B> Body for PacedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        // The clock starts when the handler first asks for the body, not while it waits.
        let started = *this.started.get_or_insert_with(|| {
            let now = Instant::now();
            this.timer.as_mut().reset(now + this.pace.gap);
            now
        });
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.len() as u64;
                }
                let next = deadline(this.pace, started, *this.received, Instant::now());
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.timer.poll(cx));
                this.expired.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(BodyTimeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body that marks its request finished on its connection when it is dropped
    /// (fully written, or abandoned by a closing connection).
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        done: RequestDone,
    }
}

/// Marks the request finished when dropped.
pub struct RequestDone(pub Arc<ConnState>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

impl<B> TrackedBody<B> {
    pub fn new(inner: B, done: RequestDone) -> Self {
        Self { inner, done }
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_deadline_never_comes_before_the_grace_period() {
        let pace = BodyPace {
            gap: Duration::from_secs(15),
            min_rate: 240,
            grace: Duration::from_secs(5),
        };
        let t0 = Instant::now();
        assert_eq!(deadline(&pace, t0, 0, t0), t0 + Duration::from_secs(5));
        // 2,400 bytes buy ten seconds at 240 B/s.
        assert_eq!(deadline(&pace, t0, 2_400, t0), t0 + Duration::from_secs(10));
        // Plenty of bytes: the gap limit is what remains.
        assert_eq!(
            deadline(&pace, t0, 1 << 30, t0 + Duration::from_secs(1)),
            t0 + Duration::from_secs(16)
        );
    }
}
