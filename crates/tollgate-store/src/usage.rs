//! The usage ledger's lookup index (`usage_index`): event id → log entry, and the
//! entries of a subscription by time. Derived from the ledger's segment files, which stay
//! the source of truth; the server fills it in batches off the append path.

use std::collections::HashSet;

use sqlx::FromRow;
use time::OffsetDateTime;

use crate::{Result, Tx, on_tx};

/// One indexed ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIndexRow {
    /// `live` or `test`.
    pub log: String,
    pub leaf_index: u64,
    /// CloudEvents `source`; with `event_id` the idempotency key.
    pub source: String,
    pub event_id: String,
    pub subscription_id: String,
    pub consumer_org_id: String,
    pub provider_org_id: String,
    pub event_time: OffsetDateTime,
}

/// The key of one usage aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggregateKey {
    pub subscription_id: String,
    /// `live` or `test`.
    pub log: String,
    /// `day` or `month` (UTC).
    pub period: String,
    pub period_start: OffsetDateTime,
    pub operation_id: String,
    /// `calls`, `request_bytes`, `response_bytes`, `latency_us`, or `field:<name>`.
    pub meter: String,
}

/// One usage aggregate: count, sum and max of the meter's values (decimal strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub key: AggregateKey,
    pub count: u64,
    pub sum: Option<String>,
    pub max: Option<String>,
    /// Distinct values seen (filled by [`Tx::usage_aggregates`]).
    pub unique: u64,
}

#[derive(FromRow)]
struct AggregateRow {
    subscription_id: String,
    log: String,
    period: String,
    period_start: OffsetDateTime,
    operation_id: String,
    meter: String,
    count: i64,
    sum: Option<String>,
    max: Option<String>,
    unique_count: i64,
}

#[derive(FromRow)]
struct Located {
    log: String,
    leaf_index: i64,
}

/// Most rows one multi-row insert carries (8 columns each, under SQLite's 32 766 bound
/// parameters).
const INSERT_CHUNK: usize = 500;

