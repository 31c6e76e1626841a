//! The evaluation context of a request: a user id and free-form attributes, as the flag APIs
//! (Liftoff's own, OFREP, PostHog's) receive them.

use std::collections::BTreeMap;

use liftoff_eval::Context;
use serde_json::Value;

/// Builds an evaluation context from a user id and free-form attributes. The Unleash field
/// names (`sessionId`, `remoteAddress`, `appName`, `environment`, `currentTime`) and their
/// snake_case forms fill the context's own fields; everything else is a property. A user id
/// given apart wins over one among the attributes (`userId`, `user_id`, `targetingKey`);
/// `null` attributes are skipped and other non-strings are kept as their JSON text.
pub fn context(user_id: Option<String>, attributes: BTreeMap<String, Value>) -> Context {
    let mut ctx = Context {
        user_id,
        ..Default::default()
    };
    for (k, v) in attributes {
        let text = match v {
            Value::String(s) => s,
            Value::Null => continue,
            other => other.to_string(),
        };
        match k.as_str() {
            "userId" | "user_id" | "targetingKey" if ctx.user_id.is_none() => {
                ctx.user_id = Some(text)
            }
            "sessionId" | "session_id" => ctx.session_id = Some(text),
            "remoteAddress" | "remote_address" | "ip" => ctx.remote_address = Some(text),
            "appName" | "app_name" => ctx.app_name = Some(text),
            "environment" => ctx.environment = Some(text),
            "currentTime" | "current_time" => ctx.current_time = Some(text),
            _ => {
                ctx.properties.insert(k, text);
            }
        }
    }
    ctx
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attrs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn known_names_fill_the_context_and_the_rest_are_properties() {
        let ctx = context(
            None,
            attrs(json!({
                "targetingKey": "u1", "sessionId": "s", "remote_address": "10.0.0.1",
                "appName": "web", "environment": "staging", "current_time": "2026-01-01T00:00:00Z",
                "plan": "pro", "seats": 3, "beta": true, "gone": null
            })),
        );
        assert_eq!(ctx.user_id.as_deref(), Some("u1"));
        assert_eq!(ctx.session_id.as_deref(), Some("s"));
        assert_eq!(ctx.remote_address.as_deref(), Some("10.0.0.1"));
        assert_eq!(ctx.app_name.as_deref(), Some("web"));
        assert_eq!(ctx.environment.as_deref(), Some("staging"));
        assert_eq!(ctx.current_time.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(
            ctx.properties,
            BTreeMap::from([
                ("beta".to_owned(), "true".to_owned()),
                ("plan".to_owned(), "pro".to_owned()),
                ("seats".to_owned(), "3".to_owned()),
            ])
        );
    }

    #[test]
    fn a_user_id_given_apart_wins() {
        let ctx = context(Some("given".into()), attrs(json!({"userId": "attr"})));
        assert_eq!(ctx.user_id.as_deref(), Some("given"));
        assert_eq!(
            ctx.properties.get("userId").map(String::as_str),
            Some("attr")
        );
        assert_eq!(context(None, BTreeMap::new()), Context::default());
    }
}
