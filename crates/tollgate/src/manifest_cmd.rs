//! `tollgate apply`, `tollgate export` and `tollgate keys`: clients of a running
//! marketplace's admin API.

use crate::client::AdminClient;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use tollgate_core::model::{
    Acceptance, Api, App, Org, Plan, PublishedKey, Subscription, TermSheet, VerificationKey,
};
use tollgate_manifest::{Catalog, Ids, Step};

/// How to reach the admin API.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Admin API base URL.
    #[arg(
        long,
        env = "TOLLGATE_ADMIN_URL",
        default_value = "http://127.0.0.1:7700",
        value_name = "URL"
    )]
    pub admin_url: String,
    /// Bearer token (operator or personal). Default: TOLLGATE_ADMIN_TOKEN, else
    /// <data-dir>/admin-token.
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

impl Conn {
    pub fn client(&self) -> anyhow::Result<AdminClient> {
        let token = match (&self.token, std::env::var("TOLLGATE_ADMIN_TOKEN")) {
            (Some(t), _) => t.clone(),
            (None, Ok(t)) => t,
            (None, Err(_)) => {
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
        AdminClient::http(&self.admin_url, token)
    }
}

/// Options of `tollgate apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A manifest file (YAML, TOML or JSON) or a folder of them.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: PathBuf,
    /// Print the changes without making them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Output format of `tollgate export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Yaml,
    Toml,
}

/// Options of `tollgate export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Manifest format.
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

/// `tollgate keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the keyring: id, purpose, state and dates of every key (no secrets).
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Rotate the key of one purpose; the old key keeps verifying for the overlap.
    Rotate {
        /// checkpoint_signing, invoice_signing, acceptance_signing, token_signing,
        /// gateway_assertion, webhook_secret or data_encryption.
        purpose: String,
        /// Seconds the old key stays usable for verification (default per purpose; 0
        /// retires it at once, e.g. after a compromise).
        #[arg(long, value_name = "SECONDS")]
        overlap: Option<u64>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { json, conn } => {
            let keys = conn.client()?.get("/v1/keys").await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            outln!(
                "{:<36}  {:<20}  {:<10}  {:<9}  ACTIVATED",
                "ID",
                "PURPOSE",
                "ALGORITHM",
                "STATE"
            );
            for k in keys.as_array().into_iter().flatten() {
                let s = |f: &str| k.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                outln!(
                    "{:<36}  {:<20}  {:<10}  {:<9}  {}",
                    s("id"),
                    s("purpose"),
                    s("algorithm"),
                    s("state"),
                    s("activated_at")
                );
            }
            Ok(())
        }
        KeysCommand::Rotate {
            purpose,
            overlap,
            json,
            conn,
        } => {
            let body = match overlap {
                Some(o) => json!({"overlap_seconds": o}),
                None => json!({}),
            };
            let out = conn
                .client()?
                .post(&format!("/v1/keys/{purpose}/rotate"), &body)
                .await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                outln!(
                    "rotated {purpose}: new key {} is active; {} older key(s) updated",
                    out.pointer("/new/id")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    out.get("updated")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                );
            }
            Ok(())
        }
    }
}

