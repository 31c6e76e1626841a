//! The uptime and incident stores' contract: each function takes a fresh, empty, migrated
//! state store and panics on the first broken promise.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use liftoff_core::audit::{AuditQuery, Change};
use liftoff_core::auth::Actor;
use liftoff_core::incidents::{Incident, IncidentSeverity, IncidentStatus, Postmortem};
use liftoff_core::ports::StateStore;
use liftoff_core::uptime::{
    CheckRecord, DowntimeEdge, HttpMethod, Monitor, MonitorState, MonitorStatus, Resolution,
};

fn change(action: &str, target: &str) -> Change {
    Change::new(&Actor::System, action, "test", target)
}

fn monitor(name: &str) -> Monitor {
    let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    Monitor {
        id: 0,
        name: name.into(),
        url: "http://127.0.0.1:9/healthz".into(),
        method: HttpMethod::Get,
        interval_seconds: 30,
        timeout_seconds: 5,
        expected_status: Some(vec![200, 204]),
        keyword: Some("ok".into()),
        retries: 2,
        enabled: true,
        created_at: at,
        updated_at: at,
        state: MonitorState::default(),
    }
}

/// Monitors: insert gives ids, update keeps the state, delete takes checks along.
pub async fn monitors_round_trip(s: Arc<dyn StateStore>) {
    let id = s
        .insert_monitor(&monitor("api"), &change("uptime_monitor.create", ""))
        .await
        .unwrap();
    let id2 = s
        .insert_monitor(&monitor("web"), &change("uptime_monitor.create", ""))
        .await
        .unwrap();
    assert!(id2 > id);
    let got = s.get_monitor(id).await.unwrap().unwrap();
    let mut want = monitor("api");
    want.id = id;
    assert_eq!(got, want);
    let audit = s
        .list_audit(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.target_id == id.to_string()));

    let mut changed = got.clone();
    changed.name = "api v2".into();
    changed.expected_status = None;
    changed.keyword = None;
    changed.method = HttpMethod::Head;
    changed.enabled = false;
    assert!(s.update_monitor(&changed, &change("u", "1")).await.unwrap());
    assert_eq!(s.get_monitor(id).await.unwrap().unwrap(), changed);
    changed.id = 9999;
    assert!(
        !s.update_monitor(&changed, &change("u", "9999"))
            .await
            .unwrap()
    );
    let list = s.list_monitors().await.unwrap();
    assert_eq!(list.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id, id2]);

    assert!(s.delete_monitor(id, &change("d", "1")).await.unwrap());
    assert!(!s.delete_monitor(id, &change("d", "1")).await.unwrap());
    assert!(s.get_monitor(id).await.unwrap().is_none());
}

