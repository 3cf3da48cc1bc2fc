//! `tollgate ledger verify`: checks the usage ledger end to end, offline from its files or
//! online through a running marketplace's ledger endpoints, and says where it breaks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use serde::Serialize;
use serde_json::{Value, json};
use tollgate_ledger::segment::{self, CHECKPOINT_MAGIC, SEGMENT_MAGIC};
use tollgate_ledger::tree::{CompactRange, Hash, leaf_hash};
use tollgate_ledger::{Checkpoint, Error as LedgerError, VerifierKey, VerifyReport, proof};

/// Most entries one `/entries` call returns (the server's limit).
const PAGE: u64 = 1000;
/// Most inclusion proofs fetched to pinpoint the entry behind a root mismatch.
const PINPOINT_LIMIT: u64 = 1000;

/// `tollgate ledger` subcommands.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Verify the usage ledger: every entry, the Merkle tree and every signed checkpoint.
    ///
    /// Offline (--data-dir, the default): reads `<data-dir>/ledger/<log>/` without a
    /// running server, checks both checksums of every record in every segment, recomputes
    /// every leaf hash and the RFC 9162 tree, and checks that the root at each checkpoint's
    /// size is the checkpoint's root; with --key it also checks every checkpoint's
    /// signature and cross-checks the stored node hashes. Run it on a stopped server or a
    /// copy: on a running one it sees a moment's files.
    ///
    /// Online (--url): asks a running marketplace's admin API for its logs, verifier key
    /// and every checkpoint, checks each checkpoint's signature, then with --token (the
    /// operator's) reads every entry, recomputes the tree and compares the root at every
    /// checkpoint; without a token it checks only that consecutive checkpoints are
    /// consistent (RFC 9162 consistency proofs).
    ///
    /// Exits 0 when every selected log verifies, 1 otherwise; a failure names the segment
    /// file, byte offset and leaf index, or the checkpoint number.
    ///
    /// Examples:
    ///   tollgate ledger verify --data-dir /var/lib/tollgate \
    ///     --key "$(curl -s http://127.0.0.1:7700/v1/ledger/live/public-key)"
    ///   tollgate ledger verify --url http://127.0.0.1:7700 --token "$TOKEN" --json
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
}

/// Which logs to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogChoice {
    /// The log of live-mode calls.
    Live,
    /// The log of test-mode calls.
    Test,
    /// Both.
    All,
}

impl LogChoice {
    fn names(self) -> &'static [&'static str] {
        match self {
            LogChoice::Live => &["live"],
            LogChoice::Test => &["test"],
            LogChoice::All => &["live", "test"],
        }
    }
}

/// Options of `tollgate ledger verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Data directory to verify offline (its `ledger/` folder), e.g.
    /// `--data-dir /var/lib/tollgate`. [default: ./tollgate-data]
    #[arg(long, value_name = "DIR", conflicts_with = "url")]
    pub data_dir: Option<PathBuf>,
    /// Admin API base URL of a running marketplace to verify online, e.g.
    /// `--url http://127.0.0.1:7700`.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// With --url: a bearer token allowed to read every entry (the operator's or an
    /// auditor's), e.g. `--token "$(cat tollgate-data/admin-token)"`. Without one only the
    /// checkpoints' signatures and consistency are checked.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TOLLGATE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A checkpoint verifier key `<origin>+<key id>+<base64 key>` as served by
    /// `GET /v1/ledger/<log>/public-key` (repeatable: give retired keys too). A key
    /// applies to the log whose origin it names. Offline, checkpoint signatures are
    /// checked only with a key; online, a key given here replaces the server's own.
    #[arg(long = "key", value_name = "VERIFIER_KEY")]
    pub keys: Vec<String>,
    /// The log to verify, e.g. `--log live`.
    #[arg(long, value_enum, default_value = "all")]
    pub log: LogChoice,
    /// Print one JSON object (per-log `ok`, `entries`, `checkpoints`, `first_error`, …)
    /// for scripts instead of text; no progress bar.
    #[arg(long)]
    pub json: bool,
}

