//! Errors from building a [`FlagClient`](crate::FlagClient) or a
//! [`LaunchGate`](crate::launch::LaunchGate).

use std::path::PathBuf;

/// Why [`FlagClientBuilder::build`](crate::FlagClientBuilder::build) failed. Nothing after
/// `build` returns an error: a server that is down, rejects the token or answers garbage is
/// logged and retried while the client keeps answering from its last good definitions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The base URL does not parse, or is not `http`/`https`.
    #[error("invalid Liftoff URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// An `https` URL, but the crate was built without a TLS feature.
    #[error(
        "{url:?} needs TLS, but liftoff-sdk was built without its `rustls-tls` or `native-tls` feature"
    )]
    TlsUnavailable { url: String },
    /// The token is empty or cannot be sent in an HTTP header.
    #[error("invalid SDK token: {0}")]
    InvalidToken(&'static str),
    /// Not one of `development`, `staging`, `production`.
    #[error("unknown environment {0:?} (expected development, staging or production)")]
    InvalidEnvironment(String),
    /// The bootstrap file cannot be read.
    #[error("cannot read the bootstrap file {}: {source}", path.display())]
    BootstrapRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bootstrap file does not hold client-features JSON.
    #[error("the bootstrap file {} does not hold flag definitions: {reason}", path.display())]
    BootstrapInvalid { path: PathBuf, reason: String },
    /// The HTTP client could not be created (TLS backend initialisation).
    #[error("cannot create the HTTP client: {0}")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// [`LaunchGate`](crate::launch::LaunchGate) could not read `GET /api/launch/status` at
    /// start (a wrong URL or key, or Liftoff is down).
    #[error("cannot read the launch status from Liftoff: {0}")]
    LaunchStatus(String),
}
