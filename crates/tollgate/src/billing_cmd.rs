//! `tollgate invoice` and `tollgate billing`: list, show, export, preview and prove
//! invoices, quote prices and close billing periods, through a running marketplace's
//! admin API. `invoice proof` re-checks an invoice locally from its proof bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use serde_json::{Value, json};
use tollgate_ledger::tree::{Hash, leaf_hash};
use tollgate_ledger::{Checkpoint, VerifierKey, proof};

use crate::client::{AdminClient, describe_problem};

// ---------------------------------------------------------------------------------------
// Command line

/// `tollgate invoice` subcommands.
#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// List the finalized invoices the token may see: those its orgs issued (providers)
    /// or received (consumers); an operator sees all.
    ///
    /// Prints a table (id, number, status, period, customer, total, currency) or, with
    /// --json, one JSON array of every invoice as the API returns it (all pages).
    ///
    /// Example:
    ///   tollgate invoice list --status finalized --mode live
    #[command(verbatim_doc_comment)]
    List(ListArgs),
    /// Show one invoice: its lines (quantity, tier breakdown, amount), totals, the ledger
    /// checkpoint it was computed from, and the key that signed it.
    ///
    /// Example:
    ///   tollgate invoice show inv_0195f0c8a1b27c3d9e4f5a6b7c8d9e0f
    #[command(verbatim_doc_comment)]
    Show(ShowArgs),
    /// Write one invoice as JSON (the signed document), CSV (its lines) or a printable
    /// HTML page, to standard output or a file.
    ///
    /// Example:
    ///   tollgate invoice export inv_0195f0c8a1b27c3d9e4f5a6b7c8d9e0f --format html -o march.html
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),
    /// Show the invoice a subscription's current period would get if it closed now: a
    /// provisional preview rated from the ledger so far, never stored.
    ///
    /// Example:
    ///   tollgate invoice preview 0195f0c8-a1b2-7c3d-9e4f-5a6b7c8d9e0f
    #[command(verbatim_doc_comment)]
    Preview(PreviewArgs),
    /// Fetch an invoice's proof bundle and verify it here, trusting nothing the server
    /// computed.
    ///
    /// The bundle (all pages, as one JSON document) holds the invoice, the signed ledger
    /// checkpoint it cites, every ledger entry it counted with an inclusion proof, the
    /// price books and the plan history. Four checks, each printed with its verdict:
    ///   checkpoint  the checkpoint note's signature (the server's verifier key, or --key),
    ///               and that it is the checkpoint the signed invoice cites
    ///   inclusion   every counted entry's inclusion proof leads to the checkpoint's root
    ///   signature   the invoice's Ed25519 signature over the RFC 8785 canonical JSON of
    ///               its document
    ///   lines       the usage lines recomputed from the entries, price books and plan
    ///               history equal the invoice's (base fees, taxes and prepaid credit
    ///               depend on account data that is not in the bundle)
    /// Exits 0 when every check passes, 1 otherwise.
    ///
    /// Examples:
    ///   tollgate invoice proof inv_0195f0c8a1b27c3d9e4f5a6b7c8d9e0f
    ///   tollgate invoice proof inv_0195f0c8a1b27c3d9e4f5a6b7c8d9e0f -o proof.json --no-verify
    #[command(verbatim_doc_comment)]
    Proof(ProofArgs),
}

/// `tollgate billing` subcommands.
#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Price one whole billing period of a plan or a price book for the usage you expect,
    /// exactly as an invoice would (no taxes, coupons or prepaid credit: those belong to
    /// a customer).
    ///
    /// Examples:
    ///   tollgate billing quote --plan 0195f0c8-a1b2-7c3d-9e4f-5a6b7c8d9e0f --quantity calls=120000
    ///   tollgate billing quote --price-book book.yaml --quantity calls=150 \
    ///     --amounts payments=12.50,80,4.99
    #[command(verbatim_doc_comment)]
    Quote(QuoteArgs),
    /// Finalize every invoice that is due (operators), then with --period make that
    /// month's payout statements.
    ///
    /// Lists every subscription and closes them one at a time (a progress bar on a
    /// terminal): each period whose end plus grace window has passed, by the wall clock
    /// or the subscription's test clock, gets its signed invoice. With --period 2026-03
    /// it then makes a payout for every provider, mode and currency among the invoices
    /// whose period starts in that UTC month; a payout already made is reported and left
    /// alone. Exits 1 if a subscription could not be closed or a payout failed.
    ///
    /// Examples:
    ///   tollgate billing close
    ///   tollgate billing close --period 2026-03 --json
    #[command(verbatim_doc_comment)]
    Close(CloseArgs),
}

/// How to reach the admin API.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Admin API base URL of the marketplace, e.g. `--url http://127.0.0.1:7700`.
    #[arg(
        long,
        visible_alias = "admin-url",
        env = "TOLLGATE_ADMIN_URL",
        default_value = "http://127.0.0.1:7700",
        value_name = "URL"
    )]
    pub url: String,
    /// Bearer token (the operator's or a personal one). Default: TOLLGATE_ADMIN_TOKEN,
    /// else <data-dir>/admin-token.
    #[arg(
        long,
        env = "TOLLGATE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Data directory to read the operator token from. [default: ./tollgate-data]
    #[arg(long, env = "TOLLGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Invoice states a list can be filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Status {
    /// Signed and owed.
    Finalized,
    /// Marked paid by the issuer.
    Paid,
    /// Voided by the issuer.
    Void,
}

