//! The OpenAPI document is complete and every API route checks its scope.

use serde_json::Value;

use crate::harness::{problem, spawn};

/// Routes anyone may call.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/health/detailed",
    "/api/openapi.json",
];

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let app = spawn().await;
    let res = app.get("/api/openapi.json", None).await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/keys", "get"),
        ("/api/keys", "post"),
        ("/api/keys/{id}", "delete"),
        ("/api/audit", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/health/detailed", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn every_api_route_requires_a_token() {
    let app = spawn().await;
    let doc: Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        let concrete = path.replace(['{', '}'], "");
        for method in item.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app.http.request(m, app.at(&concrete)).send().await.unwrap();
            problem(res, 401).await;
            assert!(
                item[method]["security"].is_array(),
                "{method} {path} must declare its security requirement"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "checked {checked} routes");
}

/// Every `$ref` of the document, with where it was found.
fn refs<'a>(v: &'a Value, at: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        out.push((at.to_owned(), r));
                    }
                } else {
                    refs(x, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// The document is true to the routes: path parameters are in the path template, query
/// parameters are `in: query`, no `$ref` dangles, every operation lists the error answers the
/// server gives (401/403/429 when authenticated, 400 with input, 404 with a path parameter,
/// 413/415/422 with a JSON body), and OFREP's `value` is any JSON value.
#[tokio::test]
async fn openapi_document_is_consistent() {
    let app = spawn().await;
    let doc: Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc,
        liftoff_http::openapi(),
        "served = liftoff_http::openapi()"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();

    let mut found = Vec::new();
    refs(&doc, "#", &mut found);
    assert!(found.len() > 100, "only {} $refs", found.len());
    let dangling: Vec<_> = found
        .iter()
        .filter(|(_, r)| {
            r.strip_prefix("#/components/schemas/")
                .is_none_or(|name| !schemas.contains_key(name))
        })
        .collect();
    assert!(dangling.is_empty(), "dangling $refs: {dangling:?}");

    let mut problems = Vec::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            operations += 1;
            let at = format!("{method} {path}");
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in &params {
                let name = p["name"].as_str().unwrap();
                let placeholder = format!("{{{name}}}");
                match p["in"].as_str().unwrap() {
                    "path" if !path.contains(&placeholder) => {
                        problems.push(format!("{at}: `{name}` is in: path but not in the path"));
                    }
                    "path" if p["required"] != true => {
                        problems.push(format!("{at}: path parameter `{name}` is not required"));
                    }
                    "query" if path.contains(&placeholder) => {
                        problems.push(format!("{at}: `{name}` is in the path but in: query"));
                    }
                    _ => {}
                }
            }
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    && !params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")
                {
                    problems.push(format!("{at}: `{{{name}}}` is not a declared parameter"));
                }
            }
            let responses = op["responses"].as_object().unwrap();
            let authenticated = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
            });
            let body = op.get("requestBody");
            let json_body = body.is_some_and(|b| {
                b["content"]
                    .as_object()
                    .is_some_and(|c| c.keys().any(|k| k.contains("json")))
            });
            let mut want: Vec<&str> = Vec::new();
            if authenticated {
                want.extend(["401", "403", "429"]);
            }
            if !params.is_empty() || body.is_some() {
                want.push("400");
            }
            if path.contains('{') {
                want.push("404");
            }
            if body.is_some() {
                want.extend(["413", "415"]);
            }
            if json_body {
                want.push("422");
            }
            for status in want {
                match responses.get(status) {
                    None => problems.push(format!("{at}: {status} is not documented")),
                    Some(r) if r["content"]["application/problem+json"].is_null() => {
                        problems.push(format!("{at}: {status} is not a problem document"));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    assert!(operations > 100, "only {operations} operations");
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The schemas the brief named as missing or wrong.
    for name in [
        "PlanAction",
        "ExportFormat",
        "SortBy",
        "OperationKind",
        "OperationErrorsReport",
        "ErrorsReport",
        "RecordsAccepted",
        "Accepted",
        "Problem",
    ] {
        assert!(schemas.contains_key(name), "{name} missing from components");
    }
    let value = &schemas["OfrepEvaluation"]["properties"]["value"];
    assert!(
        value.get("type").is_none() && value.get("$ref").is_none(),
        "OFREP value must allow any JSON value: {value}"
    );
}

/// A page size or window outside its documented bounds is a 400 naming the parameter on every
/// route, not silently clamped; the bounds themselves are in the document.
#[tokio::test]
async fn out_of_range_limits_are_400() {
    let app = spawn().await;
    let token = Some(crate::harness::ADMIN_TOKEN);
    for path in [
        "/api/alerts?limit=0",
        "/api/alerts?limit=1001",
        "/api/notifications/deliveries?limit=0",
        "/api/notifications/deliveries?limit=5000",
        "/api/feature-flags/any/history?limit=0",
        "/api/feature-flags/any/history?limit=1001",
        "/api/uptime/monitors/1/checks?hours=0",
        "/api/uptime/monitors/1/checks?hours=25",
        "/api/uptime/monitors/1/checks?limit=0",
        "/api/audit?limit=1001",
    ] {
        let p = problem(app.get(path, token).await, 400).await;
        assert_eq!(p["code"], "invalid_query", "{path}: {p}");
    }
    for path in [
        "/api/alerts?limit=1000",
        "/api/notifications/deliveries?limit=1",
    ] {
        assert_eq!(app.get(path, token).await.status(), 200, "{path}");
    }
    let doc = liftoff_http::openapi();
    let limit = doc["paths"]["/api/alerts"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()
        .clone();
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 1000);
}
