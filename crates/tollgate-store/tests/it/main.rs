//! Repository tests, run against SQLite and (when reachable, always under CI) PostgreSQL.

use time::OffsetDateTime;
use tollgate_core::model::*;
use tollgate_core::roles::Role;
use tollgate_core::*;
use tollgate_store::testing::{drop_pg_database, each_backend, fresh_pg_database};
use tollgate_store::*;

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}

fn org(slug: &str) -> Org {
    let t = now();
    Org {
        id: OrgId::new(),
        slug: slug.into(),
        name: slug.into(),
        kind: OrgKind::Both,
        created_at: t,
        updated_at: t,
        revision: 1,
    }
}

fn api(org: OrgId, slug: &str, base: &str) -> Api {
    let t = now();
    Api {
        id: ApiId::new(),
        org_id: org,
        slug: slug.into(),
        name: "Weather".into(),
        version: "v1".into(),
        description: String::new(),
        base_path: base.into(),
        hosts: vec![],
        upstreams: vec!["http://127.0.0.1:9".into()],
        sandbox_upstreams: vec!["http://sandbox.example:8080".into()],
        mtls: tollgate_core::model::MtlsMode::Required,
        public: true,
        status: ApiStatus::Draft,
        sunset: None,
        openapi: None,
        created_at: t,
        updated_at: t,
        revision: 1,
    }
}

fn audit(action: &str) -> NewAudit {
    NewAudit {
        at: now(),
        actor: Actor {
            user_id: UserId::new(),
            email: "op@example.com".into(),
        },
        org_id: None,
        action: action.into(),
        target_type: "org".into(),
        target_id: "x".into(),
        request_id: "req".into(),
        before_sha256: None,
        after_sha256: Some("ab".into()),
    }
}

