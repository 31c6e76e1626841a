//! The state-store contract. Each function takes a fresh, empty, migrated store and panics on
//! the first broken promise.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use liftoff_core::audit::{AuditQuery, Change};
use liftoff_core::auth::{Actor, ApiKey, KeyRecord, Scope};
use liftoff_core::ports::StateStore;
use liftoff_core::secret::TokenDigest;
use liftoff_core::store::StoreError;
use liftoff_core::users::{Role, SessionRecord, User, UserRecord};
use serde_json::json;

fn actor() -> Actor {
    Actor::User {
        id: "u1".into(),
        username: "ada".into(),
    }
}

fn key(id: &str, scope: Scope, secret: &str) -> KeyRecord {
    KeyRecord {
        key: ApiKey {
            id: id.into(),
            name: format!("key {id}"),
            scope,
            prefix: "lft_abcdefgh".into(),
            // Whole milliseconds: both backends keep at least that precision.
            created_at: Utc
                .timestamp_millis_opt(1_700_000_000_000 + id.len() as i64)
                .unwrap(),
            created_by: "user:ada".into(),
            last_used_at: None,
            revoked_at: None,
        },
        digest: TokenDigest::of(secret),
    }
}

fn user(id: &str, name: &str, role: Role) -> UserRecord {
    UserRecord {
        user: User {
            id: id.into(),
            username: name.into(),
            role,
            created_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

pub async fn keys_round_trip(s: Arc<dyn StateStore>) {
    let k = key("k1", Scope::Read, "secret-1");
    let change = Change::new(&actor(), "key.create", "key", "k1")
        .after(json!({"scope": "read"}))
        .reason(Some("ci".into()));
    s.insert_key(&k, &change).await.unwrap();
    s.insert_key(
        &key("k22", Scope::Ingest, "secret-2"),
        &Change::new(&actor(), "key.create", "key", "k22"),
    )
    .await
    .unwrap();

    let listed = s.list_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, "k22", "newest first");
    assert_eq!(listed[1], k.key);

    let found = s
        .find_active_key(&TokenDigest::of("secret-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, k.key);
    assert!(
        s.find_active_key(&TokenDigest::of("nope"))
            .await
            .unwrap()
            .is_none()
    );

    let used = Utc.timestamp_millis_opt(1_800_000_000_000).unwrap();
    s.touch_key("k1", used).await.unwrap();
    let found = s
        .find_active_key(&TokenDigest::of("secret-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.last_used_at, Some(used));

    assert_eq!(s.count_active_keys(None).await.unwrap(), 2);
    assert_eq!(s.count_active_keys(Some(Scope::Ingest)).await.unwrap(), 1);
    assert_eq!(s.count_active_keys(Some(Scope::Admin)).await.unwrap(), 0);

    let audit = s
        .list_audit(&AuditQuery {
            target_id: Some("k1".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "key.create");
    assert_eq!(audit[0].actor, "user:ada");
    assert_eq!(audit[0].after, Some(json!({"scope": "read"})));
    assert_eq!(audit[0].reason.as_deref(), Some("ci"));
}

pub async fn revoked_keys_do_not_authenticate(s: Arc<dyn StateStore>) {
    s.insert_key(
        &key("k1", Scope::Admin, "secret"),
        &Change::new(&actor(), "key.create", "key", "k1"),
    )
    .await
    .unwrap();
    let revoke = Change::new(&actor(), "key.revoke", "key", "k1").before(json!({"scope": "admin"}));
    assert!(s.revoke_key("k1", &revoke).await.unwrap());
    assert!(
        !s.revoke_key("k1", &revoke).await.unwrap(),
        "revoking twice reports nothing to revoke"
    );
    assert!(!s.revoke_key("missing", &revoke).await.unwrap());
    assert!(
        s.find_active_key(&TokenDigest::of("secret"))
            .await
            .unwrap()
            .is_none()
    );
    let listed = s.list_keys().await.unwrap();
    assert!(listed[0].revoked_at.is_some(), "revoked keys stay listed");
    assert_eq!(s.count_active_keys(None).await.unwrap(), 0);
    let audit = s
        .list_audit(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        ["key.revoke", "key.create"],
        "one audit entry per real change"
    );
}

pub async fn failed_change_writes_no_audit(s: Arc<dyn StateStore>) {
    s.insert_key(
        &key("k1", Scope::Read, "same"),
        &Change::new(&actor(), "key.create", "key", "k1"),
    )
    .await
    .unwrap();
    let err = s
        .insert_key(
            &key("k2", Scope::Read, "same"),
            &Change::new(&actor(), "key.create", "key", "k2"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "duplicate digest is a conflict: {err:?}"
    );
    let audit = s
        .list_audit(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "the failed insert left no audit entry");
    assert_eq!(s.list_keys().await.unwrap().len(), 1);
}

pub async fn audit_filters_and_pages(s: Arc<dyn StateStore>) {
    for i in 0..25 {
        let id = format!("k{i:02}");
        s.insert_key(
            &key(&id, Scope::Read, &id),
            &Change::new(&actor(), "key.create", "key", &id),
        )
        .await
        .unwrap();
    }
    s.insert_user(
        &user("u9", "grace", Role::Viewer),
        &Change::new(&Actor::System, "user.create", "user", "u9"),
    )
    .await
    .unwrap();
    let page1 = s
        .list_audit(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page1.len(), 10);
    assert_eq!(page1[0].target_type, "user");
    assert!(page1.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let page2 = s
        .list_audit(&AuditQuery {
            limit: 10,
            before_id: Some(page1[9].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.len(), 10);
    assert!(page2[0].id < page1[9].id);
    let keys_only = s
        .list_audit(&AuditQuery {
            target_type: Some("key".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(keys_only.len(), 25);
    let by_system = s
        .list_audit(&AuditQuery {
            actor: Some("system".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_system.len(), 1);
    assert_eq!(by_system[0].target_id, "u9");
}

pub async fn users_are_unique(s: Arc<dyn StateStore>) {
    let ada = user("u1", "ada", Role::Admin);
    s.insert_user(
        &ada,
        &Change::new(&Actor::System, "user.create", "user", "u1"),
    )
    .await
    .unwrap();
    let err = s
        .insert_user(
            &user("u2", "ada", Role::Viewer),
            &Change::new(&Actor::System, "user.create", "user", "u2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    s.insert_user(
        &user("u3", "bob", Role::Editor),
        &Change::new(&Actor::System, "user.create", "user", "u3"),
    )
    .await
    .unwrap();
    let found = s.find_user_by_name("ada").await.unwrap().unwrap();
    assert_eq!(found.user, ada.user);
    assert_eq!(found.password_hash, ada.password_hash);
    assert_eq!(
        s.get_user("u3").await.unwrap().unwrap().user.role,
        Role::Editor
    );
    assert!(s.find_user_by_name("nobody").await.unwrap().is_none());
    assert_eq!(s.count_users().await.unwrap(), 2);
    let names: Vec<_> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["ada", "bob"]);
}

pub async fn sessions_expire(s: Arc<dyn StateStore>) {
    s.insert_user(
        &user("u1", "ada", Role::Admin),
        &Change::new(&Actor::System, "user.create", "user", "u1"),
    )
    .await
    .unwrap();
    let now = Utc.timestamp_millis_opt(1_800_000_000_000).unwrap();
    let live = SessionRecord {
        digest: TokenDigest::of("live"),
        user_id: "u1".into(),
        csrf_token: "csrf".into(),
        created_at: now,
        expires_at: now + Duration::hours(1),
    };
    let old = SessionRecord {
        digest: TokenDigest::of("old"),
        expires_at: now - Duration::seconds(1),
        ..live.clone()
    };
    s.insert_session(&live).await.unwrap();
    s.insert_session(&old).await.unwrap();
    assert_eq!(
        s.find_session(&live.digest, now).await.unwrap(),
        Some(live.clone())
    );
    assert_eq!(
        s.find_session(&old.digest, now).await.unwrap(),
        None,
        "expired sessions are not found"
    );
    assert_eq!(s.purge_expired_sessions(now).await.unwrap(), 1);
    s.delete_session(&live.digest).await.unwrap();
    assert_eq!(s.find_session(&live.digest, now).await.unwrap(), None);
    let err = s
        .insert_session(&SessionRecord {
            digest: TokenDigest::of("orphan"),
            user_id: "ghost".into(),
            ..live
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "a session needs an existing user: {err:?}"
    );
}

pub async fn health_reports_schema(s: Arc<dyn StateStore>) {
    s.ping().await.unwrap();
    assert!(s.schema_version().await.unwrap() >= 1);
    assert!(["sqlite", "postgres"].contains(&s.backend()));
}

fn flag(key: &str, version: i64) -> liftoff_core::flags::Flag {
    let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    serde_json::from_value(json!({
        "flag_id": key, "name": key, "description": "", "enabled": true, "strategy": "percentage",
        "percentage": 12.5, "user_whitelist": ["ada"], "user_blacklist": [], "attributes": {"plan": ["pro", "team"]},
        "variants": [{"name": "blue", "weight": 50, "payload": {"color": "#00f"}}],
        "rules": [{"name": "default", "constraints": [{"contextName": "environment", "operator": "IN", "values": ["prod"]}]}],
        "dependencies": [], "environments": {"staging": {"enabled": false}},
        "created_at": at, "updated_at": at, "version": version
    }))
    .unwrap()
}

pub async fn flags_round_trip_with_versions(s: Arc<dyn StateStore>) {
    let r0 = s.flags_revision().await.unwrap();
    let f = flag("checkout", 1);
    s.insert_flag(
        &f,
        &Change::new(&actor(), "flag.create", "flag", "checkout"),
    )
    .await
    .unwrap();
    let err = s
        .insert_flag(
            &f,
            &Change::new(&actor(), "flag.create", "flag", "checkout"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        s.list_flags().await.unwrap(),
        vec![f.clone()],
        "the whole definition comes back"
    );
    let r1 = s.flags_revision().await.unwrap();
    assert!(r1 > r0);

    let mut changed = f.clone();
    changed.percentage = 50.0;
    changed.version = 2;
    let change =
        Change::new(&actor(), "flag.update", "flag", "checkout").reason(Some("ramp".into()));
    assert!(s.update_flag(&changed, 1, &change).await.unwrap());
    assert!(
        !s.update_flag(&changed, 1, &change).await.unwrap(),
        "a stale version writes nothing"
    );
    assert_eq!(s.list_flags().await.unwrap()[0].percentage, 50.0);
    assert!(s.flags_revision().await.unwrap() > r1);

    let audit = s
        .list_audit(&AuditQuery {
            target_type: Some("flag".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        ["flag.update", "flag.create"]
    );

    let plan = liftoff_core::flags::RolloutPlan::new(
        f.flag_id.clone(),
        50.0,
        100.0,
        25.0,
        Some(60),
        Utc::now(),
    );
    s.save_rollout_plan(
        &plan,
        &Change::new(&actor(), "flag.rollout_plan", "flag", "checkout"),
    )
    .await
    .unwrap();
    assert_eq!(s.list_rollout_plans().await.unwrap(), vec![plan]);

    assert!(
        s.delete_flag(
            &f.flag_id,
            &Change::new(&actor(), "flag.delete", "flag", "checkout")
        )
        .await
        .unwrap()
    );
    assert!(
        !s.delete_flag(
            &f.flag_id,
            &Change::new(&actor(), "flag.delete", "flag", "checkout")
        )
        .await
        .unwrap()
    );
    assert!(s.list_flags().await.unwrap().is_empty());
    assert!(
        s.list_rollout_plans().await.unwrap().is_empty(),
        "a deleted flag's plan goes with it"
    );
}

/// One flag by its key: the stored document as written, its latest version after an update,
/// nothing for a key never stored or deleted, and no other flag's document.
pub async fn get_flag_reads_one_flag(s: Arc<dyn StateStore>) {
    let a = flag("checkout", 1);
    let b = flag("checkout-v2", 1);
    for f in [&a, &b] {
        s.insert_flag(
            f,
            &Change::new(&actor(), "flag.create", "flag", f.flag_id.as_str()),
        )
        .await
        .unwrap();
    }
    assert_eq!(s.get_flag(&a.flag_id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_flag(&b.flag_id).await.unwrap(), Some(b.clone()));
    let missing = liftoff_core::flags::FlagKey::try_from("checkout-v".to_owned()).unwrap();
    assert_eq!(s.get_flag(&missing).await.unwrap(), None, "no prefix match");
    // A key that is SQL to a careless query is only a key.
    let quote = liftoff_core::flags::FlagKey::try_from("x'OR'1'='1".to_owned()).unwrap();
    assert_eq!(s.get_flag(&quote).await.unwrap(), None);

    let mut changed = a.clone();
    changed.percentage = 75.0;
    changed.version = 2;
    assert!(
        s.update_flag(
            &changed,
            1,
            &Change::new(&actor(), "flag.update", "flag", "checkout")
        )
        .await
        .unwrap()
    );
    assert_eq!(s.get_flag(&a.flag_id).await.unwrap(), Some(changed));
    assert!(
        s.delete_flag(
            &a.flag_id,
            &Change::new(&actor(), "flag.delete", "flag", "checkout")
        )
        .await
        .unwrap()
    );
    assert_eq!(s.get_flag(&a.flag_id).await.unwrap(), None);
    assert_eq!(s.get_flag(&b.flag_id).await.unwrap(), Some(b));
}

pub async fn flag_evaluations_accumulate(s: Arc<dyn StateStore>) {
    let d1 = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let d2 = chrono::NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
    s.record_flag_evaluations(d1, &[("a".into(), 3), ("b".into(), 1)])
        .await
        .unwrap();
    s.record_flag_evaluations(d1, &[("a".into(), 2)])
        .await
        .unwrap();
    s.record_flag_evaluations(d2, &[("a".into(), 1)])
        .await
        .unwrap();
    let mut last = s.flag_last_evaluated().await.unwrap();
    last.sort();
    assert_eq!(last, vec![("a".to_owned(), d2), ("b".to_owned(), d1)]);
}

pub async fn segments_round_trip(s: Arc<dyn StateStore>) {
    let r0 = s.flags_revision().await.unwrap();
    let seg = liftoff_core::flags::Segment {
        id: 0,
        name: "beta testers".into(),
        description: "people who asked".into(),
        constraints: serde_json::from_value(
            json!([{"contextName": "plan", "operator": "IN", "values": ["beta"]}]),
        )
        .unwrap(),
        updated_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
    };
    let id = s
        .insert_segment(
            &seg,
            &Change::new(&actor(), "segment.create", "segment", "new"),
        )
        .await
        .unwrap();
    let id2 = s
        .insert_segment(
            &liftoff_core::flags::Segment {
                name: "eu".into(),
                ..seg.clone()
            },
            &Change::new(&actor(), "segment.create", "segment", "new"),
        )
        .await
        .unwrap();
    assert_ne!(id, id2);
    let err = s
        .insert_segment(
            &seg,
            &Change::new(&actor(), "segment.create", "segment", "new"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "names are unique: {err:?}"
    );
    let listed = s.list_segments().await.unwrap();
    assert_eq!(
        listed[0],
        liftoff_core::flags::Segment { id, ..seg.clone() }
    );
    assert!(
        s.flags_revision().await.unwrap() > r0,
        "segments change evaluation, so they bump the revision"
    );
    let audit = s
        .list_audit(&AuditQuery {
            target_type: Some("segment".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        audit.last().unwrap().target_id,
        id.to_string(),
        "the audit entry names the new id"
    );

    let renamed = liftoff_core::flags::Segment {
        id,
        name: "beta".into(),
        ..seg.clone()
    };
    assert!(
        s.update_segment(
            &renamed,
            &Change::new(&actor(), "segment.update", "segment", &id.to_string())
        )
        .await
        .unwrap()
    );
    assert!(
        !s.update_segment(
            &liftoff_core::flags::Segment {
                id: 999,
                ..seg.clone()
            },
            &Change::new(&actor(), "segment.update", "segment", "999")
        )
        .await
        .unwrap()
    );
    assert_eq!(s.list_segments().await.unwrap()[0].name, "beta");
    assert!(
        s.delete_segment(
            id,
            &Change::new(&actor(), "segment.delete", "segment", &id.to_string())
        )
        .await
        .unwrap()
    );
    assert!(
        !s.delete_segment(
            id,
            &Change::new(&actor(), "segment.delete", "segment", &id.to_string())
        )
        .await
        .unwrap()
    );
    assert_eq!(s.list_segments().await.unwrap().len(), 1);
}

/// Declares one `#[tokio::test]` per contract case, each on a fresh store from `$open`
/// (an async fn returning `Arc<dyn StateStore>`). Use it once per backend, inside a module named
/// after the backend, so test output reads `sqlite::keys_round_trip`, `postgres::keys_round_trip`.
/// The audit entry of a change made in another store is written on its own.
pub async fn audit_of_a_change_elsewhere_is_recorded(s: Arc<dyn StateStore>) {
    let change = Change::new(&actor(), "person.erase", "person", "gone")
        .after(json!({"events_deleted": 2, "person_deleted": true}));
    s.record_audit(&change).await.unwrap();
    let entries = s
        .list_audit(&AuditQuery {
            target_type: Some("person".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "person.erase");
    assert_eq!(entries[0].target_id, "gone");
    assert_eq!(entries[0].actor, change.actor);
    assert_eq!(entries[0].after, change.after);
}

#[macro_export]
macro_rules! state_store_contract {
    ($open:path) => {
        $crate::state_store_contract!(@cases $open;
            keys_round_trip, revoked_keys_do_not_authenticate, failed_change_writes_no_audit,
            audit_filters_and_pages, users_are_unique, sessions_expire, health_reports_schema,
            flags_round_trip_with_versions, get_flag_reads_one_flag, flag_evaluations_accumulate, segments_round_trip,
            audit_of_a_change_elsewhere_is_recorded);
    };
    (@cases $open:path; $($case:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::contract::$case($open().await).await;
            }
        )+
    };
}

/// Per-variant cells: a second write to the same cell merges into it, a flag's cells come
/// back only for that flag and window, and purging minutes takes them too.
pub async fn variant_cells_round_trip(
    m: std::sync::Arc<dyn liftoff_core::monitoring::MetricsStore>,
) {
    use liftoff_core::monitoring::sketch::DDSketch;
    use liftoff_core::monitoring::variants::{VariantKey, by_variant};
    let key = |flag: &str, variant: &str, minute: i64, failed: bool| VariantKey {
        minute,
        flag: flag.into(),
        variant: variant.into(),
        failed,
    };
    let sketch = |values: &[f64]| {
        let mut s = DDSketch::default();
        for v in values {
            s.add(*v);
        }
        s
    };
    let base = 20_000 * 1440;
    m.merge_variant_minutes(&[
        (key("search", "on", base, false), sketch(&[10.0, 20.0])),
        (key("search", "on", base, true), sketch(&[90.0])),
        (key("search", "off", base + 1, false), sketch(&[15.0])),
        (key("other", "on", base, false), sketch(&[1.0])),
    ])
    .await
    .unwrap();
    m.merge_variant_minutes(&[(key("search", "on", base, false), sketch(&[30.0]))])
        .await
        .unwrap();
    let cells = m.variant_minutes("search", base, base + 60).await.unwrap();
    assert!(cells.iter().all(|(k, _)| k.flag == "search"));
    let t = by_variant(cells).unwrap();
    assert_eq!(
        (t["on"].requests, t["on"].failed),
        (4, 1),
        "the second write merged"
    );
    assert_eq!(t["on"].latency.max(), Some(90.0));
    assert_eq!((t["off"].requests, t["off"].failed), (1, 0));
    assert!(
        m.variant_minutes("search", base + 2, base + 60)
            .await
            .unwrap()
            .is_empty()
    );
    m.purge_requests(1, base + 1).await.unwrap();
    let left = m.variant_minutes("search", base, base + 60).await.unwrap();
    assert_eq!(left.len(), 1, "minutes before the cut are purged");
    assert_eq!(left[0].0.variant, "off");
}

/// Resource hours: a second write of the same hour adds its sums and keeps the higher peak, a
/// window returns only its hours, purging drops hours before the cut.
pub async fn resource_hours_round_trip(
    m: std::sync::Arc<dyn liftoff_core::monitoring::MetricsStore>,
) {
    use liftoff_core::monitoring::resources::{ResourceHour, histories};
    let hour = |instance: &str, hour: i64, cpu: f64, memory_total_mb: f64| ResourceHour {
        service: "web".into(),
        instance: instance.into(),
        hour,
        samples: 2,
        cpu_sum: cpu * 2.0,
        cpu_max: cpu + 5.0,
        memory_sum: 100.0,
        memory_max: 60.0,
        disk_sum: 20.0,
        disk_max: 10.0,
        cpu_count: 2.0,
        memory_total_mb,
        disk_total_gb: 50.0,
    };
    let base = 490_000;
    m.merge_resource_hours(&[
        hour("a", base, 10.0, 1024.0),
        hour("a", base + 1, 20.0, 1024.0),
        hour("b", base, 50.0, 1024.0),
    ])
    .await
    .unwrap();
    // The same hour again, as another flush or replica writes it.
    m.merge_resource_hours(&[hour("a", base, 30.0, 2048.0)])
        .await
        .unwrap();
    let mut rows = m.resource_hours(base, base + 2).await.unwrap();
    rows.sort_by(|x, y| (&x.instance, x.hour).cmp(&(&y.instance, y.hour)));
    assert_eq!(rows.len(), 3);
    let a0 = &rows[0];
    assert_eq!((a0.samples, a0.cpu_sum, a0.cpu_max), (4, 80.0, 35.0));
    assert_eq!(a0.memory_total_mb, 2048.0, "capacity as last read");
    let h = histories(rows);
    assert_eq!(h[0].hours[0].cpu_percent, 20.0);
    assert_eq!(m.resource_hours(base + 1, base + 2).await.unwrap().len(), 1);
    assert_eq!(m.purge_resource_hours(base + 1).await.unwrap(), 2);
    let left = m.resource_hours(0, i64::MAX).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].hour, base + 1);
}

/// The request-metrics store: merging minutes, reading any window, compacting to hours and
/// days without losing or double-counting a request, purging.
pub async fn metrics_round_trip(m: std::sync::Arc<dyn liftoff_core::monitoring::MetricsStore>) {
    use liftoff_core::monitoring::requests::CellKey;
    use liftoff_core::monitoring::sketch::DDSketch;
    let key = |minute: i64, status: u16| CellKey {
        minute,
        service: "web".into(),
        method: "GET".into(),
        route: "/a".into(),
        status,
    };
    let sketch = |values: &[f64]| {
        let mut s = DDSketch::default();
        for v in values {
            s.add(*v);
        }
        s
    };
    let base = 20_000 * 1440; // the first minute of a UTC day
    m.merge_request_minutes(&[
        (key(base, 200), sketch(&[10.0, 20.0])),
        (key(base + 61, 500), sketch(&[100.0])),
    ])
    .await
    .unwrap();
    m.merge_request_minutes(&[(key(base, 200), sketch(&[30.0]))])
        .await
        .unwrap();
    let cells = m.request_minutes(base, base + 1440).await.unwrap();
    let total: u64 = cells.iter().map(|(_, s)| s.count()).sum();
    assert_eq!(total, 4);
    let first = cells.iter().find(|(k, _)| k.minute == base).unwrap();
    assert_eq!(first.1.count(), 3, "the second write merged into the first");
    assert_eq!(first.1.max(), Some(30.0));
    assert!(
        m.request_minutes(base + 1, base + 61)
            .await
            .unwrap()
            .is_empty(),
        "windows are half-open"
    );
    assert_eq!(
        m.request_routes().await.unwrap(),
        vec![("web".to_owned(), "/a".to_owned())]
    );

    // Minutes → hours: both minutes of hour 0 and the one of hour 1 move; totals stay.
    assert_eq!(
        m.compact_requests(1, 60, base + 1440, 10_000)
            .await
            .unwrap(),
        2
    );
    let cells = m.request_minutes(base, base + 1440).await.unwrap();
    assert_eq!(
        cells.iter().map(|(_, s)| s.count()).sum::<u64>(),
        4,
        "nothing lost or counted twice"
    );
    assert!(
        cells
            .iter()
            .any(|(k, _)| k.minute == base + 60 && k.status == 500),
        "keyed by the hour's first minute"
    );
    assert_eq!(
        m.compact_requests(1, 60, base + 1440, 10_000)
            .await
            .unwrap(),
        0,
        "already moved"
    );
    // Hours → days.
    assert_eq!(
        m.compact_requests(60, 1440, base + 1440, 10_000)
            .await
            .unwrap(),
        2
    );
    let cells = m.request_minutes(base, base + 1440).await.unwrap();
    assert_eq!(cells.len(), 2, "one day row per status");
    assert_eq!(cells.iter().map(|(_, s)| s.count()).sum::<u64>(), 4);
    assert_eq!(m.purge_requests(1440, base + 1440).await.unwrap(), 2);
    assert!(
        m.request_minutes(base, base + 1440)
            .await
            .unwrap()
            .is_empty()
    );

    // Totals cells are kept apart from endpoint cells, at every resolution.
    let day = base + 1440;
    let mut cells = std::collections::BTreeMap::new();
    cells.insert(key(day, 200), sketch(&[5.0, 6.0]));
    cells.insert(
        CellKey {
            route: "/b".into(),
            ..key(day + 1, 503)
        },
        sketch(&[700.0]),
    );
    // The same endpoint in another service stays its own endpoint.
    cells.insert(
        CellKey {
            service: "api".into(),
            ..key(day, 200)
        },
        sketch(&[9.0]),
    );
    liftoff_core::monitoring::requests::add_totals(&mut cells).unwrap();
    m.merge_request_minutes(&cells.into_iter().collect::<Vec<_>>())
        .await
        .unwrap();
    for compacted in [false, true] {
        if compacted {
            m.compact_requests(1, 60, day + 1440, 10_000).await.unwrap();
        }
        let endpoints = m.request_minutes(day, day + 1440).await.unwrap();
        assert_eq!(endpoints.len(), 3, "compacted: {compacted}");
        assert!(endpoints.iter().all(|(k, _)| !k.method.is_empty()));
        let totals = m.request_totals(day, day + 1440).await.unwrap();
        assert!(
            totals
                .iter()
                .all(|(k, _)| k.method.is_empty() && k.route.is_empty())
        );
        assert_eq!(totals.iter().map(|(_, s)| s.count()).sum::<u64>(), 4);
        let mut seen = m.request_endpoints(day, day + 1440).await.unwrap();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                liftoff_core::monitoring::SeenEndpoint {
                    service: "api".into(),
                    method: "GET".into(),
                    route: "/a".into(),
                    failed: false
                },
                liftoff_core::monitoring::SeenEndpoint {
                    service: "web".into(),
                    method: "GET".into(),
                    route: "/a".into(),
                    failed: false
                },
                liftoff_core::monitoring::SeenEndpoint {
                    service: "web".into(),
                    method: "GET".into(),
                    route: "/b".into(),
                    failed: true
                },
            ]
        );
    }
    assert_eq!(
        m.request_routes().await.unwrap().len(),
        0,
        "routes come from minute cells only, and those were compacted"
    );
}

/// The operations store: cells merge across writes and compact without losing a run, error
/// rows are capped per (operation, error type, minute) across writes, users are distinct per
/// hour and remember a success, and everything old is purged.
pub async fn operations_round_trip(
    o: std::sync::Arc<dyn liftoff_core::monitoring::operations::OperationStore>,
) {
    use chrono::TimeZone;
    use liftoff_core::monitoring::operations::{
        ERRORS_PER_MINUTE, OpCell, OpKey, OperationError, OperationUser, OperationWrite,
    };
    let base: i64 = 20_000 * 1440; // the first minute of a UTC day
    let at = |minute: i64, second: i64| {
        chrono::Utc
            .timestamp_opt(minute * 60 + second, 0)
            .single()
            .unwrap()
    };
    let key = |minute: i64, op: &str| OpKey {
        minute,
        service: "app".into(),
        operation: op.into(),
    };
    let cell = |values: &[f64], failures: u64, layer: &str, hits: u64, known: u64| {
        let mut c = OpCell {
            count: values.len() as u64,
            failures,
            cache_hits: hits,
            cache_known: known,
            ..Default::default()
        };
        for v in values {
            c.sketch.add(*v);
        }
        c.layers.insert(layer.into(), values.len() as u64);
        if failures > 0 {
            c.error_types.insert("Timeout".into(), failures);
        }
        c
    };
    let error = |minute: i64, second: i64, n: usize| OperationError {
        service: "app".into(),
        operation: "gen".into(),
        error_type: "Timeout".into(),
        error: Some(format!("timed out #{n}")),
        stack_trace: Some("at gen()\nat main()".into()),
        context: Some(serde_json::json!({"n": n})),
        user_id: Some("u1".into()),
        at: at(minute, second),
    };
    let user = |hour: i64, hash: i64, ok: bool| OperationUser {
        service: "app".into(),
        operation: "gen".into(),
        hour,
        user_hash: hash,
        ok,
    };
    let hour = base / 60;
    let first = OperationWrite {
        cells: vec![
            (key(base, "gen"), cell(&[10.0, 20.0], 1, "cache", 1, 2)),
            (key(base + 61, "gen"), cell(&[100.0], 0, "primary", 0, 0)),
        ],
        errors: (0..15).map(|n| error(base, 1, n)).collect(),
        users: vec![user(hour, 1, false), user(hour, 2, true)],
    };
    assert_eq!(o.write_operations(&first).await.unwrap(), 0);
    let second = OperationWrite {
        cells: vec![(key(base, "gen"), cell(&[30.0], 1, "fallback", 0, 1))],
        errors: (15..25).map(|n| error(base, 2, n)).collect(),
        users: vec![user(hour, 1, true), user(hour + 1, 1, false)],
    };
    assert_eq!(
        o.write_operations(&second).await.unwrap(),
        25 - ERRORS_PER_MINUTE as u64,
        "the cap counts rows already stored"
    );
    let cells = o.operation_cells(base, base + 1440).await.unwrap();
    assert_eq!(cells.len(), 2);
    let c = &cells.iter().find(|(k, _)| k.minute == base).unwrap().1;
    assert_eq!(
        (c.count, c.failures, c.cache_hits, c.cache_known),
        (3, 2, 1, 3)
    );
    assert_eq!(c.sketch.count(), 3);
    assert_eq!(c.sketch.max(), Some(30.0));
    assert_eq!(c.layers.get("cache"), Some(&2));
    assert_eq!(c.layers.get("fallback"), Some(&1));
    assert_eq!(c.error_types.get("Timeout"), Some(&2));
    assert!(
        o.operation_cells(base + 1, base + 61)
            .await
            .unwrap()
            .is_empty(),
        "windows are half-open"
    );
    assert_eq!(
        o.operation_names().await.unwrap(),
        vec![("app".to_owned(), "gen".to_owned())]
    );

    let errors = o
        .operation_errors(at(base, 0), at(base + 1, 0), Some("gen"), 100)
        .await
        .unwrap();
    assert_eq!(errors.len(), ERRORS_PER_MINUTE);
    assert_eq!(errors[0].at, at(base, 2), "newest first");
    assert_eq!(errors[0].error.as_deref(), Some("timed out #19"));
    assert_eq!(errors[0].context, Some(serde_json::json!({"n": 19})));
    assert_eq!(
        errors[0].stack_trace.as_deref(),
        Some("at gen()\nat main()")
    );
    assert_eq!(errors[0].user_id.as_deref(), Some("u1"));
    assert_eq!(
        o.operation_errors(at(base, 0), at(base + 1, 0), None, 3)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        o.operation_errors(at(base, 0), at(base + 1, 0), Some("other"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let users = o.operation_users(hour, hour + 1, None).await.unwrap();
    assert_eq!(
        users.per_operation.get("gen"),
        Some(&(2, 2)),
        "u1 succeeded later"
    );
    assert_eq!(users.total, 2);
    let users = o.operation_users(hour, hour + 2, None).await.unwrap();
    assert_eq!(
        users.per_operation.get("gen"),
        Some(&(2, 2)),
        "distinct over hours"
    );
    assert_eq!(
        o.operation_users(hour + 1, hour + 2, None)
            .await
            .unwrap()
            .per_operation
            .get("gen"),
        Some(&(1, 0))
    );
    assert_eq!(
        o.operation_users(hour, hour + 2, Some("elsewhere"))
            .await
            .unwrap(),
        Default::default()
    );

    // Minutes → hours → days: totals stay.
    assert_eq!(
        o.compact_operations(1, 60, base + 1440, 10_000)
            .await
            .unwrap(),
        2
    );
    let cells = o.operation_cells(base, base + 1440).await.unwrap();
    assert_eq!(cells.iter().map(|(_, c)| c.count).sum::<u64>(), 4);
    assert!(
        cells.iter().any(|(k, _)| k.minute == base + 60),
        "keyed by the hour's first minute"
    );
    assert_eq!(
        o.compact_operations(1, 60, base + 1440, 10_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        o.compact_operations(60, 1440, base + 1440, 10_000)
            .await
            .unwrap(),
        2
    );
    let cells = o.operation_cells(base, base + 1440).await.unwrap();
    assert_eq!(cells.len(), 1, "one day row");
    let day = &cells[0].1;
    assert_eq!(
        (day.count, day.failures, day.cache_hits, day.cache_known),
        (4, 2, 1, 3)
    );
    assert_eq!(day.layers.get("primary"), Some(&1));
    assert_eq!(day.sketch.count(), 4);
    assert_eq!(o.purge_operations(1440, base + 1440).await.unwrap(), 1);
    assert!(
        o.operation_cells(base, base + 1440)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        o.purge_operation_details(at(base + 1, 0), hour + 1)
            .await
            .unwrap(),
        ERRORS_PER_MINUTE as u64 + 2,
        "the minute's error rows and the first hour's two users"
    );
    assert_eq!(
        o.operation_users(hour, hour + 2, None).await.unwrap().total,
        1
    );
}

/// The error-row cap counts per (operation, error type, minute): another error type or the
/// next minute has room of its own, and rows dropped are only counted.
pub async fn operation_error_cap_is_per_slot(
    o: std::sync::Arc<dyn liftoff_core::monitoring::operations::OperationStore>,
) {
    use chrono::TimeZone;
    use liftoff_core::monitoring::operations::{ERRORS_PER_MINUTE, OperationError, OperationWrite};
    let base: i64 = 20_000 * 1440;
    let at = |minute: i64| {
        chrono::Utc
            .timestamp_opt(minute * 60 + 5, 0)
            .single()
            .unwrap()
    };
    let error = |minute: i64, kind: &str| OperationError {
        service: "app".into(),
        operation: "gen".into(),
        error_type: kind.into(),
        error: None,
        stack_trace: None,
        context: None,
        user_id: None,
        at: at(minute),
    };
    let over = ERRORS_PER_MINUTE + 5;
    let mut errors = Vec::new();
    for (minute, kind) in [(base, "Timeout"), (base, "Refused"), (base + 1, "Timeout")] {
        errors.extend((0..over).map(|_| error(minute, kind)));
    }
    let write = OperationWrite {
        errors,
        ..Default::default()
    };
    assert_eq!(o.write_operations(&write).await.unwrap(), 15);
    let kept = o
        .operation_errors(at(base - 1), at(base + 2), None, 1_000)
        .await
        .unwrap();
    assert_eq!(kept.len(), 3 * ERRORS_PER_MINUTE);
    for kind in ["Timeout", "Refused"] {
        let n = kept
            .iter()
            .filter(|e| e.error_type == kind && e.at == at(base))
            .count();
        assert_eq!(n, ERRORS_PER_MINUTE, "{kind}");
    }
    // A full slot drops every row of a later write.
    assert_eq!(
        o.write_operations(&OperationWrite {
            errors: vec![error(base, "Refused")],
            ..Default::default()
        })
        .await
        .unwrap(),
        1
    );
}
