//! The usage ledger's public face: logs, signed checkpoints (C2SP signed notes), the
//! note verifier key, inclusion and consistency proofs (RFC 9162) — all without a
//! credential, since they reveal only hashes — and the entries themselves, which need
//! one: consumers read their own calls, providers the calls to their APIs, marketplace
//! operators and auditors everything.

use super::ReadErrors;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::ledger::LedgerLog;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tollgate_core::usage::UsageEvent;
use tollgate_core::{ErrorCode, FieldError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

/// Most entries one `entries` call returns.
pub const MAX_ENTRIES: u64 = 1000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_logs))
        .routes(routes!(log_status))
        .routes(routes!(checkpoint))
        .routes(routes!(checkpoints))
        .routes(routes!(public_key))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(entries))
}

/// One log of the ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogInfo {
    /// `live` or `test`.
    pub name: String,
    /// The log's origin: the first line of its checkpoints and its key name.
    pub origin: String,
    /// Durable entries.
    pub size: u64,
    /// Size of the latest signed checkpoint (0 before the first).
    pub checkpoint_size: u64,
    /// `sync` (responses end only once their event is durable) or `async`.
    pub durability: String,
    /// Events accepted but not yet durable: what a crash could lose in `async` mode.
    pub pending: u64,
    /// Entry bodies below this index were pruned (their hashes stay).
    pub pruned_before: u64,
    /// The note verifier key of the active checkpoint key.
    pub public_key: Option<String>,
    /// Every checkpoint key this marketplace has used, oldest first (checkpoints signed
    /// before a rotation verify with an older one).
    pub public_keys: Vec<String>,
}

/// `GET /v1/ledger`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogList {
    pub logs: Vec<LogInfo>,
}

fn ledger(st: &AppState) -> Result<&crate::ledger::Ledger, ApiError> {
    st.ledger.get().map(|l| &**l).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "this marketplace runs without a usage ledger",
        )
    })
}

fn log<'a>(st: &'a AppState, name: &str) -> Result<&'a LedgerLog, ApiError> {
    ledger(st)?
        .log(name)
        .ok_or_else(|| ApiError::not_found("ledger log"))
}

fn ledger_error(e: tollgate_ledger::Error) -> ApiError {
    use tollgate_ledger::Error as E;
    match e {
        E::IndexOutOfRange { .. }
        | E::SizeOutOfRange { .. }
        | E::BadConsistencyRange { .. }
        | E::Pruned { .. } => ApiError::new(ErrorCode::ValidationFailed, e.to_string()),
        other => ApiError::internal(other),
    }
}

fn query_error(pointer: &str, detail: &str) -> ApiError {
    ApiError::validation(vec![FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }])
}

fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

fn text(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Lists the ledger's logs with their origins, sizes and durability.
#[utoipa::path(get, path = "/v1/ledger", tag = "ledger",
    responses((status = 200, body = LogList), ReadErrors), security(()))]
async fn list_logs(State(st): St) -> Result<Json<LogList>, ApiError> {
    let ledger = ledger(&st)?;
    let mut logs = Vec::new();
    for l in ledger.logs() {
        logs.push(log_info(&st, ledger, l).await);
    }
    Ok(Json(LogList { logs }))
}

/// The status of one log: sizes, durability and the loss window (`pending`).
#[utoipa::path(get, path = "/v1/ledger/{log}", tag = "ledger",
    params(("log" = String, Path, description = "`live` or `test`")),
    responses((status = 200, body = LogInfo), ReadErrors), security(()))]
async fn log_status(State(st): St, Path(name): Path<String>) -> Result<Json<LogInfo>, ApiError> {
    let l = log(&st, &name)?;
    Ok(Json(log_info(&st, ledger(&st)?, l).await))
}

async fn log_info(st: &AppState, ledger: &crate::ledger::Ledger, l: &LedgerLog) -> LogInfo {
    let reader = l.reader();
    LogInfo {
        name: l.name.to_owned(),
        origin: l.origin.clone(),
        size: reader.size(),
        checkpoint_size: reader.latest_checkpoint().map_or(0, |c| c.size),
        durability: ledger.durability.as_str().to_owned(),
        pending: l.pending(),
        pruned_before: reader.pruned_before(),
        public_key: crate::ledger::current_verifier_key(st, &l.origin).await,
        public_keys: crate::ledger::checkpoint_public_keys(st)
            .await
            .into_iter()
            .filter_map(|pk| tollgate_ledger::VerifierKey::new(&l.origin, pk).ok())
            .map(|k| k.to_string())
            .collect(),
    }
}

