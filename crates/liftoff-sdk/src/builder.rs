//! [`FlagClientBuilder`]: configuration and start-up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use liftoff_eval::Snapshot;
use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::client::{FlagClient, Shared, SnapshotSource, State};
use crate::error::SdkError;
use crate::exposures::Exposures;
use crate::files::{self, FileError, LoadedFile};
use crate::sync::{Endpoints, SyncConfig, Syncer};

/// The environments a Liftoff server serves definitions for.
pub const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

pub(crate) const USER_AGENT: &str = concat!("liftoff-sdk-rust/", env!("CARGO_PKG_VERSION"));

/// Configures and starts a [`FlagClient`]; made by [`FlagClient::builder`].
///
/// Defaults: environment `production`, streaming on, polling every 15 s while the stream is
/// down (or always, with streaming off), 5 s initial timeout, 10 s request timeout, no bootstrap
/// or backup file.
#[derive(Clone)]
pub struct FlagClientBuilder {
    base_url: String,
    token: String,
    environment: String,
    backup_file: Option<PathBuf>,
    bootstrap_file: Option<PathBuf>,
    refresh_interval: Duration,
    stream: bool,
    initial_timeout: Duration,
    request_timeout: Duration,
    report_exposures: bool,
}

impl fmt::Debug for FlagClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("FlagClientBuilder")
            .field("base_url", &self.base_url)
            .field("environment", &self.environment)
            .field("backup_file", &self.backup_file)
            .field("bootstrap_file", &self.bootstrap_file)
            .field("refresh_interval", &self.refresh_interval)
            .field("stream", &self.stream)
            .field("initial_timeout", &self.initial_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("report_exposures", &self.report_exposures)
            .finish_non_exhaustive()
    }
}

impl FlagClientBuilder {
    pub(crate) fn new(base_url: String, token: String) -> FlagClientBuilder {
        FlagClientBuilder {
            base_url,
            token,
            environment: "production".to_owned(),
            backup_file: None,
            bootstrap_file: None,
            refresh_interval: Duration::from_secs(15),
            stream: true,
            initial_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            report_exposures: false,
        }
    }

    /// Reports exposures of local evaluations (default off), so experiments on flags the
    /// application evaluates itself count their users: each evaluation of an existing flag for
    /// a context with a user id becomes, once per (flag, user, value) (the client remembers the
    /// last 50,000), a `$feature_flag_called` event sent in batches every 2 s to
    /// `/api/ingest/events` with this client's token (which must be an ingest key). The queue
    /// holds 10,000 events; more are dropped and counted ([`FlagClient::exposures_dropped`]).
    #[must_use]
    pub fn report_exposures(mut self, report: bool) -> Self {
        self.report_exposures = report;
        self
    }

    /// Which environment's definitions to fetch: `development`, `staging` or `production`
    /// (the default).
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// Keeps a copy of the latest server definitions in this file (written atomically after
    /// every change) and starts from it when the server cannot be reached. Preferred over the
    /// bootstrap file at start, being newer. A missing or broken backup file is ignored.
    #[must_use]
    pub fn backup_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.backup_file = Some(path.into());
        self
    }

    /// Starts from the definitions in this file (client-features JSON, as
    /// `GET /api/sdk/flags` returns) before the server answers, or without a server at all.
    /// `build` fails if the file cannot be read or parsed.
    #[must_use]
    pub fn bootstrap_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap_file = Some(path.into());
        self
    }

    /// How often to poll `GET /api/sdk/flags` when not streaming (default 15 s; at least
    /// 10 ms).
    #[must_use]
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Whether to follow the server's event stream (default true). With false the client only
    /// polls, every [`refresh_interval`](Self::refresh_interval).
    #[must_use]
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// How long `build` waits for the first definitions when neither a backup nor a bootstrap
    /// file provided some (default 5 s). After that it returns a client that is not ready yet.
    #[must_use]
    pub fn initial_timeout(mut self, timeout: Duration) -> Self {
        self.initial_timeout = timeout;
        self
    }

    /// Time limit for connecting, for one poll, and for the stream's response headers
    /// (default 10 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Starts the client and its background task (must run inside a Tokio runtime).
    ///
    /// Returns at once when the backup or bootstrap file provided definitions; otherwise
    /// waits up to the [initial timeout](Self::initial_timeout) for the server, then returns
    /// anyway: check [`FlagClient::is_ready`]. Errors only for bad configuration and an
    /// unusable bootstrap file, never because the server is down.
    pub async fn build(self) -> Result<FlagClient, SdkError> {
        if !ENVIRONMENTS.contains(&self.environment.as_str()) {
            return Err(SdkError::InvalidEnvironment(self.environment));
        }
        let endpoints = endpoints(&self.base_url, &self.environment)?;
        let auth = bearer(&self.token)?;

        let bootstrap = match &self.bootstrap_file {
            Some(path) => Some(load_bootstrap(path).await?),
            None => None,
        };
        let backup = match &self.backup_file {
            Some(path) => load_backup(path).await,
            None => None,
        };
        let initial = match (backup, bootstrap) {
            (Some(file), _) => file_state(file, SnapshotSource::Backup),
            (None, Some(file)) => file_state(file, SnapshotSource::Bootstrap),
            (None, None) => State::empty(),
        };
        if initial.source != SnapshotSource::Empty {
            tracing::info!(
                source = ?initial.source,
                flags = initial.snapshot.len(),
                "liftoff flag definitions loaded from file"
            );
        }

        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.request_timeout)
            .build()
            .map_err(|e| SdkError::HttpClient(Box::new(e)))?;

        let exposures = if self.report_exposures {
            Some(Exposures::start(crate::exposures::settings(
                &self.base_url,
                &self.token,
                self.request_timeout,
            ))?)
        } else {
            None
        };
        let shared = Arc::new(Shared::new(initial));
        let mut updates = shared.subscribe();
        let syncer = Syncer::new(
            shared.clone(),
            SyncConfig {
                http,
                endpoints,
                auth,
                stream: self.stream,
                refresh_interval: self.refresh_interval,
                request_timeout: self.request_timeout,
                backup_file: self.backup_file,
            },
        );
        let client = FlagClient::start(shared, tokio::spawn(syncer.run()), exposures);

        if !client.is_ready() {
            let first = async {
                while !client.is_ready() {
                    if updates.changed().await.is_err() {
                        break;
                    }
                }
            };
            if tokio::time::timeout(self.initial_timeout, first)
                .await
                .is_err()
            {
                tracing::warn!(
                    timeout = ?self.initial_timeout,
                    "no liftoff flag definitions yet; every flag is off until the server answers"
                );
            }
        }
        Ok(client)
    }
}

