//! Release verification: a deployment recorded by CI, its service's traffic before and after,
//! the verdict, the `deployment_regression` alert, and bad input.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, problem, spawn};

#[tokio::test]
async fn a_deploy_that_raises_the_error_rate_is_flagged_and_pages() {
    let app = spawn().await;
    let (_, ingest) = app.key("ingest").await;
    let deployed_at = Utc::now() - Duration::minutes(35);
    let mut records = Vec::new();
    for i in 0..2000 {
        // Before: 1 % errors; after: 5 %.
        let (at, failed) = if i < 1000 {
            (deployed_at - Duration::minutes(15), i % 100 == 0)
        } else {
            (deployed_at + Duration::minutes(15), i % 20 == 0)
        };
        records.push(json!({"service": "shop", "method": "GET", "route": "/cart",
            "status": if failed { 503 } else { 200 }, "duration_ms": 30.0, "ts": at.to_rfc3339()}));
    }
    let res = app
        .post_json(
            "/api/ingest/requests",
            Some(&ingest),
            &Value::Array(records),
        )
        .await;
    assert_eq!(res.status(), 200);

    let res = app
        .post_json("/api/deployments", Some(&ingest),
            &json!({"service": "shop", "version": "2.3.0", "commit": "9f1c2e7", "deployed_at": deployed_at}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let d: Value = res.json().await.unwrap();
    let v: Value = app
        .get(
            &format!("/api/deployments/{}/verification", d["id"]),
            Some(ADMIN_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "regressed", "{v}");
    assert_eq!(v["before"]["requests"], 1000);
    assert!((v["after"]["error_rate"].as_f64().unwrap() - 0.05).abs() < 1e-9);
    assert!(v["error_rate"]["p_value"].as_f64().unwrap() < 0.001);
    assert!(
        v["why"]
            .as_str()
            .unwrap()
            .contains("error rate 1.00 % → 5.00 %"),
        "{v}"
    );
    let list: Value = app
        .get("/api/deployments", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["version"], "2.3.0");

    let rule = app
        .post_json(
            "/api/alerts/rules",
            Some(ADMIN_TOKEN),
            &json!({"name": "Bad deploy", "metric": "deployment_regression", "threshold": 0,
                    "for_seconds": 0, "severity": "critical"}),
        )
        .await;
    assert_eq!(rule.status(), 201, "{}", rule.text().await.unwrap());
    app.state.alerts.evaluate(Utc::now()).await.unwrap();
    let alerts = app
        .get("/api/alerts", Some(ADMIN_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert!(alerts.contains("Bad deploy"), "{alerts}");

    // Bad input: 422 with the reason; the read key cannot record; unknown id 404.
    for body in [
        json!({"service": "", "version": "1"}),
        json!({"service": "shop"}),
        json!({"service": "shop", "version": "1", "verify_minutes": 0}),
        json!({"service": "shop", "version": "1", "deployed_at": Utc::now() - Duration::days(3)}),
        json!({"service": "shop", "version": "1", "extra": true}),
    ] {
        let res = app
            .post_json("/api/deployments", Some(&ingest), &body)
            .await;
        assert!(
            res.status() == 422 || res.status() == 400,
            "{body}: {}",
            res.status()
        );
    }
    let (_, read) = app.key("read").await;
    assert_eq!(
        app.post_json(
            "/api/deployments",
            Some(&read),
            &json!({"service": "a", "version": "1"})
        )
        .await
        .status(),
        403
    );
    problem(
        app.get("/api/deployments/999/verification", Some(ADMIN_TOKEN))
            .await,
        404,
    )
    .await;
}
