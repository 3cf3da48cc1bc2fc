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

    /// Forgets the index of `log` (to rebuild it from the segments).
    pub async fn clear_usage_index(&mut self, log: &str) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM usage_index WHERE log = $1"
        )
        .bind(log)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }
}