/// Live or test mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Invoices of live-mode subscriptions.
    Live,
    /// Invoices of test-mode (sandbox) subscriptions.
    Test,
}

/// Options of `tollgate invoice list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the invoices of this subscription (its id).
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,
    /// Only invoices in this state.
    #[arg(long, value_enum)]
    pub status: Option<Status>,
    /// Only live or only test-mode invoices.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Print one JSON array of every invoice instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Options of `tollgate invoice show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The invoice's id (`inv_…`, the first column of `tollgate invoice list`).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print the invoice as the API returns it (document, signature, status) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Formats of `tollgate invoice export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The invoice with its signed document and signature.
    Json,
    /// One row per line, then the totals.
    Csv,
    /// A printable page.
    Html,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
            ExportFormat::Html => "html",
        }
    }
}

/// Options of `tollgate invoice export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The invoice's id (`inv_…`).
    #[arg(value_name = "ID")]
    pub id: String,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Options of `tollgate invoice preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The subscription's id.
    #[arg(value_name = "SUBSCRIPTION_ID")]
    pub subscription: String,
    /// Print the preview as the API returns it, as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Options of `tollgate invoice proof`.
#[derive(Debug, Args)]
pub struct ProofArgs {
    /// The invoice's id (`inv_…`).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Save the whole proof bundle as one JSON document in this file (`-` for standard
    /// output; the verdicts then go to standard error).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only fetch the bundle, do not verify it (prints it when no -o is given).
    #[arg(long)]
    pub no_verify: bool,
    /// A checkpoint verifier key `<origin>+<key id>+<base64 key>` to trust instead of
    /// the one the server sends (repeatable: give retired keys too), as served by
    /// `GET /v1/ledger/<log>/public-key`.
    #[arg(long = "key", value_name = "VERIFIER_KEY")]
    pub keys: Vec<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Options of `tollgate billing quote`.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// The plan to price (its current term sheet's price book).
    #[arg(
        long,
        value_name = "PLAN_ID",
        conflicts_with = "price_book",
        required_unless_present = "price_book"
    )]
    pub plan: Option<String>,
    /// A price book file (JSON or YAML, in the schema of a term sheet's
    /// `pricing.inline`; a whole term sheet works too). Decimals are strings: "0.50".
    #[arg(long, value_name = "FILE")]
    pub price_book: Option<PathBuf>,
    /// A meter's quantity for the period, before free units (repeatable), e.g.
    /// `--quantity calls=120000`.
    #[arg(long = "quantity", value_name = "METER=N", value_parser = parse_pair)]
    pub quantities: Vec<(String, String)>,
    /// The transaction amounts of a `sum` meter, in order (repeatable), e.g.
    /// `--amounts payments=12.50,80,4.99`; required for meters priced by percentage.
    #[arg(long = "amounts", value_name = "METER=A,B,…", value_parser = parse_pair)]
    pub amounts: Vec<(String, String)>,
    /// Print the quote as the API returns it, as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Options of `tollgate billing close`.
#[derive(Debug, Args)]
pub struct CloseArgs {
    /// After closing, make the payouts of this UTC month (`YYYY-MM`): invoices whose
    /// period starts in it are paid out, credit notes issued in it charged back.
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub period: Option<Month>,
    /// Print one JSON summary (subscriptions, invoices, credit_notes, errors, payouts)
    /// instead of text; no progress bar.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    year: i32,
    month: time::Month,
}

impl Month {
    fn start(self) -> time::OffsetDateTime {
        time::Date::from_calendar_date(self.year, self.month, 1)
            .expect("the first of a month exists")
            .midnight()
            .assume_utc()
    }

    fn next(self) -> Month {
        match self.month {
            time::Month::December => Month {
                year: self.year + 1,
                month: time::Month::January,
            },
            m => Month {
                year: self.year,
                month: m.next(),
            },
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month as u8)
    }
}

fn parse_month(s: &str) -> Result<Month, String> {
    let bad = || format!("{s:?} is not a month as YYYY-MM (2026-03)");
    let (y, m) = s.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u8 = m.parse().map_err(|_| bad())?;
    let month = time::Month::try_from(month).map_err(|_| bad())?;
    Ok(Month { year, month })
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        }
        _ => Err(format!("{s:?} is not METER=VALUE")),
    }
}

pub async fn invoice(cmd: InvoiceCommand) -> anyhow::Result<()> {
    match cmd {
        InvoiceCommand::List(a) => list(a).await,
        InvoiceCommand::Show(a) => show(a).await,
        InvoiceCommand::Export(a) => export(a).await,
        InvoiceCommand::Preview(a) => preview(a).await,
        InvoiceCommand::Proof(a) => prove(a).await,
    }
}

pub async fn billing(cmd: BillingCommand) -> anyhow::Result<()> {
    match cmd {
        BillingCommand::Quote(a) => quote(a).await,
        BillingCommand::Close(a) => close(a).await,
    }
}

// ---------------------------------------------------------------------------------------
// Talking to the admin API

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Empty<Bytes>,
>;

/// The admin API: JSON calls through [`AdminClient`], and raw GETs for the text formats
/// (CSV, HTML) it cannot parse.
struct Api {
    json: AdminClient,
    raw: HttpClient,
    base: String,
    token: String,
}

impl Conn {
    fn connect(&self) -> anyhow::Result<Api> {
        let token = match (
            self.token.clone().filter(|t| !t.is_empty()),
            std::env::var("TOLLGATE_ADMIN_TOKEN"),
        ) {
            (Some(t), _) => t,
            (None, Ok(t)) if !t.is_empty() => t,
            (None, _) => {
                let dir = self
                    .data_dir
                    .clone()
                    .unwrap_or_else(crate::default_data_dir);
                let path = dir.join("admin-token");
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no token given (--token, TOLLGATE_TOKEN) and cannot read {}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
        };
        let json = AdminClient::http(&self.url, token.clone())?;
        let raw = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
        Ok(Api {
            json,
            raw,
            base: self.url.trim_end_matches('/').to_owned(),
            token,
        })
    }
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.json
            .get(path)
            .await
            .with_context(|| format!("GET {path}"))
    }

    /// GET `path` as bytes, whatever their type; a problem body becomes the error.
    async fn get_bytes(&self, path: &str) -> anyhow::Result<Bytes> {
        let uri = format!("{}{path}", self.base);
        let req = Request::get(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Empty::new())?;
        let fetch = async {
            let resp = self.raw.request(req).await.with_context(|| {
                format!("cannot reach the admin API at {uri}; is `tollgate serve` running?")
            })?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(Duration::from_secs(60), fetch)
            .await
            .with_context(|| format!("GET {uri}: no answer within 60 s"))??;
        if !status.is_success() {
            let problem = serde_json::from_slice(&body).unwrap_or(Value::Null);
            bail!("GET {path}: {}", describe_problem(status, &problem));
        }
        Ok(body)
    }
}

/// Percent-encodes one path segment or query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_output(path: Option<&PathBuf>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))
        }
        _ => {
            out!("{}", String::from_utf8_lossy(bytes));
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// invoice list, show, export, preview

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let api = args.conn.connect()?;
    let mut query = Vec::new();
    if let Some(sub) = &args.subscription {
        query.push(format!("subscription_id={}", enc(sub)));
    }
    if let Some(st) = args.status {
        query.push(format!(
            "status={}",
            st.to_possible_value().expect("no hidden values").get_name()
        ));
    }
    if let Some(m) = args.mode {
        query.push(format!(
            "mode={}",
            m.to_possible_value().expect("no hidden values").get_name()
        ));
    }
    let path = if query.is_empty() {
        "/v1/invoices".to_owned()
    } else {
        format!("/v1/invoices?{}", query.join("&"))
    };
    let items = api.json.list_all(&path).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if items.is_empty() {
        outln!("no invoices");
        return Ok(());
    }
    outln!(
        "{:<36}  {:<16}  {:<9}  {:<23}  {:<36}  {:>12}  CURRENCY",
        "ID",
        "NUMBER",
        "STATUS",
        "PERIOD",
        "CUSTOMER",
        "TOTAL"
    );
    for i in &items {
        outln!(
            "{:<36}  {:<16}  {:<9}  {:<23}  {:<36}  {:>12}  {}",
            s(i, "/id"),
            s(i, "/number"),
            s(i, "/status"),
            format!(
                "{} – {}",
                day(s(i, "/period/start")),
                day(s(i, "/period/end"))
            ),
            s(i, "/customer_org_id"),
            s(i, "/total"),
            s(i, "/currency")
        );
    }
    Ok(())
}

/// The date of an RFC 3339 time.
fn day(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let api = args.conn.connect()?;
    let inv = api.get(&format!("/v1/invoices/{}", enc(&args.id))).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&inv)?);
        return Ok(());
    }
    let doc = &inv["document"];
    outln!(
        "Invoice {} ({}, {}, {})",
        s(&inv, "/number"),
        s(&inv, "/status"),
        s(&inv, "/mode"),
        s(&inv, "/kind")
    );
    outln!("  id            {}", s(&inv, "/id"));
    outln!("  issuer        {}", s(&inv, "/issuer_org_id"));
    outln!("  customer      {}", s(&inv, "/customer_org_id"));
    outln!("  subscription  {}", s(&inv, "/subscription_id"));
    outln!(
        "  period        {} → {}",
        s(&inv, "/period/start"),
        s(&inv, "/period/end")
    );
    outln!("  finalized at  {}", s(doc, "/finalized_at"));
    if s(&inv, "/status") != "finalized" {
        outln!(
            "  {:<13} {}",
            format!("{} at", s(&inv, "/status")),
            s(&inv, "/status_at")
        );
    }
    if let Some(clock) = doc.get("test_clock_id").and_then(Value::as_str) {
        outln!("  test clock    {clock}");
    }
    outln!("");
    print_invoice(&doc["invoice"]);
    let ledger = &doc["ledger"];
    outln!("");
    outln!("Ledger checkpoint");
    outln!(
        "  log {} (origin {}), size {}, root {}",
        s(ledger, "/log"),
        s(ledger, "/origin"),
        ledger.pointer("/checkpoint/size").unwrap_or(&Value::Null),
        s(ledger, "/checkpoint/root")
    );
    outln!(
        "  entries counted {}, late usage from leaf index {}",
        ledger.get("entries_counted").unwrap_or(&Value::Null),
        ledger.get("previous_size").unwrap_or(&Value::Null)
    );
    outln!("");
    outln!("Signature");
    outln!(
        "  {} by key {} over {}",
        s(&inv, "/signature/algorithm"),
        s(&inv, "/signature/key_id"),
        s(&inv, "/signature/signed")
    );
    outln!(
        "  check it, and the lines against the ledger: tollgate invoice proof {}",
        s(&inv, "/id")
    );
    Ok(())
}

/// The lines and totals of a rated invoice (`RatedInvoice` as JSON).
fn print_invoice(inv: &Value) {
    let currency = s(inv, "/currency");
    let lines = inv["lines"].as_array().map_or(&[][..], Vec::as_slice);
    print_lines(lines, currency);
    outln!("");
    for (label, key) in [
        ("subtotal", "subtotal"),
        ("discounts", "discounts"),
        ("tax", "tax"),
        ("total", "total"),
        ("amount due", "amount_due"),
    ] {
        let v = s(inv, &format!("/{key}"));
        // Zero discounts and taxes say nothing.
        if matches!(key, "discounts" | "tax") && is_zero(v) {
            continue;
        }
        outln!("  {label:<58} {v:>12} {currency}");
    }
    let consumed = s(inv, "/wallet/consumed");
    if !consumed.is_empty() && !is_zero(consumed) {
        outln!(
            "  prepaid credit: {} consumed, {} left",
            consumed,
            s(inv, "/wallet/balance_after")
        );
    }
}

/// A decimal string without the trailing zeros of its fraction (`1.50` → `1.5`).
fn trim_zeros(v: &str) -> &str {
    if v.contains('.') {
        v.trim_end_matches('0').trim_end_matches('.')
    } else {
        v
    }
}

fn is_zero(v: &str) -> bool {
    v.is_empty()
        || v.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
}

/// Invoice or quote lines: description and amount, then what the amount is made of.
fn print_lines(lines: &[Value], currency: &str) {
    if lines.is_empty() {
        outln!("  (no lines)");
        return;
    }
    for (n, l) in lines.iter().enumerate() {
        let mut title = s(l, "/description").to_owned();
        if l["late"].as_bool() == Some(true) {
            title.push_str(" (late usage)");
        }
        outln!(
            "  {:>2}. {:<54} {:>12} {currency}",
            n + 1,
            title,
            s(l, "/amount")
        );
        let mut detail = Vec::new();
        if let Some(p) = l.get("service_period").filter(|p| p.is_object()) {
            detail.push(format!("for {} → {}", s(p, "/start"), s(p, "/end")));
        }
        if let Some(q) = l.get("quantity").and_then(Value::as_str) {
            let mut text = format!("quantity {q}");
            if let Some(f) = l.get("free_units").and_then(Value::as_str) {
                text.push_str(&format!(", {f} free"));
            }
            if let Some(u) = l.get("unit_price").and_then(Value::as_str) {
                text.push_str(&format!(", at {u} each"));
            }
            detail.push(text);
        }
        if let (Some(p), Some(b)) = (
            l.get("percent").and_then(Value::as_str),
            l.get("base_amount").and_then(Value::as_str),
        ) {
            detail.push(format!("{p} % of {b}"));
        }
        if let Some(p) = l.get("percentage").filter(|p| p.is_object()) {
            detail.push(format!(
                "{} of gross {} charged, {} free",
                plural(
                    p["charged_events"].as_u64().unwrap_or(0) as usize,
                    "transaction",
                    "transactions"
                ),
                s(p, "/gross_amount"),
                s(p, "/free_amount_used")
            ));
        }
        for d in detail {
            outln!("        {d}");
        }
        for t in l["tiers"].as_array().into_iter().flatten() {
            let to = t["to"].as_str().unwrap_or("∞");
            let mut text = format!(
                "tier {}–{to}: {} × {}",
                s(t, "/from"),
                s(t, "/units"),
                s(t, "/unit_price")
            );
            if !is_zero(s(t, "/flat_fee")) {
                text.push_str(&format!(" + {} flat", s(t, "/flat_fee")));
            }
            text.push_str(&format!(" = {}", s(t, "/amount")));
            outln!("        {text}");
        }
        let exact = s(l, "/amount_unrounded");
        if !exact.is_empty() && trim_zeros(exact) != trim_zeros(s(l, "/amount")) {
            outln!("        exactly {exact}, rounded once");
        }
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let api = args.conn.connect()?;
    let body = api
        .get_bytes(&format!(
            "/v1/invoices/{}?format={}",
            enc(&args.id),
            args.format.as_str()
        ))
        .await?;
    let bytes = if args.format == ExportFormat::Json {
        let v: Value = serde_json::from_slice(&body).context("the invoice is not JSON")?;
        let mut text = serde_json::to_string_pretty(&v)?;
        text.push('\n');
        Bytes::from(text)
    } else {
        body
    };
    write_output(args.output.as_ref(), &bytes)?;
    if let Some(p) = &args.output
        && p.as_os_str() != "-"
    {
        eprintln!("wrote {} ({} bytes)", p.display(), bytes.len());
    }
    Ok(())
}

async fn preview(args: PreviewArgs) -> anyhow::Result<()> {
    let api = args.conn.connect()?;
    let up = api
        .get(&format!(
            "/v1/subscriptions/{}/upcoming-invoice",
            enc(&args.subscription)
        ))
        .await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&up)?);
        return Ok(());
    }
    let inv = &up["invoice"];
    outln!(
        "Upcoming invoice of subscription {} ({}, {}): not stored, not signed",
        s(&up, "/subscription_id"),
        s(&up, "/mode"),
        s(inv, "/status")
    );
    outln!(
        "  period        {} → {}",
        s(inv, "/period/start"),
        s(inv, "/period/end")
    );
    outln!("  as of         {}", s(&up, "/now"));
    if let Some(clock) = up.get("test_clock_id").and_then(Value::as_str) {
        outln!("  test clock    {clock}");
    }
    outln!(
        "  ledger        {} log, first {} entries",
        s(&up, "/ledger/log"),
        up.pointer("/ledger/size").unwrap_or(&Value::Null)
    );
    outln!("");
    print_invoice(inv);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// invoice proof

/// One check's verdict.
enum Verdict {
    Ok(String),
    Failed(String),
    Skipped(String),
}

async fn prove(args: ProofArgs) -> anyhow::Result<()> {
    let keys = args
        .keys
        .iter()
        .map(|k| VerifierKey::parse(k.trim()).map_err(|e| anyhow!("--key: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let api = args.conn.connect()?;
    let base = format!("/v1/invoices/{}/proof", enc(&args.id));
    let mut bundle = api.get(&base).await?;
    let mut entries = bundle["entries"].as_array().cloned().unwrap_or_default();
    let mut cursor = bundle["next_cursor"].as_u64();
    while let Some(c) = cursor {
        let page = api.get(&format!("{base}?cursor={c}")).await?;
        let more = page["entries"]
            .as_array()
            .context("a proof page without `entries`")?;
        entries.extend(more.iter().cloned());
        cursor = match page["next_cursor"].as_u64() {
            Some(n) if n > c => Some(n),
            Some(_) => bail!("the proof's pages do not advance"),
            None => None,
        };
    }
    bundle["entries"] = Value::Array(entries);
    bundle["next_cursor"] = Value::Null;

    let to_stdout = args.output.as_ref().is_some_and(|p| p.as_os_str() == "-")
        || (args.output.is_none() && args.no_verify);
    if args.output.is_some() || to_stdout {
        let mut text = serde_json::to_string_pretty(&bundle)?;
        text.push('\n');
        write_output(args.output.as_ref(), text.as_bytes())?;
        if let Some(p) = args.output.as_ref().filter(|p| p.as_os_str() != "-") {
            eprintln!("wrote the proof bundle to {}", p.display());
        }
    }
    if args.no_verify {
        return Ok(());
    }

    // The terms an event without its own term sheet hash is rated under: the
    // subscription's current ones, as the server does, else the plan history's last.
    let sub = s(&bundle, "/selection/subscription_id").to_owned();
    let current_terms = match api.get(&format!("/v1/subscriptions/{}", enc(&sub))).await {
        Ok(v) => v["terms_sha256"].as_str().map(str::to_owned),
        Err(_) => None,
    };
    let verdicts = verify_bundle(&bundle, &keys, current_terms.as_deref());
    let say = |line: String| {
        if to_stdout {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
    };
    say(format!(
        "invoice {} ({}): {} counted",
        s(&bundle, "/invoice/number"),
        s(&bundle, "/invoice/id"),
        plural(
            bundle["entries"].as_array().map_or(0, Vec::len),
            "ledger entry",
            "ledger entries"
        )
    ));
    let mut failed = 0;
    for (name, v) in &verdicts {
        match v {
            Verdict::Ok(m) => say(format!("  {name:<10} ok: {m}")),
            Verdict::Skipped(m) => say(format!("  {name:<10} skipped: {m}")),
            Verdict::Failed(m) => {
                failed += 1;
                say(format!("  {name:<10} FAILED: {m}"));
            }
        }
    }
    if failed > 0 {
        bail!(
            "the invoice's proof does not hold ({failed} of {} checks failed)",
            verdicts.len()
        );
    }
    Ok(())
}

fn b64(v: &Value) -> Option<Vec<u8>> {
    B64.decode(v.as_str()?).ok()
}

/// Runs every check of a proof bundle, each independent of the others' outcome.
fn verify_bundle(
    bundle: &Value,
    keys: &[VerifierKey],
    current_terms: Option<&str>,
) -> Vec<(&'static str, Verdict)> {
    let verdict =
        |r: anyhow::Result<Verdict>| r.unwrap_or_else(|e| Verdict::Failed(format!("{e:#}")));
    vec![
        ("checkpoint", verdict(check_checkpoint(bundle, keys))),
        ("inclusion", verdict(check_inclusion(bundle))),
        ("signature", verdict(check_signature(bundle))),
        ("lines", verdict(check_lines(bundle, current_terms))),
    ]
}

/// The checkpoint note is signed by the log's key, and is the one the signed invoice
/// cites.
fn check_checkpoint(bundle: &Value, given: &[VerifierKey]) -> anyhow::Result<Verdict> {
    let origin = s(bundle, "/origin");
    let keys = if given.is_empty() {
        let text = bundle["checkpoint_verifier_key"]
            .as_str()
            .context("the bundle has no checkpoint verifier key (pass --key)")?;
        vec![VerifierKey::parse(text.trim()).map_err(|e| anyhow!("its verifier key: {e}"))?]
    } else {
        given.to_vec()
    };
    let note = s(bundle, "/checkpoint/note");
    let cp = Checkpoint::open(note.as_bytes(), origin, &keys)
        .map_err(|e| anyhow!("the checkpoint note does not verify: {e}"))?;
    let cited = bundle
        .pointer("/invoice/document/ledger/checkpoint")
        .context("the invoice document cites no checkpoint")?;
    if cited.get("note").and_then(Value::as_str) != Some(note) {
        bail!("the checkpoint is not the one the invoice document cites");
    }
    let root = B64.encode(cp.root);
    if cited["size"].as_u64() != Some(cp.size) || cited["root"].as_str() != Some(root.as_str()) {
        bail!(
            "the invoice cites size {} root {}, the signed note says size {} root {root}",
            cited["size"],
            cited["root"],
            cp.size
        );
    }
    let whose = if given.is_empty() {
        "the server's current key (pass --key to use your own copy)"
    } else {
        "the key given"
    };
    Ok(Verdict::Ok(format!(
        "{origin} at size {}, root {root}, signed by {whose}",
        cp.size
    )))
}

/// Every counted entry's inclusion proof leads to the cited checkpoint's root.
fn check_inclusion(bundle: &Value) -> anyhow::Result<Verdict> {
    let cited = bundle
        .pointer("/invoice/document/ledger/checkpoint")
        .context("the invoice document cites no checkpoint")?;
    let size = cited["size"]
        .as_u64()
        .context("the cited checkpoint has no size")?;
    let root: Hash = b64(&cited["root"])
        .and_then(|r| r.try_into().ok())
        .context("the cited checkpoint's root is not a base64 hash")?;
    let entries = bundle["entries"].as_array().map_or(&[][..], Vec::as_slice);
    for e in entries {
        let index = e["index"].as_u64().context("an entry without an index")?;
        if index >= size {
            bail!("entry {index} is beyond the checkpoint's size {size}");
        }
        let leaf = b64(&e["leaf"]).with_context(|| format!("entry {index}: leaf is not base64"))?;
        let path = e["inclusion_proof"]
            .as_array()
            .and_then(|p| {
                p.iter()
                    .map(|h| b64(h).and_then(|h| <Hash>::try_from(h.as_slice()).ok()))
                    .collect::<Option<Vec<Hash>>>()
            })
            .with_context(|| format!("entry {index}: the inclusion proof is not base64 hashes"))?;
        let got = proof::root_from_inclusion(&leaf_hash(&leaf), index, size, &path)
            .map_err(|e| anyhow!("entry {index}: {e}"))?;
        if got != root {
            bail!("entry {index} does not prove into the checkpoint's root");
        }
    }
    let counted = bundle
        .pointer("/invoice/document/ledger/entries_counted")
        .and_then(Value::as_u64);
    let total = bundle["entries_total"].as_u64();
    let n = entries.len() as u64;
    if total.is_some_and(|t| t != n) || counted.is_some_and(|c| c != n) {
        bail!(
            "{n} entries in the bundle, but the server says {} and the invoice counted {}",
            bundle["entries_total"],
            counted.map_or("?".to_owned(), |c| c.to_string())
        );
    }
    Ok(Verdict::Ok(format!(
        "{} under the checkpoint's root at size {size}",
        plural(entries.len(), "entry", "entries")
    )))
}

/// The invoice's Ed25519 signature over the canonical JSON of its document.
fn check_signature(bundle: &Value) -> anyhow::Result<Verdict> {
    let inv = &bundle["invoice"];
    let key_id = s(inv, "/signature/key_id");
    let pk = b64(&bundle["invoice_public_key"]).with_context(|| {
        format!("the server no longer holds the public key of invoice signing key {key_id}")
    })?;
    let sig = b64(&inv["signature"]["value"]).context("the signature is not base64")?;
    let msg = serde_jcs::to_vec(&inv["document"]).context("cannot canonicalize the document")?;
    tollgate_keyring::verify_ed25519(&pk, &msg, &sig)
        .map_err(|_| anyhow!("the signature of key {key_id} does not verify over the document"))?;
    Ok(Verdict::Ok(format!(
        "Ed25519 by key {key_id} over the RFC 8785 canonical JSON of the document"
    )))
}

/// The usage lines recomputed from the proved entries, price books and plan history.
fn check_lines(bundle: &Value, current_terms: Option<&str>) -> anyhow::Result<Verdict> {
    let doc = &bundle["invoice"]["document"];
    if s(doc, "/kind") != "period" {
        return Ok(Verdict::Skipped(format!(
            "a {} invoice counts no usage",
            s(doc, "/kind")
        )));
    }
    let books: BTreeMap<String, tollgate_billing::PriceBook> =
        serde_json::from_value(bundle["price_books"].clone())
            .context("the bundle's price books are not ones this client understands")?;
    let history: tollgate_billing::Subscription =
        serde_json::from_value(bundle["plan_history"].clone())
            .context("the bundle's plan history is not one this client understands")?;
    let stored: tollgate_billing::RatedInvoice = serde_json::from_value(doc["invoice"].clone())
        .context("the invoice's lines are not ones this client understands")?;
    let fallback = history
        .changes
        .last()
        .map_or(history.term_sheet.as_str(), |c| c.term_sheet.as_str());
    let current = current_terms.unwrap_or(fallback);
    let mut events = Vec::new();
    for e in bundle["entries"].as_array().into_iter().flatten() {
        let index = &e["index"];
        // The event is read from the proved leaf, not from the bundle's decoded copy.
        let leaf = b64(&e["leaf"]).with_context(|| format!("entry {index}: leaf is not base64"))?;
        let event = tollgate_core::usage::UsageEvent::from_leaf(&leaf)
            .map_err(|err| anyhow!("entry {index}: {err}"))?;
        // Events the server cannot rate (no parsable time) are left out there too.
        if let Some(ev) = tollgate_server::billing::rating_event(&event, current) {
            events.push(ev);
        }
    }
    let recomputed = tollgate_billing::rate(&tollgate_billing::RatingInput {
        subscription: &history,
        books: &books,
        period: stored.period,
        events: &events,
        wallet_balance: Default::default(),
        coupons: &[],
        taxes: &[],
        now: stored.period.end,
    })
    .map_err(|e| anyhow!("cannot rate the entries: {e}"))?;
    let usage = |lines: &[tollgate_billing::InvoiceLine]| -> Vec<tollgate_billing::InvoiceLine> {
        lines
            .iter()
            .filter(|l| l.kind == tollgate_billing::LineKind::Usage)
            .cloned()
            .collect()
    };
    let (mine, theirs) = (usage(&recomputed.lines), usage(&stored.lines));
    if mine != theirs {
        let k = mine
            .iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(mine.len().min(theirs.len()));
        let show = |l: Option<&tollgate_billing::InvoiceLine>| {
            l.map_or("no line".to_owned(), |l| {
                format!(
                    "{:?}: quantity {}, amount {}",
                    l.description,
                    l.quantity.map_or("-".to_owned(), |q| q.to_string()),
                    l.amount
                )
            })
        };
        bail!(
            "{} recomputed, {} on the invoice; usage line {} differs: the invoice says {}, the entries give {}",
            plural(mine.len(), "usage line", "usage lines"),
            theirs.len(),
            k + 1,
            show(theirs.get(k)),
            show(mine.get(k))
        );
    }
    Ok(Verdict::Ok(format!(
        "{} recomputed from {} equal the invoice's",
        plural(mine.len(), "usage line", "usage lines"),
        plural(events.len(), "event", "events")
    )))
}

// ---------------------------------------------------------------------------------------
// billing quote, close

async fn quote(args: QuoteArgs) -> anyhow::Result<()> {
    let mut quantities = BTreeMap::new();
    for (meter, q) in &args.quantities {
        if quantities.insert(meter.clone(), json!(q)).is_some() {
            bail!("--quantity {meter} is given twice");
        }
    }
    let mut amounts = BTreeMap::new();
    for (meter, list) in &args.amounts {
        let list: Vec<Value> = list.split(',').map(|a| json!(a.trim())).collect();
        if amounts.insert(meter.clone(), Value::Array(list)).is_some() {
            bail!("--amounts {meter} is given twice");
        }
    }
    let usage = json!({"quantities": quantities, "amounts": amounts});
    let body = match (&args.plan, &args.price_book) {
        (Some(plan), None) => json!({"plan_id": plan, "usage": usage}),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let doc: Value = if text.trim_start().starts_with('{') {
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", file.display()))?
            } else {
                yaml_serde::from_str(&text)
                    .with_context(|| format!("{} is not YAML", file.display()))?
            };
            // A whole term sheet: its inline price book.
            let book = doc.pointer("/pricing/inline").cloned().unwrap_or(doc);
            json!({"price_book": book, "usage": usage})
        }
        _ => bail!("give exactly one of --plan and --price-book"),
    };
    let api = args.conn.connect()?;
    let q = api.json.post("/v1/billing/quote", &body).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&q)?);
        return Ok(());
    }
    let currency = s(&q, "/currency");
    outln!(
        "Quote for one whole period of price book {} version {} ({})",
        s(&q, "/price_book/id"),
        s(&q, "/price_book/version"),
        currency
    );
    outln!("");
    print_lines(
        q["lines"].as_array().map_or(&[][..], Vec::as_slice),
        currency,
    );
    outln!("");
    outln!("  {:<58} {:>12} {currency}", "total", s(&q, "/total"));
    outln!("  (before taxes, coupons and prepaid credit, which depend on the customer)");
    Ok(())
}

/// The sum of the per-subscription close reports.
#[derive(Debug, Default, serde::Serialize)]
struct CloseSummary {
    /// Subscriptions looked at.
    subscriptions: usize,
    subscription_ids: Vec<String>,
    invoices: Vec<String>,
    credit_notes: Vec<String>,
    errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payouts: Option<PayoutSummary>,
}

#[derive(Debug, Default, serde::Serialize)]
struct PayoutSummary {
    period: String,
    /// Payouts made now.
    made: Vec<Value>,
    /// Payouts that existed already (409).
    existing: Vec<Value>,
    errors: Vec<String>,
}

async fn close(args: CloseArgs) -> anyhow::Result<()> {
    let api = args.conn.connect()?;
    let subs = api.json.list_all("/v1/subscriptions").await?;
    let mut sum = CloseSummary {
        subscriptions: subs.len(),
        ..CloseSummary::default()
    };
    let show_progress = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = show_progress.then(|| {
        let b = indicatif::ProgressBar::new(subs.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("closing {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    for sub in &subs {
        let id = s(sub, "/id").to_owned();
        let path = format!("/v1/billing/close?subscription_id={}", enc(&id));
        match api.json.send(Method::POST, &path, None, None).await {
            Ok(r) if r.status.is_success() => {
                let strings = |k: &str| -> Vec<String> {
                    r.body[k]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                };
                sum.invoices.extend(strings("invoices"));
                sum.credit_notes.extend(strings("credit_notes"));
                sum.errors.extend(strings("errors"));
            }
            Ok(r) => sum.errors.push(format!(
                "subscription {id}: {}",
                describe_problem(r.status, &r.body)
            )),
            Err(e) => sum.errors.push(format!("subscription {id}: {e:#}")),
        }
        sum.subscription_ids.push(id);
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(month) = args.period {
        sum.payouts = Some(payouts(&api, month).await?);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&sum)?);
    } else {
        print_close(&sum);
    }
    let payout_errors = sum.payouts.as_ref().map_or(0, |p| p.errors.len());
    if !sum.errors.is_empty() || payout_errors > 0 {
        bail!(
            "billing close failed: {} and {}",
            plural(
                sum.errors.len(),
                "subscription error",
                "subscription errors"
            ),
            plural(payout_errors, "payout error", "payout errors")
        );
    }
    Ok(())
}

/// Makes the payouts of `month`: one per provider, mode and currency among the invoices
/// whose period starts in it.
async fn payouts(api: &Api, month: Month) -> anyhow::Result<PayoutSummary> {
    let (from, to) = (month.start(), month.next().start());
    let invoices = api.json.list_all("/v1/invoices").await?;
    let mut groups = BTreeSet::new();
    for i in &invoices {
        let Ok(start) = time::OffsetDateTime::parse(
            s(i, "/period/start"),
            &time::format_description::well_known::Rfc3339,
        ) else {
            continue;
        };
        if start >= from && start < to {
            groups.insert((
                s(i, "/issuer_org_id").to_owned(),
                s(i, "/mode").to_owned(),
                s(i, "/currency").to_owned(),
            ));
        }
    }
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut out = PayoutSummary {
        period: month.to_string(),
        ..PayoutSummary::default()
    };
    for (provider, mode, currency) in groups {
        let body = json!({
            "provider_org_id": provider, "mode": mode, "currency": currency,
            "period_start": rfc(from), "period_end": rfc(to),
        });
        let what = json!({"provider_org_id": provider, "mode": mode, "currency": currency});
        match api
            .json
            .send(Method::POST, "/v1/payouts", Some(&body), None)
            .await
        {
            Ok(r) if r.status.is_success() => out.made.push(json!({
                "id": r.body["id"], "provider_org_id": provider, "mode": mode,
                "currency": currency, "net_payable": r.body["net_payable"],
            })),
            Ok(r) if r.status == StatusCode::CONFLICT => out.existing.push(what),
            Ok(r) => out.errors.push(format!(
                "provider {provider} ({mode}, {currency}): {}",
                describe_problem(r.status, &r.body)
            )),
            Err(e) => out
                .errors
                .push(format!("provider {provider} ({mode}, {currency}): {e:#}")),
        }
    }
    Ok(out)
}

fn print_close(sum: &CloseSummary) {
    outln!(
        "closed {}: {} finalized, {} issued, {}",
        plural(sum.subscriptions, "subscription", "subscriptions"),
        plural(sum.invoices.len(), "invoice", "invoices"),
        plural(sum.credit_notes.len(), "credit note", "credit notes"),
        plural(sum.errors.len(), "error", "errors")
    );
    for i in &sum.invoices {
        outln!("  invoice {i}");
    }
    for n in &sum.credit_notes {
        outln!("  credit note {n}");
    }
    for e in &sum.errors {
        outln!("  error: {e}");
    }
    if let Some(p) = &sum.payouts {
        outln!(
            "payouts of {}: {} made, {} already made, {}",
            p.period,
            p.made.len(),
            p.existing.len(),
            plural(p.errors.len(), "error", "errors")
        );
        for m in &p.made {
            outln!(
                "  payout {} to {} ({}): net {} {}",
                s(m, "/id"),
                s(m, "/provider_org_id"),
                s(m, "/mode"),
                s(m, "/net_payable"),
                s(m, "/currency")
            );
        }
        for m in &p.existing {
            outln!(
                "  already made: {} ({}, {})",
                s(m, "/provider_org_id"),
                s(m, "/mode"),
                s(m, "/currency")
            );
        }
        for e in &p.errors {
            outln!("  error: {e}");
        }
    }
}
