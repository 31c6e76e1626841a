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