/// Reads the catalog the caller can manage: its orgs and their APIs (with OpenAPI
/// documents), term sheets (drafts and published), plans, apps, the subscriptions of
/// those apps (each with its signed acceptance records) and the public keys that verify
/// acceptance records here. Catalog entries of other orgs (such as their published term
/// sheets) are not part of it.
async fn fetch_catalog(c: &AdminClient) -> anyhow::Result<Catalog> {
    let orgs: Vec<Org> = parse(c.list_all("/v1/orgs").await?)?;
    let mine: std::collections::HashSet<_> = orgs.iter().map(|o| o.id).collect();
    let apis: Vec<Api> = parse(c.list_all("/v1/apis").await?)?;
    let mut with_docs = Vec::new();
    for api in apis.into_iter().filter(|a| mine.contains(&a.org_id)) {
        let doc = if api.openapi.is_some() {
            let r = c
                .send(
                    http::Method::GET,
                    &format!("/v1/apis/{}/openapi", api.id),
                    None,
                    None,
                )
                .await?;
            if r.status.is_success() {
                Some(r.body)
            } else {
                None
            }
        } else {
            None
        };
        with_docs.push((api, doc));
    }
    let plans: Vec<Plan> = parse(c.list_all("/v1/plans").await?)?;
    let apps: Vec<App> = parse(c.list_all("/v1/apps").await?)?;
    let terms: Vec<TermSheet> = parse(c.list_all("/v1/terms").await?)?;
    let all_subscriptions: Vec<Subscription> = parse(c.list_all("/v1/subscriptions").await?)?;
    let mut subscriptions = Vec::new();
    for sub in all_subscriptions
        .into_iter()
        .filter(|s| mine.contains(&s.consumer_org_id))
    {
        let acceptances: Vec<Acceptance> = serde_json::from_value(
            c.get(&format!("/v1/subscriptions/{}/acceptances", sub.id))
                .await?,
        )
        .context("the admin API returned acceptances this client does not understand (version mismatch?)")?;
        subscriptions.push((sub, acceptances));
    }
    let keys: Vec<PublishedKey> = serde_json::from_value(c.get("/v1/verification-keys").await?)
        .context(
            "the admin API returned keys this client does not understand (version mismatch?)",
        )?;
    Ok(Catalog {
        orgs,
        apis: with_docs,
        plans: plans
            .into_iter()
            .filter(|p| mine.contains(&p.org_id))
            .collect(),
        apps: apps
            .into_iter()
            .filter(|a| mine.contains(&a.org_id))
            .collect(),
        terms: terms
            .into_iter()
            .filter(|t| mine.contains(&t.org_id))
            .collect(),
        subscriptions,
        verification_keys: keys
            .into_iter()
            .map(|k| VerificationKey {
                key_id: k.key_id,
                public_key: k.public_key,
            })
            .collect(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(items: Vec<Value>) -> anyhow::Result<Vec<T>> {
    items
        .into_iter()
        .map(|v| serde_json::from_value(v).context("the admin API returned an object this client does not understand (version mismatch?)"))
        .collect()
}

pub async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let manifest = tollgate_manifest::load(&args.file).map_err(|errors| {
        let n = errors.len();
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} problem{} in {}:\n{}",
            n,
            if n == 1 { "" } else { "s" },
            args.file.display(),
            list.join("\n")
        )
    })?;
    let client = args.conn.client()?;
    let catalog = fetch_catalog(&client).await?;
    let steps = tollgate_manifest::plan(&manifest, &catalog).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "the manifest cannot be applied to this marketplace:\n{}",
            list.join("\n")
        )
    })?;
    let describe = |s: &Step| -> Value {
        json!({
            "step": s.to_string(),
            "changes": s.changes().iter().map(|c| json!({"field": c.field, "from": c.from, "to": c.to})).collect::<Vec<_>>(),
        })
    };
    if args.dry_run {
        if args.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"dry_run": true, "changes": steps.len(), "steps": steps.iter().map(describe).collect::<Vec<_>>()})
                )?
            );
        } else {
            for s in &steps {
                outln!("~ {s}");
            }
            outln!(
                "{} change{} (dry run: nothing was changed)",
                steps.len(),
                if steps.len() == 1 { "" } else { "s" }
            );
        }
        return Ok(());
    }
    let mut ids = Ids::from_catalog(&catalog);
    let bar =
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) && steps.len() > 3 && !args.json {
            let b = indicatif::ProgressBar::new(steps.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(b)
        } else {
            None
        };
    let mut done = Vec::new();
    for step in &steps {
        let (method, path) = step
            .method_and_path(&ids)
            .map_err(|e| anyhow::anyhow!("{step}: {e}"))?;
        let body = step
            .body(&ids)
            .map_err(|e| anyhow::anyhow!("{step}: {e}"))?;
        let method: http::Method = method.parse()?;
        let reply = client
            .send(method, &path, Some(&body), step.if_match())
            .await?;
        if !reply.status.is_success() {
            if let Some(b) = &bar {
                b.abandon();
            }
            bail!(
                "{step} failed after {} of {} changes: {}",
                done.len(),
                steps.len(),
                crate::client::describe_problem(reply.status, &reply.body)
            );
        }
        ids.record(step, &reply.body)
            .map_err(|e| anyhow::anyhow!("{step}: {e}"))?;
        if let Some(b) = &bar {
            b.set_message(step.to_string());
            b.inc(1);
        } else if !args.json {
            outln!("✓ {step}");
        }
        done.push(describe(step));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"dry_run": false, "changes": done.len(), "steps": done})
            )?
        );
    } else {
        outln!(
            "{} change{} applied",
            done.len(),
            if done.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let client = args.conn.client()?;
    let catalog = fetch_catalog(&client).await?;
    let text = match args.format {
        ExportFormat::Yaml => tollgate_manifest::export(&catalog),
        ExportFormat::Toml => {
            tollgate_manifest::export_toml(&catalog).context("cannot render TOML")?
        }
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?;
            let m = tollgate_manifest::to_manifest(&catalog);
            eprintln!(
                "exported {} orgs, {} APIs, {} plans, {} apps, {} subscriptions to {}",
                m.orgs.len(),
                m.apis.len(),
                m.plans.len(),
                m.apps.len(),
                m.subscriptions.len(),
                p.display()
            );
        }
        None => out!("{text}"),
    }
    Ok(())
}