/// The latest signed checkpoint of a log: a C2SP tlog-checkpoint as a signed note.
#[utoipa::path(get, path = "/v1/ledger/{log}/checkpoint", tag = "ledger",
    params(("log" = String, Path, description = "`live` or `test`")),
    responses((status = 200, body = String, content_type = "text/plain"), ReadErrors), security(()))]
async fn checkpoint(State(st): St, Path(name): Path<String>) -> Result<Response, ApiError> {
    let cp = log(&st, &name)?
        .reader()
        .latest_checkpoint()
        .ok_or_else(|| ApiError::not_found("checkpoint (none signed yet)"))?;
    Ok(text(cp.note))
}

/// Query of `checkpoints`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckpointsQuery {
    /// Checkpoints of at least this tree size (default 0: from the first).
    pub from_size: Option<u64>,
}

/// One checkpoint in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointInfo {
    pub size: u64,
    /// Root hash, standard base64.
    pub root: String,
    /// The signed note, byte for byte.
    pub note: String,
}

/// `GET /v1/ledger/{log}/checkpoints`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointList {
    pub checkpoints: Vec<CheckpointInfo>,
    /// Ask again with this `from_size` for the next page; absent when complete.
    pub next_from_size: Option<u64>,
}

/// Every checkpoint signed at or after a tree size, oldest first (pages of 1 000).
#[utoipa::path(get, path = "/v1/ledger/{log}/checkpoints", tag = "ledger",
    params(("log" = String, Path, description = "`live` or `test`"), CheckpointsQuery),
    responses((status = 200, body = CheckpointList), ReadErrors), security(()))]
async fn checkpoints(
    State(st): St,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<CheckpointsQuery>,
) -> Result<Json<CheckpointList>, ApiError> {
    let reader = log(&st, &name)?.reader();
    let from = q.from_size.unwrap_or(0);
    let list = reader
        .checkpoints_since(from.saturating_sub(1))
        .map_err(ledger_error)?;
    let latest = reader.latest_checkpoint().map_or(0, |c| c.size);
    let next_from_size = list.last().filter(|c| c.size < latest).map(|c| c.size + 1);
    Ok(Json(CheckpointList {
        checkpoints: list
            .into_iter()
            .map(|c| CheckpointInfo {
                size: c.size,
                root: b64(&c.root),
                note: c.note,
            })
            .collect(),
        next_from_size,
    }))
}

/// The note verifier key checkpoints are signed with:
/// `<origin>+<key id>+<base64(0x01 ‖ Ed25519 public key)>`.
#[utoipa::path(get, path = "/v1/ledger/{log}/public-key", tag = "ledger",
    params(("log" = String, Path, description = "`live` or `test`")),
    responses((status = 200, body = String, content_type = "text/plain"), ReadErrors), security(()))]
async fn public_key(State(st): St, Path(name): Path<String>) -> Result<Response, ApiError> {
    let origin = log(&st, &name)?.origin.clone();
    let key = crate::ledger::current_verifier_key(&st, &origin)
        .await
        .ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "no active checkpoint key"))?;
    Ok(text(format!("{key}\n")))
}

/// Query of `proof/inclusion`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry's index (or give `event_id`).
    pub index: Option<u64>,
    /// The tree size of the checkpoint to prove against.
    pub tree_size: u64,
    /// The usage event id (looked up among the entries) instead of `index`.
    pub event_id: Option<String>,
}

/// An RFC 9162 inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Audit path, standard base64, leaf side first.
    pub hashes: Vec<String>,
}

/// Proves that an entry is in the tree of a given size.
#[utoipa::path(get, path = "/v1/ledger/{log}/proof/inclusion", tag = "ledger",
    params(("log" = String, Path, description = "`live` or `test`"), InclusionQuery),
    responses((status = 200, body = InclusionProof), ReadErrors), security(()))]
