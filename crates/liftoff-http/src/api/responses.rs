//! The error answers every operation shares, added to the generated document by the kind of
//! operation so the annotations list only what is particular to a route:
//!
//! - every operation with parameters or a body: 400 (a malformed query, path or body);
//! - every authenticated operation: 401 (no or an unknown token), 403 (a token without the
//!   scope) and 429 (rate limited, or too many failed authentications);
//! - every operation with a path parameter: 404;
//! - every operation with a body: 413 (over the size limit) and 415 (a wrong `Content-Type` or
//!   an unsupported `Content-Encoding`); with a JSON body also 422 (well-formed JSON of the
//!   wrong shape).
//!
//! Every one of them is a problem document (`application/problem+json`, schema `Problem`).

use serde_json::{Map, Value, json};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" }
            }
        }
    })
}

/// Adds the shared responses to every operation of `doc` (the document as JSON).
pub(crate) fn add_shared(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let path_level_params = item
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        for method in METHODS {
            let Some(op) = item.get_mut(*method).and_then(Value::as_object_mut) else {
                continue;
            };
            add_to_operation(path, path_level_params, op);
        }
    }
}

fn add_to_operation(path: &str, path_level_params: bool, op: &mut Map<String, Value>) {
    let authenticated = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        });
    let has_params = path_level_params
        || op
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
    let body_types: Vec<String> = op
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    let has_body = op.contains_key("requestBody");
    let json_body = body_types.iter().any(|t| t.contains("json"));
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if has_params || has_body {
        wanted.push(("400", "A malformed query, path or body"));
    }
    if authenticated {
        wanted.push(("401", "No token, or an unknown or revoked one"));
        wanted.push(("403", "The token's scope does not allow this operation"));
    }
    if path.contains('{') {
        wanted.push(("404", "No such resource"));
    }
    if has_body {
        wanted.push(("413", "The body is over the size limit"));
        wanted.push(("415", "An unsupported `Content-Type` or `Content-Encoding`"));
    }
    if json_body {
        wanted.push(("422", "Well-formed JSON that is not a valid request"));
    }
    if authenticated {
        wanted.push((
            "429",
            "Rate limited or too many failed authentications; see Retry-After",
        ));
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for (status, description) in wanted {
        responses
            .entry(status)
            .or_insert_with(|| problem(description));
    }
}
