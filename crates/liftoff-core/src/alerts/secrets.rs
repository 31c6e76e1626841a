//! Channel secrets at rest. A channel is stored as its document with the secrets masked (so
//! reads and the dashboard never need the key) and the secrets themselves sealed beside them:
//! `{"name": …, "config": {"kind": "slack", "url": "https://hooks.slack.com/********"}, …,
//! "sealed": "enc:v1:<key id>:<base64>"}`. Only the notifier's path opens them.
//!
//! Documents written before sealing hold their secrets in plaintext and no `sealed`; they are
//! still read, and sealed at the next start ([`reseal_channels`]) or the next write.

use serde::{Deserialize, Serialize};

use super::AlertStore;
use super::model::{Channel, ChannelConfig, ChannelSecrets, DocKind};
use super::service::AlertError;
use crate::audit::Change;
use crate::auth::Actor;
use crate::secret::SecretBox;
use crate::store::StoreError;

/// A channel as its document holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredChannel {
    #[serde(flatten)]
    pub channel: Channel,
    /// The sealed [`ChannelSecrets`] as JSON; absent in documents from before sealing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

impl StoredChannel {
    /// Reads a stored document (its id is the row's).
    pub fn from_doc(id: i64, mut doc: serde_json::Value) -> Result<Self, StoreError> {
        if let Some(o) = doc.as_object_mut() {
            o.insert("id".to_owned(), id.into());
        }
        serde_json::from_value(doc)
            .map_err(|e| StoreError::Corrupt(format!("notification channel {id}: {e}")))
    }

    /// The document for `channel`: secrets sealed with `secrets` when given (always, outside
    /// unit tests), else kept as they are.
    pub fn seal(channel: &Channel, secrets: Option<&SecretBox>) -> Result<Self, AlertError> {
        let Some(b) = secrets else {
            return Ok(Self {
                channel: channel.clone(),
                sealed: None,
            });
        };
        let (masked, plain) = channel.config.split_secrets();
        let sealed = if plain.is_empty() {
            None
        } else {
            let json = serde_json::to_string(&plain)
                .map_err(|e| AlertError::Store(StoreError::Corrupt(e.to_string())))?;
            Some(b.seal(&json))
        };
        Ok(Self {
            channel: Channel {
                config: masked,
                ..channel.clone()
            },
            sealed,
        })
    }

    pub fn to_doc(&self) -> Result<serde_json::Value, AlertError> {
        serde_json::to_value(self)
            .map_err(|e| AlertError::Store(StoreError::Corrupt(e.to_string())))
    }

    /// The configuration with its secrets, for sending. The error is a reason fit for a
    /// delivery's `last_error`.
    pub fn open(&self, secrets: Option<&SecretBox>) -> Result<ChannelConfig, String> {
        let Some(sealed) = &self.sealed else {
            // From before sealing: the document holds the secrets.
            return Ok(self.channel.config.clone());
        };
        let b =
            secrets.ok_or("the channel's secrets are sealed and no secret key is configured")?;
        let json = b
            .open(sealed)
            .map_err(|e| format!("cannot decrypt the channel's secrets: {e}"))?;
        let plain: ChannelSecrets = serde_json::from_str(&json)
            .map_err(|_| "the channel's decrypted secrets are damaged".to_owned())?;
        Ok(self.channel.config.clone().with_secrets(plain))
    }

    /// Whether the document needs sealing under `b`'s current key: plaintext secrets, or sealed
    /// under another key.
    fn needs_sealing(&self, b: &SecretBox) -> bool {
        match &self.sealed {
            None => !self.channel.config.split_secrets().1.is_empty(),
            Some(s) => SecretBox::key_id(s) != Some(b.primary().id()),
        }
    }

    /// The channel for reading: secrets masked, sealed or not.
    pub fn masked(&self) -> Channel {
        self.channel.masked()
    }
}

/// What [`reseal_channels`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Channels now sealed under the new key.
    pub sealed: usize,
    /// Channels left as they were because no known key opens them (only when not `all`).
    pub unreadable: Vec<i64>,
}

/// Seals channel secrets under `to`'s key, in one transaction with one audit entry: opened
/// with `from` (plaintext documents need no key). With `all`, every channel is sealed again
/// and one that cannot be opened stops everything (a rotation must not lose a secret);
/// otherwise only plaintext documents and those under another key are, and unreadable ones
/// are left and reported.
pub async fn reseal_channels(
    store: &dyn AlertStore,
    from: Option<&SecretBox>,
    to: &SecretBox,
    all: bool,
    action: &str,
) -> Result<Resealed, AlertError> {
    let mut out = Resealed::default();
    let mut docs = Vec::new();
    for (id, doc) in store.list_alert_docs(DocKind::Channel).await? {
        let stored = StoredChannel::from_doc(id, doc)?;
        if !all && !stored.needs_sealing(to) {
            continue;
        }
        let config = match stored.open(from) {
            Ok(c) => c,
            Err(e) if all => {
                return Err(AlertError::Invalid(format!(
                    "notification channel {id}: {e}; nothing was changed"
                )));
            }
            Err(_) => {
                out.unreadable.push(id);
                continue;
            }
        };
        let channel = Channel {
            config,
            ..stored.channel
        };
        docs.push((id, StoredChannel::seal(&channel, Some(to))?.to_doc()?));
    }
    out.sealed = docs.len();
    if docs.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = docs.iter().map(|(id, _)| *id).collect();
    let change = Change::new(&Actor::System, action, DocKind::Channel.table(), "")
        .after(serde_json::json!({"channels": ids, "key_id": to.primary().id()}));
    store
        .replace_alert_docs(DocKind::Channel, &docs, &change)
        .await?;
    Ok(out)
}
