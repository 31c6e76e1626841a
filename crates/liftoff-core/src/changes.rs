//! How replicas sharing one state store tell each other that flags or launch settings changed,
//! so each serves the change at once rather than at its next poll. PostgreSQL carries these
//! as `NOTIFY liftoff_changes` sent in the transaction that made the change (delivered on
//! commit, never for a rolled-back one); the one-second flag poll stays as the fallback for a
//! notification lost while a listener reconnects.

use async_trait::async_trait;

/// The PostgreSQL channel changes are announced on.
pub const CHANNEL: &str = "liftoff_changes";

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A flag, segment or rollout plan: reload the catalog if its revision moved.
    Flags,
    /// The launch settings (user limit, maintenance): drop what is cached for the hot paths.
    Launch,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Flags, Topic::Launch];

    /// The notification payload (what comes before any `:`).
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Flags => "flags",
            Topic::Launch => "launch",
        }
    }

    /// The topic of a payload such as `flags:42`; `None` for one this version does not know.
    pub fn parse(payload: &str) -> Option<Topic> {
        let name = payload.split(':').next().unwrap_or_default();
        Topic::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The feed of changes committed through any replica.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Sends each change to `tx` until `tx` is closed, reconnecting after a failure; after
    /// every (re)connection every topic is sent once, for what may have been missed meanwhile.
    /// Returns at once where one process owns the store (SQLite): there is no one to hear from.
    async fn follow_changes(&self, tx: tokio::sync::mpsc::Sender<Topic>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_their_topic() {
        assert_eq!(Topic::parse("flags:17"), Some(Topic::Flags));
        assert_eq!(Topic::parse("launch"), Some(Topic::Launch));
        assert_eq!(Topic::parse("reports:1"), None);
        assert_eq!(Topic::parse(""), None);
    }
}