/// The outcome for one log.
#[derive(Debug, Default, Serialize)]
struct LogResult {
    log: String,
    origin: Option<String>,
    ok: bool,
    /// Entries verified (offline: found in the files; online: read and hashed, or the
    /// server's size when entries could not be read).
    entries: u64,
    checkpoints: u64,
    /// Offline only: segment files read.
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<usize>,
    pruned_before: u64,
    /// Offline only: an incomplete last record (crash debris the server cuts at start).
    #[serde(skip_serializing_if = "Option::is_none")]
    torn_tail: Option<Value>,
    /// Offline with keys: stored node hashes beyond the last checkpoint that the server
    /// will rebuild at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_hashes: Option<bool>,
    signatures_checked: bool,
    /// Whether the tree was recomputed from the entries themselves.
    tree_checked: bool,
    notes: Vec<String>,
    first_error: Option<String>,
}

impl LogResult {
    fn new(log: &str) -> Self {
        Self {
            log: log.to_owned(),
            ..Self::default()
        }
    }

    fn fail(&mut self, error: impl std::fmt::Display) {
        self.ok = false;
        self.first_error = Some(error.to_string());
    }
}

pub async fn run(command: LedgerCommand) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Verify(args) => verify(args).await,
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let keys = args
        .keys
        .iter()
        .map(|k| VerifierKey::parse(k.trim()).map_err(|e| anyhow!("--key: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let show_progress = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (source, results) = match &args.url {
        Some(url) => {
            let online = Online::new(url, args.token.clone())?;
            let results = online.verify(args.log, &keys, show_progress).await?;
            (json!({"url": url}), results)
        }
        None => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(crate::default_data_dir);
            let results = tokio::task::block_in_place(|| {
                verify_offline(&dir, args.log, &keys, show_progress)
            })?;
            (json!({"data_dir": dir.display().to_string()}), results)
        }
    };
    let ok = results.iter().all(|r| r.ok);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": ok, "source": source, "logs": results}))?
        );
    } else {
        for r in &results {
            print_result(r);
        }
    }
    if !ok {
        let failed = results.iter().filter(|r| !r.ok).count();
        bail!(
            "ledger verification failed ({failed} of {} log{})",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn print_result(r: &LogResult) {
    let origin = r.origin.as_deref().unwrap_or("?");
    if r.ok {
        let mut parts = vec![format!("{} entries", r.entries)];
        if let Some(n) = r.segments {
            parts.push(format!("{n} segment{}", if n == 1 { "" } else { "s" }));
        }
        parts.push(format!(
            "{} checkpoint{} ({})",
            r.checkpoints,
            if r.checkpoints == 1 { "" } else { "s" },
            if r.signatures_checked {
                "signatures checked"
            } else {
                "signatures not checked"
            }
        ));
        if r.pruned_before > 0 {
            parts.push(format!("bodies pruned before {}", r.pruned_before));
        }
        if let Some(t) = &r.torn_tail {
            parts.push(format!(
                "torn tail of {} bytes at byte {} of {} (repaired at the next start)",
                t["bytes"], t["offset"], t["path"]
            ));
        } else if r.segments.is_some() {
            parts.push("no torn tail".to_owned());
        }
        if r.stale_hashes == Some(true) {
            parts.push("stale node hashes past the last checkpoint (rebuilt at start)".into());
        }
        outln!("{} ({origin}): ok: {}", r.log, parts.join(", "));
    } else {
        outln!(
            "{} ({origin}): FAILED: {}",
            r.log,
            r.first_error.as_deref().unwrap_or("unknown error")
        );
    }
    for n in &r.notes {
        outln!("  note: {n}");
    }
}

/// A progress bar on stderr, or nothing.
fn bar(show: bool, len: u64, template: &str, msg: String) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.set_message(msg);
    Some(b)
}

// ---------------------------------------------------------------------------------------
// Offline

fn verify_offline(
    data_dir: &Path,
    choice: LogChoice,
    keys: &[VerifierKey],
    show_progress: bool,
) -> anyhow::Result<Vec<LogResult>> {
    let root = data_dir.join("ledger");
    if !root.is_dir() {
        bail!(
            "no ledger under {} (give the data directory of `tollgate serve` with --data-dir)",
            data_dir.display()
        );
    }
    let mut results = Vec::new();
    for name in choice.names() {
        let dir = root.join(name);
        let mut r = LogResult::new(name);
        let origin = match read_origin(&dir) {
            Ok(o) => o,
            Err(e) => {
                r.fail(e);
                results.push(r);
                continue;
            }
        };
        let mine: Vec<VerifierKey> = keys
            .iter()
            .filter(|k| k.name() == origin)
            .cloned()
            .collect();
        let pb = bar(
            show_progress,
            0,
            "{msg} {bar:30} {bytes}/{total_bytes}",
            format!("verifying {name}"),
        );
        let mut progress = |done: u64, total: u64| {
            if let Some(b) = &pb {
                b.set_length(total);
                b.set_position(done);
            }
        };
        let outcome = if mine.is_empty() {
            if keys.is_empty() {
                r.notes
                    .push("signatures not checked (pass --key or use --url)".into());
            } else {
                r.notes.push(format!(
                    "signatures not checked: no --key names the origin {origin}"
                ));
            }
            r.notes
                .push("stored node hashes are cross-checked only with --key".into());
            verify_unsigned(&dir, &origin, &mut progress)
        } else {
            r.signatures_checked = true;
            tollgate_ledger::verify_dir(&dir, &origin, &mine, &mut progress)
        };
        if let Some(b) = pb {
            b.finish_and_clear();
        }
        r.origin = Some(origin);
        match outcome {
            Ok(rep) => {
                r.ok = true;
                r.tree_checked = true;
                r.entries = rep.entries;
                r.checkpoints = rep.checkpoints;
                r.segments = Some(rep.segments);
                r.pruned_before = rep.pruned_before;
                r.torn_tail = rep.torn_tail.map(|t| {
                    json!({"path": t.path.display().to_string(), "offset": t.offset, "index": t.index, "bytes": t.bytes})
                });
                if r.signatures_checked {
                    r.stale_hashes = Some(rep.stale_hashes);
                }
            }
            Err(e) => {
                r.signatures_checked = false;
                r.fail(e);
            }
        }
        results.push(r);
    }
    Ok(results)
}

/// The origin from `<dir>/LEDGER` (`"tollgate-ledger 1\n<origin>\n"`).
fn read_origin(dir: &Path) -> Result<String, LedgerError> {
    let path = dir.join("LEDGER");
    let text = std::fs::read_to_string(&path).map_err(|source| LedgerError::Io {
        path: path.clone(),
        source,
    })?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(tollgate_ledger::log::FORMAT_LINE), Some(origin)) if !origin.is_empty() => {
            Ok(origin.to_owned())
        }
        _ => Err(LedgerError::Format { path, found: text }),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`tollgate_ledger::verify_dir`] checks, except checkpoint signatures and the
