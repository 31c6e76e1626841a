//! `liftoff secrets rotate`: a new key for the secrets Liftoff keeps at rest (webhook URLs,
//! SMTP passwords), applied offline to the data directory and state store.
//!
//! Order, so that no interruption loses a secret: the new key is written to
//! `<data>/secret-key.new` (mode 0600, synced) first; then every channel secret is opened with
//! the current key and sealed with the new one in **one transaction**; only then does the new
//! key replace `<data>/secret-key` (an atomic rename). A start that finds `secret-key.new`
//! opens secrets with either key and seals them under the current one again.

use std::path::PathBuf;

use anyhow::Context as _;
use liftoff_core::alerts::AlertStore;
use liftoff_core::alerts::secrets::reseal_channels;
use liftoff_core::secret::{SecretBox, SecretKey};

use crate::config::Settings;
use crate::startup::{self, NEW_SECRET_KEY_FILE, SECRET_KEY_FILE};

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    pub data_dir: PathBuf,
    pub backend: &'static str,
    pub channels: usize,
    pub old_key_id: String,
    pub new_key: SecretKey,
    /// Where the new key was written; `None` when `LIFTOFF_SECRET_KEY` holds the key, which
    /// the operator must replace with [`Self::new_key`].
    pub key_file: Option<PathBuf>,
}

impl Rotated {
    /// What the command prints.
    pub fn report(&self) -> String {
        let mut out = format!(
            "Data directory: {}\nState store: {}\nRe-encrypted the secrets of {} notification channel{} with key {} (was {}).\n",
            self.data_dir.display(),
            self.backend,
            self.channels,
            if self.channels == 1 { "" } else { "s" },
            self.new_key.id(),
            self.old_key_id,
        );
        match &self.key_file {
            Some(path) => out.push_str(&format!("The new key is in {}.\n", path.display())),
            None => out.push_str(&format!(
                "LIFTOFF_SECRET_KEY holds the key, so the new one is not written anywhere. Set \
                 LIFTOFF_SECRET_KEY to it on every server before starting them again (shown once):\n  {}\n",
                self.new_key.encode()
            )),
        }
        out
    }
}

/// Rotates the key; the server should be stopped.
pub async fn rotate(settings: &Settings) -> anyhow::Result<Rotated> {
    let current = startup::load_secrets(settings)?;
    let new_key = SecretKey::generate();
    let next = SecretBox::new(new_key.clone());
    let from_setting = settings.secret_key.is_some();
    let staged = settings.data.join(NEW_SECRET_KEY_FILE);
    if !from_setting {
        startup::write_secret(&staged, &new_key.encode())?;
    }
    let store = startup::open_store(settings).await?;
    let backend = store.backend();
    let alerts: &dyn AlertStore = &*store;
    let outcome = reseal_channels(alerts, Some(&current), &next, true, "secrets.rotate").await;
    store.close().await?;
    let resealed = match outcome {
        Ok(r) => r,
        Err(e) => {
            if !from_setting {
                let _ = std::fs::remove_file(&staged);
            }
            return Err(anyhow::anyhow!("{e}")).context("rotating the secret key");
        }
    };
    let key_file = if from_setting {
        None
    } else {
        let path = settings.data.join(SECRET_KEY_FILE);
        std::fs::rename(&staged, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        // The rename is durable once the directory is.
        if let Ok(dir) = std::fs::File::open(&settings.data) {
            let _ = dir.sync_all();
        }
        Some(path)
    };
    Ok(Rotated {
        data_dir: std::fs::canonicalize(&settings.data).unwrap_or_else(|_| settings.data.clone()),
        backend,
        channels: resealed.sealed,
        old_key_id: current.primary().id().to_owned(),
        new_key,
        key_file,
    })
}