impl Tx {
    /// Adds entries to the index; an entry already indexed (same log and index, or same
    /// source and event id) is left as it is. Returns how many rows were added.
    pub async fn insert_usage_index(&mut self, rows: &[UsageIndexRow]) -> Result<u64> {
        let mut added = 0;
        for chunk in rows.chunks(INSERT_CHUNK) {
            added += on_tx!(self, |c| {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_index (log, leaf_index, source, event_id, subscription_id, consumer_org_id, provider_org_id, event_time) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.log.clone())
                        .push_bind(i64::try_from(r.leaf_index).unwrap_or(i64::MAX))
                        .push_bind(r.source.clone())
                        .push_bind(r.event_id.clone())
                        .push_bind(r.subscription_id.clone())
                        .push_bind(r.consumer_org_id.clone())
                        .push_bind(r.provider_org_id.clone())
                        .push_bind(r.event_time);
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build()
                    .persistent(false)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }
        Ok(added)
    }

    /// Where the event (`source`, `event_id`) is: its log and leaf index.
    pub async fn usage_event_location(
        &mut self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<(String, u64)>> {
        let row: Option<Located> = on_tx!(self, |c| sqlx::query_as(
            "SELECT log, leaf_index FROM usage_index WHERE source = $1 AND event_id = $2"
        )
        .bind(source)
        .bind(event_id)
        .fetch_optional(c)
        .await?);
        Ok(row.map(|r| (r.log, u64::try_from(r.leaf_index).unwrap_or(0))))
    }

    /// The leaf index of event `event_id` in `log`, whatever its source.
    pub async fn usage_event_index(&mut self, log: &str, event_id: &str) -> Result<Option<u64>> {
        let row: Option<Located> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT log, leaf_index FROM usage_index WHERE log = $1 AND event_id = $2 ORDER BY leaf_index LIMIT 1"
        )
        .bind(log)
        .bind(event_id)
        .fetch_optional(c)
        .await?
        });
        Ok(row.map(|r| u64::try_from(r.leaf_index).unwrap_or(0)))
    }

    /// Which of the (source, event id) pairs are indexed already.
    pub async fn usage_events_known(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<HashSet<(String, String)>> {
        let mut known = HashSet::new();
        for chunk in keys.chunks(INSERT_CHUNK) {
            let rows: Vec<(String, String)> = on_tx!(self, |c| {
                let mut qb =
                    sqlx::QueryBuilder::new("SELECT source, event_id FROM usage_index WHERE ");
                let mut sep = qb.separated(" OR ");
                for (source, id) in chunk {
                    sep.push("(source = ")
                        .push_bind_unseparated(source.clone())
                        .push_unseparated(" AND event_id = ")
                        .push_bind_unseparated(id.clone())
                        .push_unseparated(")");
                }
                qb.build_query_as().persistent(false).fetch_all(c).await?
            });
            known.extend(rows);
        }
        Ok(known)
    }

    /// The smallest leaf index in `log` of an event at or after `since` (`None` when
    /// every indexed event is older): entries below it are all older than `since`.
    pub async fn usage_first_index_since(
        &mut self,
        log: &str,
        since: OffsetDateTime,
    ) -> Result<Option<u64>> {
        let row: (Option<i64>,) = on_tx!(self, |c| sqlx::query_as(
            "SELECT MIN(leaf_index) FROM usage_index WHERE log = $1 AND event_time >= $2"
        )
        .bind(log)
        .bind(since)
        .fetch_one(c)
        .await?);
        Ok(row.0.map(|i| u64::try_from(i).unwrap_or(0)))
    }

    /// Leaf indexes of a subscription's events in `log` with `from <= time < to`,
    /// ascending.
    pub async fn usage_leaf_indexes(
        &mut self,
        log: &str,
        subscription_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<u64>> {
        let rows: Vec<(i64,)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT leaf_index FROM usage_index WHERE log = $1 AND subscription_id = $2 AND event_time >= $3 AND event_time < $4 ORDER BY leaf_index"
        )
        .bind(log)
        .bind(subscription_id)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| u64::try_from(r.0).unwrap_or(0))
            .collect())
    }

    /// Forgets the index and the aggregates of `log` (to rebuild them from the segments).
    pub async fn clear_usage_index(&mut self, log: &str) -> Result<()> {
        for sql in [
            "DELETE FROM usage_index WHERE log = $1",
            "DELETE FROM usage_aggregates WHERE log = $1",
            "DELETE FROM usage_unique WHERE log = $1",
        ] {
            on_tx!(self, |c| sqlx::query(sql)
                .bind(log)
                .execute(c)
                .await?
                .rows_affected());
        }
        Ok(())
    }

    /// The stored aggregate of `key`, if any (without its unique count).
    async fn usage_aggregate(&mut self, key: &AggregateKey) -> Result<Option<Aggregate>> {
        let row: Option<(i64, Option<String>, Option<String>)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT count, sum, max FROM usage_aggregates WHERE subscription_id = $1 AND log = $2 AND period = $3 AND period_start = $4 AND operation_id = $5 AND meter = $6"
        )
        .bind(&key.subscription_id)
        .bind(&key.log)
        .bind(&key.period)
        .bind(key.period_start)
        .bind(&key.operation_id)
        .bind(&key.meter)
        .fetch_optional(c)
        .await?
        });
        Ok(row.map(|(count, sum, max)| Aggregate {
            key: key.clone(),
            count: u64::try_from(count).unwrap_or(0),
            sum,
            max,
            unique: 0,
        }))
    }

    /// Merges `delta` into the stored aggregate of its key with `merge(stored, delta)`.
    pub async fn merge_usage_aggregate(
        &mut self,
        delta: &Aggregate,
        merge: impl FnOnce(Option<Aggregate>, &Aggregate) -> Aggregate,
    ) -> Result<()> {
        let stored = self.usage_aggregate(&delta.key).await?;
        let a = merge(stored, delta);
        let k = &a.key;
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO usage_aggregates (subscription_id, log, period, period_start, operation_id, meter, count, sum, max)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (subscription_id, log, period, period_start, operation_id, meter)
             DO UPDATE SET count = excluded.count, sum = excluded.sum, max = excluded.max"
        )
        .bind(&k.subscription_id)
        .bind(&k.log)
        .bind(&k.period)
        .bind(k.period_start)
        .bind(&k.operation_id)
        .bind(&k.meter)
        .bind(i64::try_from(a.count).unwrap_or(i64::MAX))
        .bind(&a.sum)
        .bind(&a.max)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Records distinct values of aggregates (already known ones are ignored).
    pub async fn add_usage_unique(&mut self, values: &[(AggregateKey, String)]) -> Result<()> {
        for chunk in values.chunks(INSERT_CHUNK) {
            on_tx!(self, |c| {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_unique (subscription_id, log, period, period_start, operation_id, meter, value) ",
                );
                qb.push_values(chunk, |mut b, (k, v)| {
                    b.push_bind(k.subscription_id.clone())
                        .push_bind(k.log.clone())
                        .push_bind(k.period.clone())
                        .push_bind(k.period_start)
                        .push_bind(k.operation_id.clone())
                        .push_bind(k.meter.clone())
                        .push_bind(v.clone());
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build()
                    .persistent(false)
                    .execute(c)
                    .await?
                    .rows_affected()
            });
        }
        Ok(())
    }

    /// A subscription's aggregates of `period` kind in `log` whose period starts in
    /// `[from, to)`, with unique counts, ordered by period, operation and meter.
    pub async fn usage_aggregates(
        &mut self,
        subscription_id: &str,
        log: &str,
        period: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Aggregate>> {
        let rows: Vec<AggregateRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT a.subscription_id, a.log, a.period, a.period_start, a.operation_id, a.meter, a.count, a.sum, a.max,
                    (SELECT COUNT(*) FROM usage_unique u
                      WHERE u.subscription_id = a.subscription_id AND u.log = a.log AND u.period = a.period
                        AND u.period_start = a.period_start AND u.operation_id = a.operation_id AND u.meter = a.meter) AS unique_count
             FROM usage_aggregates a
             WHERE a.subscription_id = $1 AND a.log = $2 AND a.period = $3 AND a.period_start >= $4 AND a.period_start < $5
             ORDER BY a.period_start, a.operation_id, a.meter"
        )
        .bind(subscription_id)
        .bind(log)
        .bind(period)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| Aggregate {
                key: AggregateKey {
                    subscription_id: r.subscription_id,
                    log: r.log,
                    period: r.period,
                    period_start: r.period_start,
                    operation_id: r.operation_id,
                    meter: r.meter,
                },
                count: u64::try_from(r.count).unwrap_or(0),
                sum: r.sum,
                max: r.max,
                unique: u64::try_from(r.unique_count).unwrap_or(0),
            })
            .collect())
    }
}
