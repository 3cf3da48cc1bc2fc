//! Outbound webhooks: organizations' endpoints (with their keyring-sealed secrets), the
//! outbox of events producers write inside their own transactions, and each endpoint's
//! deliveries with their attempts.
//!
//! The store never sees a secret in clear: callers hand in and receive sealed blobs. The
//! endpoint reads ([`Tx::get_webhook_endpoint`], [`Tx::list_webhook_endpoints`]) leave
//! the sealed columns out; only [`Tx::claim_webhook_deliveries`], for the delivery
//! worker, returns them.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use time::OffsetDateTime;
use tollgate_core::model::Page;
use tollgate_core::{OrgId, UserId};
use uuid::Uuid;

use crate::{PageParams, Result, StoreError, Tx, on_tx};

macro_rules! uuid_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7: ids sort by creation, as cursors need).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

uuid_id! {
    /// An organization's webhook endpoint.
    WebhookEndpointId,
    /// One event's delivery to one endpoint.
    WebhookDeliveryId,
}

/// An organization's webhook endpoint, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub org_id: OrgId,
    pub url: String,
    pub description: String,
    /// Event types sent to the endpoint; empty means every type.
    pub event_types: Vec<String>,
    /// Until when the secret replaced by the last rotation still signs, if it does.
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    pub secret_rotated_at: Option<OffsetDateTime>,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    pub revision: i64,
}

impl WebhookEndpoint {
    /// Whether events of `event_type` go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// One event as a producer writes it: `body` is the exact bytes every attempt sends.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent<'a> {
    pub org_id: OrgId,
    /// The producer's event id; also the `webhook-id` header. Unique per org.
    pub id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    /// When the event happened; its deliveries are due from then.
    pub occurred_at: OffsetDateTime,
}

/// What [`Tx::enqueue_webhook_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The event is new; this many endpoints will receive it.
    New { deliveries: u64 },
    /// The org already has an event with this id: nothing was written.
    Duplicate,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt was answered with a 2xx status.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown delivery status {other:?}"
                )));
            }
        })
    }
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookAttempt {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: OffsetDateTime,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed, if it did (no answer, or a non-2xx answer).
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// One event's delivery to one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    /// Every attempt, first first.
    pub attempt_log: Vec<WebhookAttempt>,
}

/// A delivery the worker took for its next attempt: what it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub org_id: OrgId,
    pub url: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub event_id: String,
    pub body: String,
    pub secret_sealed: Vec<u8>,
    /// The secret replaced by the last rotation, while it still signs.
    pub previous_secret_sealed: Option<Vec<u8>>,
}

/// The result of one attempt and what follows from it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: WebhookAttempt,
    /// `Pending` with `next_attempt_at` for a retry, `Delivered` or `Failed` otherwise.
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<OffsetDateTime>,
}

// ------------------------------------------------------------------------ rows

#[derive(FromRow)]
struct EndpointRow {
    id: String,
    org_id: String,
    url: String,
    description: String,
    event_types: Json<Vec<String>>,
    previous_secret_expires_at: Option<OffsetDateTime>,
    secret_rotated_at: Option<OffsetDateTime>,
    created_by: String,
    created_at: OffsetDateTime,
    revision: i64,
}

/// The columns a [`WebhookEndpoint`] is read from; the sealed secrets are deliberately
/// not among them.
const ENDPOINT_COLS: &str = "id, org_id, url, description, event_types, previous_secret_expires_at, secret_rotated_at, created_by, created_at, revision";