#[tokio::test]
async fn migrations_produce_the_same_schema_on_both_backends() {
    let backends = each_backend().await;
    if backends.len() < 2 {
        return; // PostgreSQL absent outside CI (the harness already warned).
    }
    let a = backends[0].0.describe_schema().await.unwrap();
    let b = backends[1].0.describe_schema().await.unwrap();
    assert!(a.len() > 50, "schema looks empty: {a:?}");
    let only_a: Vec<_> = a.iter().filter(|r| !b.contains(r)).collect();
    let only_b: Vec<_> = b.iter().filter(|r| !a.contains(r)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "sqlite only: {only_a:#?}\npostgres only: {only_b:#?}"
    );
    for (s, db) in backends {
        s.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn catalog_round_trips_on_every_backend() {
    for (store, db) in each_backend().await {
        let backend = store.backend();
        let o = org("acme");
        let mut tx = store.write().await.unwrap();
        tx.insert_org(&o).await.unwrap();
        let mut a = api(o.id, "weather", "/weather/v1");
        a.openapi = Some(OpenApiInfo {
            openapi: "3.1.0".into(),
            title: "W".into(),
            version: "1".into(),
            sha256: "00".into(),
            operation_count: 1,
        });
        tx.insert_api(&a, Some(&serde_json::json!({"openapi": "3.1.0"})))
            .await
            .unwrap();
        let ops = vec![Operation {
            api_id: a.id,
            operation_id: "getForecast".into(),
            method: "GET".into(),
            path: "/forecast/{city}".into(),
            summary: "Forecast".into(),
            deprecated: false,
        }];
        tx.replace_openapi(a.id, &serde_json::json!({"openapi": "3.1.0"}), &ops)
            .await
            .unwrap();
        let p = Plan {
            id: PlanId::new(),
            org_id: o.id,
            slug: "free".into(),
            name: "Free".into(),
            description: String::new(),
            visibility: Visibility::Public,
            approval_required: false,
            status: PlanStatus::Published,
            apis: vec![PlanApi {
                api_id: a.id,
                operations: Some(vec!["getForecast".into()]),
            }],
            terms_id: None,
            max_key_lifetime_days: Some(90),
            created_at: now(),
            updated_at: now(),
            revision: 1,
        };
        tx.insert_plan(&p).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.get_org(o.id).await.unwrap().as_ref(),
            Some(&o),
            "{backend:?}"
        );
        assert_eq!(
            tx.get_org_by_slug("acme").await.unwrap().map(|o| o.id),
            Some(o.id)
        );
        assert_eq!(
            tx.get_api(a.id).await.unwrap().as_ref(),
            Some(&a),
            "{backend:?}"
        );
        assert_eq!(tx.list_operations(a.id).await.unwrap(), ops);
        assert_eq!(
            tx.get_plan(p.id).await.unwrap().as_ref(),
            Some(&p),
            "{backend:?}"
        );
        // A draft API of another org is invisible; a published one is in the catalog.
        let stranger = Scope::Orgs(vec![OrgId::new()]);
        assert!(
            tx.list_apis(
                &stranger,
                &ApiFilter::default(),
                &PageParams {
                    after: None,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .items
            .is_empty()
        );
        assert_eq!(
            tx.list_plans(
                &stranger,
                &PlanFilter::default(),
                &PageParams {
                    after: None,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .items
            .len(),
            1
        );
        drop(tx);

        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn duplicates_and_stale_writes_are_refused() {
    for (store, db) in each_backend().await {
        let o = org("dup");
        let mut tx = store.write().await.unwrap();
        tx.insert_org(&o).await.unwrap();
        let err = tx.insert_org(&org("dup")).await.unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
        drop(tx); // rolled back: nothing survives
        let mut tx = store.write().await.unwrap();
        assert!(
            tx.get_org(o.id).await.unwrap().is_none(),
            "a dropped transaction leaves nothing behind"
        );
        tx.insert_org(&o).await.unwrap();
        let mut changed = o.clone();
        changed.name = "New".into();
        changed.revision = 2;
        tx.update_org(&changed, 1).await.unwrap();
        let mut stale = o.clone();
        stale.name = "Stale".into();
        stale.revision = 2;
        assert!(matches!(
            tx.update_org(&stale, 1).await,
            Err(StoreError::Stale)
        ));
        tx.commit().await.unwrap();
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn pagination_walks_every_item_once() {
    for (store, db) in each_backend().await {
        let mut tx = store.write().await.unwrap();
        let mut ids = Vec::new();
        for i in 0..7 {
            let o = org(&format!("org-{i}"));
            ids.push(o.id);
            tx.insert_org(&o).await.unwrap();
        }
        tx.commit().await.unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        let mut tx = store.read().await.unwrap();
        loop {
            let page = tx
                .list_orgs(
                    &Scope::All,
                    &PageParams {
                        after: after.clone(),
                        limit: 3,
                    },
                )
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|o| o.id));
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        let mine = tx
            .list_orgs(
                &Scope::Orgs(vec![ids[2], ids[5]]),
                &PageParams {
                    after: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            mine.items.iter().map(|o| o.id).collect::<Vec<_>>(),
            [ids[2], ids[5]]
        );
        drop(tx);
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn audit_log_is_a_chain_and_append_only() {
    for (store, db) in each_backend().await {
        let mut tx = store.write().await.unwrap();
        for a in ["org.create", "api.create", "api.update"] {
            tx.append_audit(audit(a)).await.unwrap();
        }
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let page = tx.list_audit(&Scope::All, None, None, 100).await.unwrap();
        assert_eq!(
            page.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        verify_audit_chain(&page.items, AUDIT_GENESIS_HASH).unwrap();
        assert_eq!(
            tx.audit_head().await.unwrap(),
            (3, page.items[2].hash.clone())
        );
        drop(tx);
        // The database refuses edits and deletions of audit entries.
        let mut tx = store.write().await.unwrap();
        let edit = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE audit_log SET action = 'x' WHERE seq = 1"
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
        assert!(edit.is_err(), "update of audit_log must fail");
        drop(tx);
        let mut tx = store.write().await.unwrap();
        let del = on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM audit_log WHERE seq = 2"
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
        assert!(del.is_err(), "delete from audit_log must fail");
        drop(tx);
        store.close().await;
        db.cleanup().await;
    }
}

use tollgate_core::model::{AUDIT_GENESIS as AUDIT_GENESIS_HASH, verify_audit_chain};

#[tokio::test]
async fn idempotency_keys_are_claimed_once() {
    for (store, db) in each_backend().await {
        let mut tx = store.write().await.unwrap();
        tx.claim_idempotency("u1", "k1", "POST", "/v1/orgs", "h", now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.write().await.unwrap();
        assert!(matches!(
            tx.claim_idempotency("u1", "k1", "POST", "/v1/orgs", "h", now())
                .await,
            Err(StoreError::Duplicate(_))
        ));
        drop(tx);
        let mut tx = store.write().await.unwrap();
        tx.complete_idempotency("u1", "k1", 201, &[("etag".into(), "\"1\"".into())], "{}")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let r = tx.get_idempotency("u1", "k1").await.unwrap().unwrap();
        assert_eq!(r.status_code, Some(201));
        assert_eq!(r.response_body.as_deref(), Some("{}"));
        assert!(
            tx.get_idempotency("u2", "k1").await.unwrap().is_none(),
            "keys are per principal"
        );
        drop(tx);
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn members_and_tokens() {
    for (store, db) in each_backend().await {
        let o = org("team");
        let u = User {
            id: UserId::new(),
            email: "dev@example.com".into(),
            name: "Dev".into(),
            marketplace_role: None,
            created_at: now(),
        };
        let mut tx = store.write().await.unwrap();
        tx.insert_org(&o).await.unwrap();
        tx.insert_user(&u).await.unwrap();
        let m = Member {
            org_id: o.id,
            user_id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            role: Role::Owner,
            created_at: now(),
            revision: 1,
        };
        tx.insert_member(&m).await.unwrap();
        let t = Token {
            id: TokenId::new(),
            user_id: u.id,
            name: "laptop".into(),
            prefix: "tgp_abc".into(),
            created_at: now(),
            expires_at: now() + time::Duration::days(1),
            revoked_at: None,
        };
        tx.insert_token(&t, "hash-1").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.memberships(u.id).await.unwrap(), [(o.id, Role::Owner)]);
        assert_eq!(tx.get_member(o.id, u.id).await.unwrap(), Some(m));
        assert_eq!(tx.owner_count(o.id).await.unwrap(), 1);
        let (found, user) = tx.find_token("hash-1").await.unwrap().unwrap();
        assert_eq!((found, user), (t, u));
        assert!(tx.find_token("hash-2").await.unwrap().is_none());
        drop(tx);
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn pg_harness_makes_and_drops_databases() {
    if let Some(url) = fresh_pg_database().await {
        let s = Store::connect(&url).await.unwrap();
        s.migrate().await.unwrap();
        s.migrate().await.unwrap(); // idempotent
        s.ping().await.unwrap();
        s.close().await;
        drop_pg_database(&url).await;
        assert!(
            Store::connect(&url).await.is_err(),
            "database should be gone"
        );
    }
}

#[tokio::test]
async fn usage_index_finds_events_deduplicates_and_rebuilds() {
    for (store, db) in each_backend().await {
        let t = now();
        let row = |i: u64, source: &str, id: &str, sub: &str, at: OffsetDateTime| UsageIndexRow {
            log: "live".into(),
            leaf_index: i,
            source: source.into(),
            event_id: id.into(),
            subscription_id: sub.into(),
            consumer_org_id: "c".into(),
            provider_org_id: "p".into(),
            event_time: at,
        };
        let mut tx = store.write().await.unwrap();
        let rows: Vec<_> = (0..1200)
            .map(|i| {
                row(
                    i,
                    "/gw",
                    &format!("e{i}"),
                    if i % 2 == 0 { "s1" } else { "s2" },
                    t + time::Duration::seconds(i as i64),
                )
            })
            .collect();
        assert_eq!(tx.insert_usage_index(&rows).await.unwrap(), 1200);
        // The same entries again, or another entry with a known (source, id): ignored.
        assert_eq!(tx.insert_usage_index(&rows[..10]).await.unwrap(), 0);
        assert_eq!(
            tx.insert_usage_index(&[row(5000, "/gw", "e1", "s1", t)])
                .await
                .unwrap(),
            0
        );
        // Same id from another source is another event.
        assert_eq!(
            tx.insert_usage_index(&[row(1200, "/providers/x", "e1", "s1", t)])
                .await
                .unwrap(),
            1
        );
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.usage_event_location("/gw", "e7").await.unwrap(),
            Some(("live".into(), 7))
        );
        assert_eq!(tx.usage_event_location("/gw", "nope").await.unwrap(), None);
        assert_eq!(tx.usage_event_index("live", "e1").await.unwrap(), Some(1));
        let keys: Vec<(String, String)> = (1195..1205)
            .map(|i| ("/gw".to_owned(), format!("e{i}")))
            .collect();
        let known = tx.usage_events_known(&keys).await.unwrap();
        assert_eq!(known.len(), 5, "{known:?}");
        let s1 = tx
            .usage_leaf_indexes(
                "live",
                "s1",
                t + time::Duration::seconds(10),
                t + time::Duration::seconds(20),
            )
            .await
            .unwrap();
        assert_eq!(s1, vec![10, 12, 14, 16, 18]);
        drop(tx);
        let mut tx = store.write().await.unwrap();
        tx.clear_usage_index("live").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.usage_event_location("/gw", "e7").await.unwrap(), None);
        drop(tx);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn usage_aggregates_merge_and_count_unique_values() {
    for (store, db) in each_backend().await {
        let start = now().replace_time(time::Time::MIDNIGHT);
        let key = |meter: &str| AggregateKey {
            subscription_id: "s1".into(),
            log: "live".into(),
            period: "day".into(),
            period_start: start,
            operation_id: "op".into(),
            meter: meter.into(),
        };
        let add = |stored: Option<Aggregate>, d: &Aggregate| match stored {
            None => d.clone(),
            Some(s) => Aggregate {
                count: s.count + d.count,
                ..d.clone()
            },
        };
        let delta = Aggregate {
            key: key("calls"),
            count: 2,
            sum: Some("2".into()),
            max: Some("1".into()),
            unique: 0,
        };
        let mut tx = store.write().await.unwrap();
        tx.merge_usage_aggregate(&delta, add).await.unwrap();
        tx.merge_usage_aggregate(&delta, add).await.unwrap();
        let values = [
            (key("field:currency"), "eur".to_owned()),
            (key("field:currency"), "usd".to_owned()),
            (key("field:currency"), "eur".to_owned()),
        ];
        tx.add_usage_unique(&values).await.unwrap();
        tx.merge_usage_aggregate(
            &Aggregate {
                key: key("field:currency"),
                count: 3,
                sum: None,
                max: None,
                unique: 0,
            },
            add,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let got = tx
            .usage_aggregates("s1", "live", "day", start, start + time::Duration::days(1))
            .await
            .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].key.meter.as_str(), got[0].count), ("calls", 4));
        assert_eq!(
            (got[1].key.meter.as_str(), got[1].unique),
            ("field:currency", 2)
        );
        assert!(
            tx.usage_aggregates(
                "s1",
                "live",
                "day",
                start + time::Duration::days(1),
                start + time::Duration::days(2)
            )
            .await
            .unwrap()
            .is_empty()
        );
        drop(tx);
        db.cleanup().await;
    }
}