async fn inclusion(
    State(st): St,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProof>, ApiError> {
    let reader = log(&st, &name)?.reader().clone();
    let index = match (q.index, q.event_id) {
        (Some(i), None) => i,
        (None, Some(id)) => {
            let mut tx = st.store.read().await?;
            let indexed = tx.usage_event_index(&name, &id).await?;
            let indexed_upto = crate::ledger::indexed_through(&mut tx, &name).await?;
            drop(tx);
            match indexed {
                Some(i) => i,
                // Appended since the indexer's last batch: scan only what it has not seen.
                None => find_event(&reader, &id, indexed_upto, q.tree_size)
                    .await?
                    .ok_or_else(|| ApiError::not_found("usage event"))?,
            }
        }
        _ => {
            return Err(query_error(
                "/index",
                "give exactly one of index and event_id",
            ));
        }
    };
    let size = q.tree_size;
    let hashes = tokio::task::spawn_blocking(move || reader.inclusion_proof(index, size))
        .await
        .map_err(ApiError::internal)?
        .map_err(ledger_error)?;
    Ok(Json(InclusionProof {
        leaf_index: index,
        tree_size: size,
        hashes: hashes.iter().map(|h| b64(h)).collect(),
    }))
}

/// Finds an event's index by scanning the entries in `[from, size)`, newest first (the
/// few entries appended since the store index's last batch).
async fn find_event(
    reader: &tollgate_ledger::LogReader,
    id: &str,
    from: u64,
    size: u64,
) -> Result<Option<u64>, ApiError> {
    let reader = reader.clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        let size = size.min(reader.size());
        let floor = reader.pruned_before().max(from);
        let mut end = size;
        while end > floor {
            let start = end.saturating_sub(MAX_ENTRIES).max(floor);
            let leaves = reader.entries(start, end)?;
            for (i, leaf) in leaves.iter().enumerate().rev() {
                if let Ok(e) = UsageEvent::from_leaf(leaf)
                    && e.id == id
                {
                    return Ok(Some(start + i as u64));
                }
            }
            end = start;
        }
        Ok(None)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ledger_error)
}

/// Query of `proof/consistency`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub first: u64,
    pub second: u64,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub hashes: Vec<String>,
}

/// Proves that the tree of size `second` extends the tree of size `first`.
#[utoipa::path(get, path = "/v1/ledger/{log}/proof/consistency", tag = "ledger",
    params(("log" = String, Path, description = "`live` or `test`"), ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), ReadErrors), security(()))]
async fn consistency(
    State(st): St,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let reader = log(&st, &name)?.reader().clone();
    let (first, second) = (q.first, q.second);
    let hashes = tokio::task::spawn_blocking(move || reader.consistency_proof(first, second))
        .await
        .map_err(ApiError::internal)?
        .map_err(ledger_error)?;
    Ok(Json(ConsistencyProof {
        first,
        second,
        hashes: hashes.iter().map(|h| b64(h)).collect(),
    }))
}

/// Query of `entries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// First index (inclusive).
    pub start: u64,
    /// End index (exclusive); at most 1 000 after `start`, and at most the log size.
    pub end: u64,
}

/// One entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entry {
    pub index: u64,
    /// The leaf bytes, standard base64: `0x01 ‖ RFC 8785 JSON of the event`.
    pub leaf: String,
    /// The usage event (CloudEvents 1.0).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// `GET /v1/ledger/{log}/entries`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryList {
    /// The entries in the range the caller may read (others are left out; their hashes
    /// are in the proofs).
    pub entries: Vec<Entry>,
}

/// Entries with index in `[start, end)`: your org's calls as consumer or provider; all
/// of them for marketplace operators and auditors.
#[utoipa::path(get, path = "/v1/ledger/{log}/entries", tag = "ledger",
    params(("log" = String, Path, description = "`live` or `test`"), EntriesQuery),
    responses((status = 200, body = EntryList), ReadErrors), security(("bearer" = [])))]
async fn entries(
    State(st): St,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<EntriesQuery>,
) -> Result<Json<EntryList>, ApiError> {
    let reader = log(&st, &name)?.reader().clone();
    if q.end < q.start {
        return Err(query_error("/end", "must not be below start"));
    }
    if q.end - q.start > MAX_ENTRIES {
        return Err(query_error("/end", "at most 1000 entries per call"));
    }
    let (start, end) = (q.start, q.end);
    let leaves = tokio::task::spawn_blocking(move || reader.entries(start, end))
        .await
        .map_err(ApiError::internal)?
        .map_err(ledger_error)?;
    let all = caller.marketplace_role().is_some();
    let mut out = Vec::new();
    for (i, leaf) in leaves.into_iter().enumerate() {
        let Ok(event) = UsageEvent::from_leaf(&leaf) else {
            continue;
        };
        if !(all
            || caller.orgs.contains_key(&event.data.consumer_org_id)
            || caller.orgs.contains_key(&event.data.provider_org_id))
        {
            continue;
        }
        out.push(Entry {
            index: start + i as u64,
            leaf: b64(&leaf),
            event: serde_json::to_value(&event).map_err(ApiError::internal)?,
        });
    }
    Ok(Json(EntryList { entries: out }))
}