/// Checks: one transaction stores the check, its rollups, the state and the downtime edge.
pub async fn checks_rollups_and_downtimes(s: Arc<dyn StateStore>) {
    let id = s
        .insert_monitor(&monitor("api"), &change("c", ""))
        .await
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap();
    let check = |secs: i64, up: bool, ms: u32| CheckRecord {
        monitor_id: id,
        at: t0 + Duration::seconds(secs),
        up,
        status_code: up.then_some(200),
        response_ms: ms,
        error: (!up).then(|| "connection refused".into()),
    };
    let state = |status, at: i64| MonitorState {
        status,
        consecutive_failures: u32::from(status == MonitorStatus::Down),
        failing_since: None,
        last_checked_at: Some(t0 + Duration::seconds(at)),
        last_error: None,
    };
    let steps = [
        (check(0, true, 10), MonitorStatus::Up, DowntimeEdge::None),
        (
            check(30, false, 5000),
            MonitorStatus::Down,
            DowntimeEdge::Open(t0 + Duration::seconds(30)),
        ),
        (
            check(3600, false, 7),
            MonitorStatus::Down,
            DowntimeEdge::None,
        ),
        (
            check(3630, true, 20),
            MonitorStatus::Up,
            DowntimeEdge::Close(t0 + Duration::seconds(3630)),
        ),
    ];
    for (c, status, edge) in &steps {
        let secs = (c.at - t0).num_seconds();
        assert!(
            s.record_check(c, &state(*status, secs), *edge)
                .await
                .unwrap()
        );
    }
    let m = s.get_monitor(id).await.unwrap().unwrap();
    assert_eq!(m.state.status, MonitorStatus::Up);
    assert_eq!(m.state.last_checked_at, Some(t0 + Duration::seconds(3630)));

    let checks = s.uptime_checks(id, t0, 100).await.unwrap();
    assert_eq!(checks.len(), 4);
    assert_eq!(checks[0], check(3630, true, 20));
    assert_eq!(checks[3], check(0, true, 10));
    assert_eq!(s.uptime_checks(id, t0, 1).await.unwrap().len(), 1);

    let hours = s.uptime_rollups(id, Resolution::Hour, t0).await.unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!(
        (
            hours[0].up,
            hours[0].total,
            hours[0].sum_ms,
            hours[0].max_ms
        ),
        (1, 2, 5010, 5000)
    );
    assert_eq!((hours[1].up, hours[1].total, hours[1].max_ms), (1, 2, 20));
    let days = s.uptime_rollups(id, Resolution::Day, t0).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].up, days[0].total, days[0].sum_ms), (2, 4, 5037));
    assert_eq!(
        days[0].start,
        Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
    );

    let down = s.downtimes(id, t0).await.unwrap();
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].started_at, t0 + Duration::seconds(30));
    assert_eq!(down[0].ended_at, Some(t0 + Duration::seconds(3630)));
    // An ongoing period is listed whatever `from` says.
    s.record_check(
        &check(4000, false, 1),
        &state(MonitorStatus::Down, 4000),
        DowntimeEdge::Open(t0 + Duration::seconds(4000)),
    )
    .await
    .unwrap();
    let later = s.downtimes(id, t0 + Duration::days(2)).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].ended_at, None);

    // A check for a deleted monitor writes nothing.
    let gone = CheckRecord {
        monitor_id: 4242,
        ..check(10, true, 1)
    };
    assert!(
        !s.record_check(&gone, &state(MonitorStatus::Up, 10), DowntimeEdge::None)
            .await
            .unwrap()
    );

    // Purge: raw checks before the cut go, rollups and ongoing periods stay.
    let n = s
        .purge_uptime(
            t0 + Duration::seconds(3600),
            t0 - Duration::days(1),
            t0 - Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.uptime_checks(id, t0, 100).await.unwrap().len(), 3);
    assert_eq!(
        s.uptime_rollups(id, Resolution::Hour, t0)
            .await
            .unwrap()
            .len(),
        2
    );
    s.purge_uptime(t0, t0 + Duration::days(1), t0 + Duration::days(2))
        .await
        .unwrap();
    assert!(
        s.uptime_rollups(id, Resolution::Day, t0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.downtimes(id, t0).await.unwrap().len(), 1);

    // Deleting the monitor takes its data along.
    assert!(s.delete_monitor(id, &change("d", "")).await.unwrap());
    assert!(s.uptime_checks(id, t0, 100).await.unwrap().is_empty());
}

fn incident(title: &str, year: i32) -> Incident {
    let at = Utc.with_ymd_and_hms(year, 3, 1, 12, 0, 0).unwrap();
    Incident {
        id: String::new(),
        title: title.into(),
        severity: IncidentSeverity::Critical,
        status: IncidentStatus::Investigating,
        started_at: at,
        identified_at: None,
        monitoring_at: None,
        resolved_at: None,
        created_at: at,
        updated_at: at,
        created_by: "system".into(),
        description: None,
        root_cause: None,
        resolution: None,
        why_missed: None,
        long_term_fix: None,
        communication: None,
        postmortem: Postmortem::default(),
        timeline: Vec::new(),
        action_items: Vec::new(),
        alert_rules: vec![3],
        auto_opened: false,
        version: 1,
    }
}