fn parse<T: FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what} {s:?}")))
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<WebhookEndpoint> {
        Ok(WebhookEndpoint {
            id: parse(&self.id, "webhook endpoint id")?,
            org_id: parse(&self.org_id, "org id")?,
            url: self.url,
            description: self.description,
            event_types: self.event_types.0,
            previous_secret_expires_at: self.previous_secret_expires_at,
            secret_rotated_at: self.secret_rotated_at,
            created_by: parse(&self.created_by, "user id")?,
            created_at: self.created_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct DeliveryRow {
    id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<OffsetDateTime>,
    last_attempt_at: Option<OffsetDateTime>,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
}

#[derive(FromRow)]
struct AttemptRow {
    delivery_id: String,
    attempt: i64,
    at: OffsetDateTime,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

#[derive(FromRow)]
struct DueRow {
    id: String,
    endpoint_id: String,
    org_id: String,
    url: String,
    attempts: i64,
    event_id: String,
    body: String,
    secret_sealed: Vec<u8>,
    previous_secret_sealed: Option<Vec<u8>>,
    previous_secret_expires_at: Option<OffsetDateTime>,
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn status_code(n: Option<i64>) -> Option<u16> {
    n.and_then(|n| u16::try_from(n).ok())
}

// ------------------------------------------------------------------------ queries

impl Tx {
    /// Inserts an endpoint with its sealed secret.
    pub async fn insert_webhook_endpoint(
        &mut self,
        e: &WebhookEndpoint,
        secret_sealed: &[u8],
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, org_id, url, description, event_types, secret_sealed,
                                                previous_secret_sealed, previous_secret_expires_at, secret_rotated_at,
                                                created_by, created_at, revision)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, $7, $8, $9)",
            )
            .bind(e.id.to_string())
            .bind(e.org_id.to_string())
            .bind(&e.url)
            .bind(&e.description)
            .bind(Json(&e.event_types))
            .bind(secret_sealed)
            .bind(e.created_by.to_string())
            .bind(e.created_at)
            .bind(e.revision)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// An endpoint, without its secrets.
    pub async fn get_webhook_endpoint(
        &mut self,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1");
        let row: Option<EndpointRow> = on_tx!(self, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(c)
            .await?);
        row.map(EndpointRow::into_endpoint).transpose()
    }

    /// An org's endpoints by id (creation order), without their secrets.
    pub async fn list_webhook_endpoints(
        &mut self,
        org: OrgId,
        page: &PageParams,
    ) -> Result<Page<WebhookEndpoint>> {
        let rows: Vec<EndpointRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE org_id = "
            ));
            qb.push_bind(org.to_string());
            if let Some(after) = &page.after {
                qb.push(" AND id > ").push_bind(after.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().persistent(false).fetch_all(c).await?
        });
        let items = rows
            .into_iter()
            .map(EndpointRow::into_endpoint)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |e| e.id.to_string()))
    }

    /// Replaces an endpoint's secret: the current one becomes the previous one (signing
    /// until `previous_expires_at`), replacing any older previous secret. `e` carries the
    /// new rotation time and revision; the update is refused as stale unless the stored
    /// revision is `expected_revision`.
    pub async fn rotate_webhook_secret(
        &mut self,
        e: &WebhookEndpoint,
        new_secret_sealed: &[u8],
        expected_revision: i64,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE webhook_endpoints
                 SET previous_secret_sealed = secret_sealed, secret_sealed = $2,
                     previous_secret_expires_at = $3, secret_rotated_at = $4, revision = $5
                 WHERE id = $1 AND revision = $6",
            )
            .bind(e.id.to_string())
            .bind(new_secret_sealed)
            .bind(e.previous_secret_expires_at)
            .bind(e.secret_rotated_at)
            .bind(e.revision)
            .bind(expected_revision)
            .execute(c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Stale);
        }
        Ok(())
    }

    /// Deletes an endpoint with its deliveries and their attempts.
    pub async fn delete_webhook_endpoint(&mut self, id: WebhookEndpointId) -> Result<()> {
        // The cascade would do it; spelled out so the order does not depend on it.
        for sql in [
            "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)",
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
            "DELETE FROM webhook_endpoints WHERE id = $1",
        ] {
            on_tx!(self, |c| sqlx::query(sql)
                .bind(id.to_string())
                .execute(c)
                .await?
                .rows_affected());
        }
        Ok(())
    }

    /// Writes an event to the outbox with one pending delivery per endpoint of its org
    /// that wants its type, due at `occurred_at`. An event id the org already used is
    /// left as it is ([`Enqueued::Duplicate`]): producers may retry freely.
    /// The orgs that have at least one webhook endpoint (producers of many events skip
    /// the others: an event without an endpoint makes no delivery).
    pub async fn orgs_with_webhook_endpoints(
        &mut self,
    ) -> Result<std::collections::HashSet<OrgId>> {
        let rows: Vec<(String,)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT DISTINCT org_id FROM webhook_endpoints"
        )
        .fetch_all(c)
        .await?);
        rows.into_iter()
            .map(|(o,)| {
                o.parse()
                    .map_err(|_| StoreError::Corrupt(format!("bad org id {o:?}")))
            })
            .collect()
    }

    pub async fn enqueue_webhook_event(&mut self, ev: &NewWebhookEvent<'_>) -> Result<Enqueued> {
        let inserted = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO webhook_events (org_id, id, event_type, body, occurred_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(ev.org_id.to_string())
            .bind(ev.id)
            .bind(ev.event_type)
            .bind(ev.body)
            .bind(ev.occurred_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Ok(Enqueued::Duplicate);
        }
        let endpoints: Vec<(String, Json<Vec<String>>)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT id, event_types FROM webhook_endpoints WHERE org_id = $1 ORDER BY id"
        )
        .bind(ev.org_id.to_string())
        .fetch_all(c)
        .await?);
        let mut deliveries = 0;
        for (endpoint_id, types) in endpoints {
            if !types.0.is_empty() && !types.0.iter().any(|t| t == ev.event_type) {
                continue;
            }
            deliveries += on_tx!(self, |c| {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (id, endpoint_id, org_id, event_id, status, attempts, next_attempt_at, created_at)
                     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
                )
                .bind(WebhookDeliveryId::new().to_string())
                .bind(&endpoint_id)
                .bind(ev.org_id.to_string())
                .bind(ev.id)
                .bind(ev.occurred_at)
                .execute(c)
                .await?
                .rows_affected()
            });
        }
        Ok(Enqueued::New { deliveries })
    }

    /// Whether any delivery is due at `now` (a cheap read before taking the write lock).
    pub async fn webhook_deliveries_due(&mut self, now: OffsetDateTime) -> Result<bool> {
        let row: Option<(String,)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 LIMIT 1"
        )
        .bind(now)
        .fetch_optional(c)
        .await?
        });
        Ok(row.is_some())
    }

    /// Takes up to `limit` deliveries due at `now`, earliest first, for one attempt each:
    /// their next attempt moves to `lease_until`, so no other worker takes them meanwhile
    /// and one whose attempt never gets recorded (a crash) is retried then. Previous
    /// secrets that expired by `now` are left out.
    pub async fn claim_webhook_deliveries(
        &mut self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<DueDelivery>> {
        let rows: Vec<DueRow> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT d.id, d.endpoint_id, d.org_id, e.url, d.attempts, d.event_id, ev.body,
                        e.secret_sealed, e.previous_secret_sealed, e.previous_secret_expires_at
                 FROM webhook_deliveries d
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id
                 JOIN webhook_events ev ON ev.org_id = d.org_id AND ev.id = d.event_id
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1
                 ORDER BY d.next_attempt_at, d.id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(c)
            .await?
        });
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        on_tx!(self, |c| {
            let mut qb = QueryBuilder::new("UPDATE webhook_deliveries SET next_attempt_at = ");
            qb.push_bind(lease_until).push(" WHERE id IN (");
            let mut sep = qb.separated(", ");
            for r in &rows {
                sep.push_bind(r.id.clone());
            }
            qb.push(")");
            qb.build()
                .persistent(false)
                .execute(c)
                .await?
                .rows_affected()
        });
        rows.into_iter()
            .map(|r| {
                let previous = match (r.previous_secret_sealed, r.previous_secret_expires_at) {
                    (Some(s), Some(until)) if until > now => Some(s),
                    _ => None,
                };
                Ok(DueDelivery {
                    id: parse(&r.id, "webhook delivery id")?,
                    endpoint_id: parse(&r.endpoint_id, "webhook endpoint id")?,
                    org_id: parse(&r.org_id, "org id")?,
                    url: r.url,
                    attempts: count(r.attempts),
                    event_id: r.event_id,
                    body: r.body,
                    secret_sealed: r.secret_sealed,
                    previous_secret_sealed: previous,
                })
            })
            .collect()
    }

    /// Records an attempt and the delivery's new state. A delivery that no longer exists
    /// (its endpoint was deleted meanwhile) is ignored; returns whether it existed.
    pub async fn record_webhook_attempt(
        &mut self,
        id: WebhookDeliveryId,
        outcome: &AttemptOutcome,
    ) -> Result<bool> {
        let a = &outcome.attempt;
        let delivered_at = (outcome.status == DeliveryStatus::Delivered).then_some(a.at);
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET status = $2, attempts = $3, next_attempt_at = $4, last_attempt_at = $5,
                     last_status_code = $6, last_error = $7, delivered_at = $8
                 WHERE id = $1",
            )
            .bind(id.to_string())
            .bind(outcome.status.as_str())
            .bind(i64::from(a.attempt))
            .bind(outcome.next_attempt_at)
            .bind(a.at)
            .bind(a.status_code.map(i64::from))
            .bind(a.error.as_deref())
            .bind(delivered_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Ok(false);
        }
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(id.to_string())
            .bind(i64::from(a.attempt))
            .bind(a.at)
            .bind(a.status_code.map(i64::from))
            .bind(a.error.as_deref())
            .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(true)
    }

    /// An endpoint's deliveries by id (creation order), each with its attempts.
    pub async fn list_webhook_deliveries(
        &mut self,
        endpoint: WebhookEndpointId,
        page: &PageParams,
    ) -> Result<Page<WebhookDelivery>> {
        let rows: Vec<DeliveryRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(
                "SELECT d.id, d.endpoint_id, d.event_id, ev.event_type, d.status, d.attempts, d.next_attempt_at,
                        d.last_attempt_at, d.last_status_code, d.last_error, d.created_at, d.delivered_at
                 FROM webhook_deliveries d
                 JOIN webhook_events ev ON ev.org_id = d.org_id AND ev.id = d.event_id
                 WHERE d.endpoint_id = ",
            );
            qb.push_bind(endpoint.to_string());
            if let Some(after) = &page.after {
                qb.push(" AND d.id > ").push_bind(after.clone());
            }
            qb.push(" ORDER BY d.id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().persistent(false).fetch_all(c).await?
        });
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(WebhookDelivery {
                id: parse(&r.id, "webhook delivery id")?,
                endpoint_id: parse(&r.endpoint_id, "webhook endpoint id")?,
                event_id: r.event_id,
                event_type: r.event_type,
                status: DeliveryStatus::parse(&r.status)?,
                attempts: count(r.attempts),
                next_attempt_at: r.next_attempt_at,
                last_attempt_at: r.last_attempt_at,
                last_status_code: status_code(r.last_status_code),
                last_error: r.last_error,
                created_at: r.created_at,
                delivered_at: r.delivered_at,
                attempt_log: Vec::new(),
            });
        }
        let mut page = paginate(items, page.limit, |d| d.id.to_string());
        if page.items.is_empty() {
            return Ok(page);
        }
        let attempts: Vec<AttemptRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(
                "SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM webhook_attempts WHERE delivery_id IN (",
            );
            let mut sep = qb.separated(", ");
            for d in &page.items {
                sep.push_bind(d.id.to_string());
            }
            qb.push(") ORDER BY delivery_id, attempt");
            qb.build_query_as().persistent(false).fetch_all(c).await?
        });
        for a in attempts {
            let id: WebhookDeliveryId = parse(&a.delivery_id, "webhook delivery id")?;
            if let Some(d) = page.items.iter_mut().find(|d| d.id == id) {
                d.attempt_log.push(WebhookAttempt {
                    attempt: count(a.attempt),
                    at: a.at,
                    status_code: status_code(a.status_code),
                    error: a.error,
                    duration_ms: u64::try_from(a.duration_ms).unwrap_or(0),
                });
            }
        }
        Ok(page)
    }
}

/// Cuts one extra fetched row into a `next_cursor` (as the other lists do).
fn paginate<T>(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next_cursor }
}
