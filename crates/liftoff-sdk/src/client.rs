//! [`FlagClient`]: the handle applications evaluate flags with.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use liftoff_eval::{Context, Evaluation, Snapshot, VariantResult};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::builder::FlagClientBuilder;
use crate::exposures::Exposures;

/// Where the definitions a client evaluates with came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SnapshotSource {
    /// None yet: every flag is off.
    Empty,
    /// The bootstrap file given to [`FlagClientBuilder::bootstrap_file`].
    Bootstrap,
    /// The backup file given to [`FlagClientBuilder::backup_file`], from an earlier run.
    Backup,
    /// The Liftoff server.
    Server,
}

/// What the client currently evaluates with. Replaced whole, never mutated.
#[derive(Debug)]
pub(crate) struct State {
    pub snapshot: Arc<Snapshot>,
    /// Normalised (quoted) ETag of the server's definitions.
    pub etag: Option<String>,
    pub source: SnapshotSource,
    /// [`crate::files::content_hash`] of the document the snapshot was compiled from.
    pub hash: Option<u64>,
}

impl State {
    pub fn empty() -> State {
        State {
            snapshot: Arc::new(Snapshot::default()),
            etag: None,
            source: SnapshotSource::Empty,
            hash: None,
        }
    }
}

/// What the client handles and the background task share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: RwLock<Arc<State>>,
    /// Bumped on every published state.
    updates: watch::Sender<u64>,
    /// Set once by shutdown.
    stop: watch::Sender<bool>,
}

impl Shared {
    pub fn new(initial: State) -> Shared {
        Shared {
            state: RwLock::new(Arc::new(initial)),
            updates: watch::Sender::new(0),
            stop: watch::Sender::new(false),
        }
    }

    /// The current state. The lock is held only to clone an `Arc`: evaluation never waits on
    /// IO or on a snapshot being compiled.
    pub fn current(&self) -> Arc<State> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the state and wakes [`FlagClient::wait_for_update`] waiters.
    pub fn publish(&self, state: State) {
        let state = Arc::new(state);
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
        self.updates.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }
}

/// A feature-flag client: evaluates locally against the definitions it keeps up to date in the
/// background. Cheap to clone (an `Arc` inside); all clones share one background task, which
/// stops on [`FlagClient::shutdown`] or when the last clone is dropped.
#[derive(Clone)]
pub struct FlagClient {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
    exposures: Option<Exposures>,
}

impl Inner {
    fn stop(&self) {
        self.shared.stop.send_replace(true);
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl FlagClient {
    /// Starts configuring a client for the Liftoff server at `base_url` (e.g.
    /// `https://flags.example.com`; a path prefix is kept) with an SDK (ingest) token.
    pub fn builder(base_url: impl Into<String>, token: impl Into<String>) -> FlagClientBuilder {
        FlagClientBuilder::new(base_url.into(), token.into())
    }

    pub(crate) fn start(
        shared: Arc<Shared>,
        task: JoinHandle<()>,
        exposures: Option<Exposures>,
    ) -> FlagClient {
        FlagClient {
            inner: Arc::new(Inner {
                shared,
                task: Mutex::new(Some(task)),
                exposures,
            }),
        }
    }

    /// Runs `f` on the current state under the read lock (held only while `f` runs, which
    /// never does IO; a swap waits at most for running evaluations).
    fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self
            .inner
            .shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether `flag` is on for `ctx`. Unknown flags, and every flag before any definitions
    /// arrived, are off.
    pub fn is_enabled(&self, flag: &str, ctx: &Context) -> bool {
        if crate::served::in_request() || self.inner.exposures.is_some() {
            return self.evaluate(flag, ctx).enabled;
        }
        self.with_state(|s| s.snapshot.is_enabled(flag, ctx))
    }

    /// The variant of `flag` for `ctx` (named `"disabled"` when none applies).
    pub fn variant(&self, flag: &str, ctx: &Context) -> VariantResult {
        self.evaluate(flag, ctx).variant
    }

    /// The full evaluation: on/off, variant, reason, and whether the flag exists.
    pub fn evaluate(&self, flag: &str, ctx: &Context) -> Evaluation {
        let e = self.with_state(|s| s.snapshot.evaluate(flag, ctx));
        crate::served::note(flag, &e);
        if let Some(exposures) = &self.inner.exposures {
            exposures.observe(flag, ctx, &e);
        }
        e
    }

    /// The compiled definitions in use right now, to evaluate several flags against one
    /// consistent version (or list them). Later updates do not change the returned snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.with_state(|s| s.snapshot.clone())
    }

    /// Whether the client has definitions: from the server, the backup file or the bootstrap
    /// file. When false, every flag is off.
    pub fn is_ready(&self) -> bool {
        self.with_state(|s| s.source != SnapshotSource::Empty)
    }

    /// Where the current definitions came from.
    pub fn source(&self) -> SnapshotSource {
        self.with_state(|s| s.source)
    }

    /// The server's ETag for the current definitions (`None` until the server answered; the
    /// bootstrap and backup files carry none).
    pub fn etag(&self) -> Option<String> {
        self.with_state(|s| s.etag.clone())
    }

    /// Resolves when the definitions next change (new content, a new ETag, or a new source),
    /// or at once after [`FlagClient::shutdown`]. Changes are counted from the moment this is
    /// called, not from the first poll of the future, so this is race-free:
    ///
    /// ```no_run
    /// # async fn demo(client: liftoff_sdk::FlagClient) {
    /// let updated = client.wait_for_update();
    /// // ... change a flag on the server ...
    /// updated.await;
    /// # }
    /// ```
    pub fn wait_for_update(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut updates = self.inner.shared.subscribe();
        let mut stop = self.inner.shared.stop.subscribe();
        async move {
            if *stop.borrow_and_update() {
                return;
            }
            tokio::select! {
                _ = updates.changed() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Stops the background task (for every clone). Evaluation keeps working with the last
    /// definitions; they are no longer updated. Idempotent. Exposures already queued are sent
    /// in the background; [`FlagClient::close`] waits for them.
    pub fn shutdown(&self) {
        if !*self.inner.shared.stop.borrow() {
            tracing::debug!("liftoff flag client shut down");
        }
        self.inner.stop();
        if let Some(exposures) = &self.inner.exposures {
            exposures.control.request_stop();
        }
    }

    /// [`FlagClient::shutdown`], then sends the queued exposure events (one attempt per
    /// batch) and waits for them: call it before the process exits.
    pub async fn close(&self) {
        self.inner.stop();
        if let Some(exposures) = &self.inner.exposures {
            exposures.control.shutdown().await;
        }
    }

    /// Exposure events Liftoff accepted (0 unless [`FlagClientBuilder::report_exposures`]).
    pub fn exposures_sent(&self) -> u64 {
        self.inner.exposures.as_ref().map_or(0, Exposures::sent)
    }

    /// Exposure events not reported: the queue was full, the client closed, or Liftoff could
    /// not be reached or refused them.
    pub fn exposures_dropped(&self) -> u64 {
        self.inner.exposures.as_ref().map_or(0, Exposures::dropped)
    }
}

impl fmt::Debug for FlagClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.shared.current();
        f.debug_struct("FlagClient")
            .field("source", &state.source)
            .field("etag", &state.etag)
            .field("flags", &state.snapshot.len())
            .finish_non_exhaustive()
    }
}
