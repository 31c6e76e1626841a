//! [`ReportLayer`], [`ReportService`] and their [`ResponseFuture`].

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{Record, ReportedUser, Route, Shared};

/// Wraps services in [`ReportService`]; made by
/// [`RequestReporter::layer`](super::RequestReporter::layer).
#[derive(Clone)]
pub struct ReportLayer {
    shared: Arc<Shared>,
}

impl ReportLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> ReportLayer {
        ReportLayer { shared }
    }
}

impl fmt::Debug for ReportLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ReportLayer {
    type Service = ReportService<S>;

    fn layer(&self, inner: S) -> ReportService<S> {
        ReportService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Reports every request `S` serves: method, route template, status (500 when `S` fails),
/// time from `call` to the response, and optionally the user.
#[derive(Clone)]
pub struct ReportService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for ReportService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, R> Service<Request<B>> for ReportService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let start = Instant::now();
        let shared = &self.shared;
        let mut route = matched_path(&request);
        let request = match (&route, &shared.route_fn) {
            (None, Some(route_fn)) => {
                let (parts, body) = request.into_parts();
                route = route_fn(&parts).map(Route::Owned);
                Request::from_parts(parts, body)
            }
            _ => request,
        };
        let user_id = match request.extensions().get::<ReportedUser>() {
            Some(user) => Some(user.0.clone()),
            None => shared
                .user_header
                .as_ref()
                .and_then(|name| request.headers().get(name))
                .and_then(|value| value.to_str().ok())
                .filter(|value| !value.is_empty())
                .map(str::to_owned),
        };
        let pending = Pending {
            method: request.method().clone(),
            route: route.unwrap_or(Route::Unmatched),
            user_id,
            start,
            ts: SystemTime::now(),
        };
        ResponseFuture {
            inner: crate::served::SERVED.scope(RefCell::new(Vec::new()), self.inner.call(request)),
            pending: Some(pending),
            shared: shared.clone(),
        }
    }
}

#[cfg(feature = "axum")]
fn matched_path<B>(request: &Request<B>) -> Option<Route> {
    request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| Route::Matched(path.clone()))
}

#[cfg(not(feature = "axum"))]
fn matched_path<B>(_request: &Request<B>) -> Option<Route> {
    None
}

/// What is known about a request before its response.
struct Pending {
    method: http::Method,
    route: Route,
    user_id: Option<String>,
    start: Instant,
    ts: SystemTime,
}

pin_project! {
    /// The response future of [`ReportService`]: records the request when the inner future
    /// completes (nothing when it is dropped before, as when the client went away).
    pub struct ResponseFuture<F> {
        // The request runs inside the scope its flag evaluations are noted in.
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<RefCell<Vec<(String, String)>>, F>,
        pending: Option<Pending>,
        shared: Arc<Shared>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = ready!(this.inner.as_mut().poll(cx));
        if let Some(pending) = this.pending.take() {
            let flags = this
                .inner
                .take_value()
                .map(RefCell::into_inner)
                .unwrap_or_default();
            let duration = pending.start.elapsed();
            let (status, user_id) = match &result {
                Ok(response) => (
                    response.status().as_u16(),
                    response
                        .extensions()
                        .get::<ReportedUser>()
                        .map(|user| user.0.clone())
                        .or(pending.user_id),
                ),
                Err(_) => (500, pending.user_id),
            };
            this.shared.record(Record {
                method: pending.method,
                route: pending.route,
                status,
                duration,
                ts: pending.ts,
                user_id,
                flags,
            });
        }
        Poll::Ready(result)
    }
}