/// Incidents: numbered per year in order, read back whole, updated only at the expected version.
pub async fn incidents_round_trip(s: Arc<dyn StateStore>) {
    let a = s
        .create_incident(&incident("a", 2025), &change("incident.create", ""))
        .await
        .unwrap();
    let b = s
        .create_incident(&incident("b", 2025), &change("incident.create", ""))
        .await
        .unwrap();
    let c = s
        .create_incident(&incident("c", 2026), &change("incident.create", ""))
        .await
        .unwrap();
    assert_eq!(
        (a.id.as_str(), b.id.as_str(), c.id.as_str()),
        ("INC-2025-001", "INC-2025-002", "INC-2026-001")
    );
    let audit = s
        .list_audit(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.target_id == "INC-2025-002"));
    assert_eq!(s.get_incident("INC-2025-001").await.unwrap().unwrap(), a);
    assert!(s.get_incident("INC-1999-001").await.unwrap().is_none());
    let list = s.list_incidents().await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].id, "INC-2026-001");

    let mut changed = a.clone();
    changed.status = IncidentStatus::Resolved;
    changed.resolved_at = Some(a.started_at + Duration::minutes(30));
    changed.postmortem.summary = "The cache fell over.".into();
    changed.version = 2;
    assert!(
        s.update_incident(&changed, 1, &change("incident.update", &a.id))
            .await
            .unwrap()
    );
    // A stale writer changes nothing.
    let mut stale = a.clone();
    stale.title = "stale".into();
    stale.version = 2;
    assert!(
        !s.update_incident(&stale, 1, &change("incident.update", &a.id))
            .await
            .unwrap()
    );
    assert_eq!(s.get_incident(&a.id).await.unwrap().unwrap(), changed);
}

/// Deployments get increasing ids, come back whole, newest first, and write their audit entry.
pub async fn deployments_round_trip_newest_first(s: Arc<dyn StateStore>) {
    use liftoff_core::deployments::Deployment;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 3, 10, 0, 0).unwrap();
    let d = |version: &str, mins: i64| Deployment {
        id: 0,
        service: "shop".into(),
        version: version.into(),
        environment: Some("production".into()),
        commit: Some("abc123".into()),
        description: None,
        deployed_at: t0 + Duration::minutes(mins),
        verify_minutes: 30,
        recorded_by: "ci".into(),
    };
    let change = Change::new(&Actor::System, "deployment.create", "deployment", "");
    let a = s.create_deployment(&d("1.0.0", 0), &change).await.unwrap();
    let b = s.create_deployment(&d("1.1.0", 60), &change).await.unwrap();
    assert!(b.id > a.id && a.id > 0);
    assert_eq!(s.get_deployment(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_deployment(b.id + 100).await.unwrap(), None);
    let list = s.list_deployments(10).await.unwrap();
    assert_eq!(list, vec![b.clone(), a.clone()]);
    assert_eq!(s.list_deployments(1).await.unwrap(), vec![b.clone()]);
    let audit = s
        .list_audit(&AuditQuery {
            target_type: Some("deployment".into()),
            target_id: None,
            actor: None,
            before_id: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().any(|e| e.target_id == a.id.to_string()));
}

/// Runs the uptime and incident contract against the store `$open` returns (an
/// `async fn() -> Arc<dyn StateStore>`).
#[macro_export]
macro_rules! uptime_incident_contract {
    ($open:path) => {
        $crate::uptime_incident_contract!(@cases $open;
            monitors_round_trip, checks_rollups_and_downtimes, incidents_round_trip,
            deployments_round_trip_newest_first);
    };
    (@cases $open:path; $($case:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::uptime_contract::$case($open().await).await;
            }
        )+
    };
}
