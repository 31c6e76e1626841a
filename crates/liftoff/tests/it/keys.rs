use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, postgres_state_url, problem, spawn, spawn_at, spawn_with};

async fn key_lifecycle(app: &crate::harness::TestApp) {
    let res = app
        .post_json(
            "/api/keys",
            Some(ADMIN_TOKEN),
            &json!({"name": "checkout ingest", "scope": "ingest", "reason": "checkout launch"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lft_") && token.len() > 40, "{token}");
    assert_eq!(created["scope"], "ingest");
    assert_eq!(created["name"], "checkout ingest");

    let listed = app
        .get("/api/keys", Some(ADMIN_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&token), "tokens are never listed");
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let entry = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert!(token.starts_with(entry["prefix"].as_str().unwrap()));
    assert!(entry["revoked_at"].is_null());

    // The new key works for its scope.
    assert_eq!(
        app.post_json(
            "/api/keys",
            Some(&token),
            &json!({"name": "x", "scope": "read"})
        )
        .await
        .status(),
        403
    );

    let res = app
        .http
        .delete(app.at(&format!("/api/keys/{id}?reason=rotated")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    problem(
        app.post_json(
            "/api/keys",
            Some(&token),
            &json!({"name": "x", "scope": "read"}),
        )
        .await,
        401,
    )
    .await;
    let res = app
        .http
        .delete(app.at(&format!("/api/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    problem(res, 404).await;

    let audit: Value = app
        .get(
            &format!("/api/audit?target_type=key&target_id={id}"),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key.revoke", "key.create"]);
    assert_eq!(entries[0]["reason"], "rotated");
    assert_eq!(entries[1]["reason"], "checkout launch");
    assert_eq!(entries[1]["actor"], "key:LIFTOFF_ADMIN_TOKEN");
    assert_eq!(entries[1]["after"]["scope"], "ingest");
    assert!(
        !audit.to_string().contains(&token),
        "the audit log never holds a token"
    );
}

#[tokio::test]
async fn key_lifecycle_on_sqlite() {
    key_lifecycle(&spawn().await).await;
}

#[tokio::test]
async fn key_lifecycle_on_postgres() {
    let url = postgres_state_url().await;
    let app = spawn_with(|mut o| {
        o.state_url = Some(url);
        o
    })
    .await;
    let detailed: Value = app
        .get("/health/detailed", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detailed["stores"][0]["backend"], "postgres");
    key_lifecycle(&app).await;
}

#[tokio::test]
async fn audit_pages_with_a_cursor() {
    let app = spawn().await;
    for _ in 0..5 {
        app.key("read").await;
    }
    let page: Value = app
        .get("/api/audit?limit=2", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let cursor = page["next_before_id"].as_i64().unwrap();
    let next: Value = app
        .get(
            &format!("/api/audit?limit=2&before_id={cursor}"),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(next["entries"][0]["id"].as_i64().unwrap() < cursor);
    problem(app.get("/api/audit?limit=0", Some(ADMIN_TOKEN)).await, 400).await;
    problem(
        app.get("/api/audit?limit=abc", Some(ADMIN_TOKEN)).await,
        400,
    )
    .await;
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_at(dir.path(), |o| o).await;
    let (_, read) = app.key("read").await;
    app.shutdown().await;
    let app = spawn_at(dir.path(), |o| o).await;
    assert_eq!(app.get("/api/keys", Some(&read)).await.status(), 200);
    let audit: Value = app
        .get("/api/audit?target_type=key", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
    if crate::harness::state_backend() == "sqlite" {
        assert!(app.data.join("state.db").exists());
    }
}