fn file_state(file: LoadedFile, source: SnapshotSource) -> State {
    State {
        snapshot: Arc::new(Snapshot::compile(&file.defs)),
        etag: None,
        source,
        hash: Some(files::content_hash(&file.text)),
    }
}

async fn load_bootstrap(path: &Path) -> Result<LoadedFile, SdkError> {
    files::read_definitions(path)
        .await
        .map_err(|error| match error {
            FileError::Io(source) => SdkError::BootstrapRead {
                path: path.to_owned(),
                source,
            },
            FileError::Invalid(reason) => SdkError::BootstrapInvalid {
                path: path.to_owned(),
                reason,
            },
        })
}

async fn load_backup(path: &Path) -> Option<LoadedFile> {
    match files::read_definitions(path).await {
        Ok(file) => Some(file),
        Err(FileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "no liftoff backup file yet");
            None
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), ?error, "ignoring unusable liftoff backup file");
            None
        }
    }
}

pub(crate) fn bearer(token: &str) -> Result<HeaderValue, SdkError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(SdkError::InvalidToken("empty"));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| SdkError::InvalidToken("not valid in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The two endpoint URLs, with the environment in the query.
pub(crate) fn endpoints(base_url: &str, environment: &str) -> Result<Endpoints, SdkError> {
    let invalid = |reason: String| SdkError::InvalidUrl {
        url: base_url.to_owned(),
        reason,
    };
    let base = self::base_url(base_url)?;
    let endpoint = |path: &str| {
        let mut url = base.join(path).map_err(|e| invalid(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("environment", environment);
        Ok::<Url, SdkError>(url)
    };
    Ok(Endpoints {
        flags: endpoint("api/sdk/flags")?,
        stream: endpoint("api/sdk/stream")?,
    })
}

/// The server's base URL, checked (http or https with a TLS feature, a host), without query
/// or fragment, ending in `/`.
pub(crate) fn base_url(base_url: &str) -> Result<Url, SdkError> {
    let invalid = |reason: String| SdkError::InvalidUrl {
        url: base_url.to_owned(),
        reason,
    };
    let mut base = Url::parse(base_url.trim()).map_err(|e| invalid(e.to_string()))?;
    match base.scheme() {
        "http" => {}
        "https" => {
            if !cfg!(any(feature = "rustls-tls", feature = "native-tls")) {
                return Err(SdkError::TlsUnavailable {
                    url: base_url.to_owned(),
                });
            }
        }
        other => return Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".to_owned()));
    }
    base.set_query(None);
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        let e = endpoints("http://127.0.0.1:8080", "staging").unwrap();
        assert_eq!(
            e.flags.as_str(),
            "http://127.0.0.1:8080/api/sdk/flags?environment=staging"
        );
        assert_eq!(
            e.stream.as_str(),
            "http://127.0.0.1:8080/api/sdk/stream?environment=staging"
        );
        // A path prefix is kept, with or without the trailing slash; query and fragment go.
        for base in [
            "http://example.com/liftoff",
            "http://example.com/liftoff/?x=1#top",
        ] {
            let e = endpoints(base, "production").unwrap();
            assert_eq!(
                e.flags.as_str(),
                "http://example.com/liftoff/api/sdk/flags?environment=production"
            );
        }
    }

    #[test]
    fn https_needs_a_tls_feature() {
        let result = endpoints("https://example.com", "production");
        if cfg!(any(feature = "rustls-tls", feature = "native-tls")) {
            assert_eq!(
                result.unwrap().stream.as_str(),
                "https://example.com/api/sdk/stream?environment=production"
            );
        } else {
            assert!(matches!(result, Err(SdkError::TlsUnavailable { .. })));
        }
    }

    #[test]
    fn bad_urls_and_tokens() {
        for url in [
            "",
            "not a url",
            "ftp://example.com",
            "unix:/tmp/sock",
            "http://",
        ] {
            assert!(
                matches!(
                    endpoints(url, "production"),
                    Err(SdkError::InvalidUrl { .. })
                ),
                "{url:?} accepted"
            );
        }
        assert!(matches!(bearer("  "), Err(SdkError::InvalidToken(_))));
        assert!(matches!(bearer("a\nb"), Err(SdkError::InvalidToken(_))));
        let value = bearer("tok").unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer tok");
        assert!(value.is_sensitive());
    }
}