/// stored node hashes above level 0: it needs no verifier key, which the sealed keyring
/// does not give out offline. Errors are the ledger's own, so they read the same.
fn verify_unsigned(
    dir: &Path,
    origin: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, LedgerError> {
    let pruned_path = dir.join("PRUNED");
    let pruned_before: u64 = match std::fs::read_to_string(&pruned_path) {
        Ok(s) => s.trim().parse().map_err(|_| LedgerError::Format {
            path: pruned_path.clone(),
            found: s.clone(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(&pruned_path)(e)),
    };
    let seg_dir = dir.join("segments");
    let mut segments = Vec::new();
    for e in std::fs::read_dir(&seg_dir).map_err(io(&seg_dir))? {
        let e = e.map_err(io(&seg_dir))?;
        if let Some(first) = e.file_name().to_str().and_then(segment::parse_segment_name)
            && first >= pruned_before
        {
            segments.push((first, e.path()));
        }
    }
    segments.sort();

    // Checkpoints: framing, origin and increasing sizes.
    let cp_path = dir.join("checkpoints.log");
    let mut cps: Vec<(u64, Checkpoint)> = Vec::new();
    segment::scan(
        &cp_path,
        CHECKPOINT_MAGIC,
        0,
        true,
        |number, offset, bytes| {
            let bad = |reason: String| LedgerError::CorruptCheckpoint {
                number,
                path: cp_path.clone(),
                offset,
                reason,
            };
            let cp = Checkpoint::parse_unverified(bytes).map_err(|e| bad(e.to_string()))?;
            if cp.origin != origin {
                return Err(bad(format!("origin {:?}", cp.origin)));
            }
            if let Some((prev, p)) = cps.last()
                && cp.size <= p.size
            {
                return Err(LedgerError::CheckpointRegression {
                    number,
                    size: cp.size,
                    previous: *prev,
                    previous_size: p.size,
                });
            }
            cps.push((number, cp));
            Ok(())
        },
    )
    .map_err(|e| match e {
        // The shared framing calls checkpoint numbers "leaf index"; say what they are.
        LedgerError::CorruptRecord {
            path,
            offset,
            index,
            reason,
        } => LedgerError::CorruptCheckpoint {
            number: index,
            path,
            offset,
            reason,
        },
        e => e,
    })?;

    let mut frontier = CompactRange::new();
    let mut next_cp = 0usize;
    let check_cps = |frontier: &CompactRange, next_cp: &mut usize| -> Result<(), LedgerError> {
        while let Some((number, cp)) = cps.get(*next_cp) {
            if cp.size != frontier.size() {
                break;
            }
            if frontier.root() != cp.root {
                return Err(LedgerError::RootMismatch {
                    size: cp.size,
                    number: *number,
                });
            }
            *next_cp += 1;
        }
        Ok(())
    };

    // Pruned bodies: their leaf hashes are kept in level 0 of the node storage.
    if pruned_before > 0 {
        use std::io::Read as _;
        let path0 = dir.join("hashes").join("level-00.bin");
        let f = std::fs::File::open(&path0).map_err(io(&path0))?;
        let found = f.metadata().map_err(io(&path0))?.len() / 32;
        if found < pruned_before {
            return Err(LedgerError::StoredHashesMissing {
                path: path0,
                found,
                needed: pruned_before,
            });
        }
        let mut r = std::io::BufReader::new(f);
        for _ in 0..pruned_before {
            let mut h = [0u8; 32];
            r.read_exact(&mut h).map_err(io(&path0))?;
            frontier.push(h, |_, _, _| {});
            check_cps(&frontier, &mut next_cp)?;
        }
    }

    let total: u64 = segments
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let mut done = 0u64;
    let mut torn = None;
    let n = segments.len();
    for (k, (first, path)) in segments.iter().enumerate() {
        if frontier.size() != *first {
            return Err(LedgerError::CorruptSegment {
                path: path.clone(),
                reason: format!(
                    "starts at index {first} but {} entries precede it",
                    frontier.size()
                ),
            });
        }
        let base = done;
        let scanned = segment::scan(
            path,
            SEGMENT_MAGIC,
            *first,
            k + 1 == n,
            |index, offset, bytes| {
                frontier.push(leaf_hash(bytes), |_, _, _| {});
                check_cps(&frontier, &mut next_cp)?;
                if index % 65536 == 0 {
                    progress(base + offset, total);
                }
                Ok(())
            },
        )?;
        done += std::fs::metadata(path).map_or(0, |m| m.len());
        if scanned.torn.is_some() {
            torn = scanned.torn;
        }
    }
    progress(total, total);
    if let Some((number, cp)) = cps.get(next_cp) {
        return Err(LedgerError::CheckpointBeyondLog {
            entries: frontier.size(),
            number: *number,
            size: cp.size,
        });
    }
    Ok(VerifyReport {
        entries: frontier.size(),
        segments: n,
        checkpoints: cps.len() as u64,
        pruned_before,
        torn_tail: torn,
        stale_hashes: false,
    })
}

// ---------------------------------------------------------------------------------------
// Online

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Empty<Bytes>,
>;

/// The public ledger endpoints of a running marketplace.
struct Online {
    client: HttpClient,
    base: String,
    token: Option<String>,
}

/// A checkpoint as listed by the server, verified.
struct ListedCheckpoint {
    number: u64,
    size: u64,
    root: Hash,
}

impl Online {
    fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            bail!(
                "the admin URL must be http://host:port (got {base:?}); TLS to the admin API is not supported yet, put it behind a TLS proxy"
            );
        }
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Ok(Self {
            client,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// GET `path`: the status and body of any answer.
    async fn get_raw(&self, path: &str, auth: bool) -> anyhow::Result<(StatusCode, Bytes)> {
        let uri = format!("{}{path}", self.base);
        let mut req = Request::get(&uri);
        if auth && let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Empty::new())?;
        let fetch = async {
            let resp = self.client.request(req).await.with_context(|| {
                format!("cannot reach the admin API at {uri}; is `tollgate serve` running?")
            })?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(Duration::from_secs(60), fetch)
            .await
            .with_context(|| format!("GET {uri}: no answer within 60 s"))?
    }

    /// GET `path`, expecting 2xx.
    async fn get(&self, path: &str, auth: bool) -> anyhow::Result<Bytes> {
        let (status, body) = self.get_raw(path, auth).await?;
        if !status.is_success() {
            let problem = serde_json::from_slice(&body).unwrap_or(Value::Null);
            bail!(
                "GET {path}: {}",
                crate::client::describe_problem(status, &problem)
            );
        }
        Ok(body)
    }

    async fn get_json(&self, path: &str, auth: bool) -> anyhow::Result<Value> {
        let body = self.get(path, auth).await?;
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: the answer is not JSON"))
    }

    async fn verify(
        &self,
        choice: LogChoice,
        keys: &[VerifierKey],
        show_progress: bool,
    ) -> anyhow::Result<Vec<LogResult>> {
        let list = self.get_json("/v1/ledger", false).await?;
        let logs = list["logs"]
            .as_array()
            .context("GET /v1/ledger: no `logs` array")?;
        let mut results = Vec::new();
        for name in choice.names() {
            let mut r = LogResult::new(name);
            let Some(info) = logs.iter().find(|l| l["name"] == *name) else {
                r.fail(format!("the server has no {name} log"));
                results.push(r);
                continue;
            };
            if let Err(e) = self.verify_log(info, keys, show_progress, &mut r).await {
                r.fail(format!("{e:#}"));
            }
            results.push(r);
        }
        Ok(results)
    }

    async fn verify_log(
        &self,
        info: &Value,
        keys: &[VerifierKey],
        show_progress: bool,
        r: &mut LogResult,
    ) -> anyhow::Result<()> {
        let name = r.log.clone();
        let origin = info["origin"]
            .as_str()
            .context("log without origin")?
            .to_owned();
        r.origin = Some(origin.clone());
        let size = info["size"].as_u64().unwrap_or(0);
        r.pruned_before = info["pruned_before"].as_u64().unwrap_or(0);

        // The trust anchor: the keys given for this origin, else the server's own.
        let mut mine: Vec<VerifierKey> = keys
            .iter()
            .filter(|k| k.name() == origin)
            .cloned()
            .collect();
        if mine.is_empty() {
            let text = self
                .get(&format!("/v1/ledger/{name}/public-key"), false)
                .await?;
            let text = String::from_utf8_lossy(&text);
            let key = VerifierKey::parse(text.trim())
                .map_err(|e| anyhow!("the server's verifier key: {e}"))?;
            if key.name() != origin {
                bail!(
                    "the server's verifier key names {:?}, not the log origin {origin:?}",
                    key.name()
                );
            }
            r.notes.push(format!(
                "signatures checked against the server's current key {key} (pass --key to use your own copy)"
            ));
            mine.push(key);
        }

        // Every checkpoint, each signature checked.
        let mut cps: Vec<ListedCheckpoint> = Vec::new();
        let mut from = 0u64;
        loop {
            let page = self
                .get_json(
                    &format!("/v1/ledger/{name}/checkpoints?from_size={from}"),
                    false,
                )
                .await?;
            let list = page["checkpoints"]
                .as_array()
                .context("checkpoints page without `checkpoints`")?;
            for c in list {
                let number = cps.len() as u64;
                let note = c["note"].as_str().unwrap_or("");
                let cp = Checkpoint::open(note.as_bytes(), &origin, &mine)
                    .map_err(|e| anyhow!("checkpoint {number}: {e}"))?;
                if c["size"].as_u64() != Some(cp.size)
                    || c["root"].as_str() != Some(&B64.encode(cp.root))
                {
                    bail!(
                        "checkpoint {number}: the listed size/root differ from the signed note's ({} / {})",
                        cp.size,
                        B64.encode(cp.root)
                    );
                }
                if let Some(prev) = cps.last()
                    && cp.size <= prev.size
                {
                    bail!(
                        "checkpoint {number} at size {} does not grow from checkpoint {} at size {}",
                        cp.size,
                        prev.number,
                        prev.size
                    );
                }
                cps.push(ListedCheckpoint {
                    number,
                    size: cp.size,
                    root: cp.root,
                });
            }
            match page["next_from_size"].as_u64() {
                Some(n) if n > from => from = n,
                Some(_) => bail!("the checkpoints pages do not advance"),
                None => break,
            }
        }
        r.checkpoints = cps.len() as u64;
        r.signatures_checked = true;

        let entries_readable = self.token.is_some() && r.pruned_before == 0;
        if !entries_readable {
            if self.token.is_none() {
                r.notes.push(
                    "entries cannot be read without --token: checked checkpoint consistency only"
                        .into(),
                );
            } else {
                r.notes.push(format!(
                    "entry bodies below {} are pruned: checked checkpoint consistency only",
                    r.pruned_before
                ));
            }
            self.check_consistency(&name, &cps).await?;
            r.entries = size;
            r.ok = true;
            return Ok(());
        }

        // Every entry: recompute the tree and compare the root at every checkpoint.
        let target = size.max(cps.last().map_or(0, |c| c.size));
        let pb = bar(
            show_progress,
            target,
            "{msg} {bar:30} {pos}/{len} entries",
            format!("reading {name}"),
        );
        let mut frontier = CompactRange::new();
        let mut next_cp = 0usize;
        let mut start = 0u64;
        let result = async {
            while start < target {
                let end = (start + PAGE).min(target);
                let page = self
                    .get_json(
                        &format!("/v1/ledger/{name}/entries?start={start}&end={end}"),
                        true,
                    )
                    .await?;
                let entries = page["entries"]
                    .as_array()
                    .context("entries page without `entries`")?;
                for (k, e) in entries.iter().enumerate() {
                    let index = start + k as u64;
                    if e["index"].as_u64() != Some(index) {
                        bail!(
                            "entry {index} was not returned (the token must be the operator's or an auditor's to read every entry)"
                        );
                    }
                    let leaf = e["leaf"]
                        .as_str()
                        .and_then(|l| B64.decode(l).ok())
                        .with_context(|| format!("entry {index}: leaf is not base64"))?;
                    frontier.push(leaf_hash(&leaf), |_, _, _| {});
                    while let Some(cp) = cps.get(next_cp)
                        && cp.size == frontier.size()
                    {
                        if frontier.root() != cp.root {
                            let prev = next_cp.checked_sub(1).map_or(0, |p| cps[p].size);
                            let culprit = self.pinpoint(&name, cp, prev).await;
                            bail!(
                                "root of entries [0, {}) differs from checkpoint {}{}",
                                cp.size,
                                cp.number,
                                culprit
                            );
                        }
                        next_cp += 1;
                    }
                }
                if (entries.len() as u64) < end - start {
                    bail!(
                        "entry {} was not returned (the token must be the operator's or an auditor's to read every entry)",
                        start + entries.len() as u64
                    );
                }
                start = end;
                if let Some(b) = &pb {
                    b.set_position(start);
                }
            }
            anyhow::Ok(())
        }
        .await;
        if let Some(b) = pb {
            b.finish_and_clear();
        }
        result?;
        r.entries = frontier.size();
        r.tree_checked = true;
        r.ok = true;
        Ok(())
    }

    /// Which entry in `[prev, cp.size)` the server answers differently from what the
    /// checkpoint signed: the first whose inclusion proof against the checkpoint's root
    /// fails for the leaf it served.
    async fn pinpoint(&self, name: &str, cp: &ListedCheckpoint, prev: u64) -> String {
        let end = cp.size.min(prev + PINPOINT_LIMIT);
        for index in prev..end {
            let Ok(page) = self
                .get_json(
                    &format!("/v1/ledger/{name}/entries?start={index}&end={}", index + 1),
                    true,
                )
                .await
            else {
                break;
            };
            let Some(leaf) = page["entries"][0]["leaf"]
                .as_str()
                .and_then(|l| B64.decode(l).ok())
            else {
                break;
            };
            let Ok(p) = self
                .get_json(
                    &format!(
                        "/v1/ledger/{name}/proof/inclusion?index={index}&tree_size={}",
                        cp.size
                    ),
                    false,
                )
                .await
            else {
                break;
            };
            let path = decode_hashes(&p["hashes"]);
            if path.is_none_or(|path| {
                proof::verify_inclusion(&leaf_hash(&leaf), index, cp.size, &path, &cp.root).is_err()
            }) {
                return format!(" (first entry that does not prove into it: index {index})");
            }
        }
        format!(" (the change is among entries [{prev}, {}))", cp.size)
    }

    /// Consecutive checkpoints are consistent: an RFC 9162 proof from each to the next.
    async fn check_consistency(&self, name: &str, cps: &[ListedCheckpoint]) -> anyhow::Result<()> {
        for w in cps.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            let p = self
                .get_json(
                    &format!(
                        "/v1/ledger/{name}/proof/consistency?first={}&second={}",
                        a.size, b.size
                    ),
                    false,
                )
                .await?;
            let hashes = decode_hashes(&p["hashes"]).with_context(|| {
                format!("consistency proof {} → {}: bad hashes", a.size, b.size)
            })?;
            proof::verify_consistency(a.size, b.size, &hashes, &a.root, &b.root).map_err(|e| {
                anyhow!(
                    "checkpoint {} (size {}) is not consistent with checkpoint {} (size {}): {e}",
                    b.number,
                    b.size,
                    a.number,
                    a.size
                )
            })?;
        }
        Ok(())
    }
}

fn decode_hashes(v: &Value) -> Option<Vec<Hash>> {
    v.as_array()?
        .iter()
        .map(|h| {
            let raw = B64.decode(h.as_str()?).ok()?;
            <Hash>::try_from(raw.as_slice()).ok()
        })
        .collect()
}
