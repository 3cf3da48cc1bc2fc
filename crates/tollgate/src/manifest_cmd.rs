//! `tollgate apply`, `tollgate export` and `tollgate keys`: clients of a running
//! marketplace's admin API.

use crate::client::AdminClient;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

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

/// Options of `tollgate export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
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
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            println!(
                "{:<36}  {:<20}  {:<10}  {:<9}  ACTIVATED",
                "ID", "PURPOSE", "ALGORITHM", "STATE"
            );
            for k in keys.as_array().into_iter().flatten() {
                let s = |f: &str| k.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                println!(
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
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
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

pub async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let _ = (&args.file, args.dry_run, args.json, args.conn.client()?);
    bail!("not yet wired")
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let _ = (&args.output, args.conn.client()?);
    bail!("not yet wired")
}
