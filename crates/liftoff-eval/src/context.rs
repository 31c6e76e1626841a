//! The evaluation context: who is asking.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The Unleash context. `properties` holds every other field (`hostname` feeds the
/// `applicationHostname` strategy — this crate never asks the OS). When deserialising,
/// property values may be strings, numbers or booleans (kept as text); `null` ones are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// RFC 3339. When absent, `DATE_*` constraints on `currentTime` use the evaluation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_time: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::defs::lenient_string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub properties: BTreeMap<String, String>,
}

impl Context {
    /// A context with just a user id.
    pub fn with_user(user_id: impl Into<String>) -> Context {
        Context {
            user_id: Some(user_id.into()),
            ..Context::default()
        }
    }

    /// Adds a property (builder style).
    #[must_use]
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Context {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// The value of a context field by its Unleash name: the standard fields by name, anything
    /// else from `properties`.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "userId" => self.user_id.as_deref(),
            "sessionId" => self.session_id.as_deref(),
            "remoteAddress" => self.remote_address.as_deref(),
            "environment" => self.environment.as_deref(),
            "appName" => self.app_name.as_deref(),
            "currentTime" => self.current_time.as_deref(),
            other => self.properties.get(other).map(String::as_str),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn deserialises_unleash_contexts() {
        let ctx: Context = serde_json::from_str(
            r#"{"userId":"1","properties":{"a":"x","n":3,"gone":null,"b":false},"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(ctx.field("userId"), Some("1"));
        assert_eq!(ctx.field("a"), Some("x"));
        assert_eq!(ctx.field("n"), Some("3"));
        assert_eq!(ctx.field("b"), Some("false"));
        assert_eq!(ctx.field("gone"), None);
        let ctx: Context = serde_json::from_str(r#"{"properties":null}"#).unwrap();
        assert!(ctx.properties.is_empty());
    }
}
