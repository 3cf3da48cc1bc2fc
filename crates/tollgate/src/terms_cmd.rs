//! `tollgate terms …`: work on term sheet files without a server — validate, hash,
//! render, diff, compile to Cedar, export ODRL.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tollgate_terms::{KnownOperation, ValidatedSheet};

/// `tollgate terms` subcommands.
#[derive(Debug, Subcommand)]
pub enum TermsCommand {
    /// Check term sheets (YAML, TOML or JSON); errors name the file, line and field.
    Validate {
        /// Term sheet files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// An OpenAPI document (YAML or JSON) whose operations the grants must name, as
        /// `--openapi API_SLUG=FILE` (repeatable). A bare FILE means the API slug is the
        /// file stem.
        #[arg(long, value_name = "[API=]FILE")]
        openapi: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Print the canonical SHA-256 of each sheet (its identity), in hex.
    Hash {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Render a sheet in plain words (Markdown or HTML).
    Render {
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "markdown")]
        format: RenderFormat,
        #[command(flatten)]
        out: Output,
    },
    /// What changed between two versions, clause by clause, each classified as more
    /// permissive, more restrictive, price up/down/changed, text only or neutral.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// The Cedar policies the sheet compiles to (what the gateway enforces).
    Compile {
        file: PathBuf,
        /// Operator-wide Cedar policies that always apply (checked together).
        #[arg(long, value_name = "FILE")]
        operator_policies: Option<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// The sheet as an ODRL 2.2 JSON-LD Offer (context embedded).
    Odrl {
        file: PathBuf,
        /// IRI of the offering party.
        #[arg(long, default_value = "urn:tollgate:provider")]
        assigner: String,
    },
}

/// Output options.
#[derive(Debug, Clone, Args)]
pub struct Output {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Rendering formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RenderFormat {
    Markdown,
    Html,
}

fn load(path: &Path, ops: Option<&[KnownOperation]>) -> anyhow::Result<ValidatedSheet> {
    let loaded = tollgate_terms::load(path).map_err(report)?;
    match ops {
        Some(ops) => loaded.validate_against(ops),
        None => loaded.validate(),
    }
    .map_err(report)
}

fn report(errors: Vec<tollgate_terms::TermsError>) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::anyhow!(
        "{} problem{}:\n{}",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )
}

/// Operations of OpenAPI documents given as `[API=]FILE`.
fn known_operations(specs: &[String]) -> anyhow::Result<Vec<KnownOperation>> {
    let mut out = Vec::new();
    for spec in specs {
        let (api, file) = match spec.split_once('=') {
            Some((a, f)) => (a.to_owned(), PathBuf::from(f)),
            None => {
                let f = PathBuf::from(spec);
                let stem = f
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("api")
                    .split('.')
                    .next()
                    .unwrap_or("api")
                    .to_owned();
                (stem, f)
            }
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let doc: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?
        } else {
            yaml_serde::from_str(&text)
                .with_context(|| format!("{} is not YAML", file.display()))?
        };
        let imported = tollgate_openapi::import(&doc).map_err(|errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}: {}", file.display(), e.pointer, e.detail))
                .collect();
            anyhow::anyhow!("invalid OpenAPI document:\n{}", lines.join("\n"))
        })?;
        for op in imported.operations {
            out.push(KnownOperation {
                api: api.clone(),
                operation_id: op.operation_id,
                method: op.method,
                path: op.path,
            });
        }
    }
    Ok(out)
}

pub fn run(cmd: TermsCommand) -> anyhow::Result<()> {
    match cmd {
        TermsCommand::Validate {
            files,
            openapi,
            out,
        } => {
            let ops = if openapi.is_empty() {
                None
            } else {
                Some(known_operations(&openapi)?)
            };
            let mut results = Vec::new();
            let mut failed = Vec::new();
            for f in &files {
                match load(f, ops.as_deref()) {
                    Ok(v) => results.push(json!({"file": f, "valid": true, "id": v.sheet().id, "version": v.version().to_string(), "sha256": v.sha256()})),
                    Err(e) => {
                        results.push(json!({"file": f, "valid": false, "errors": e.to_string()}));
                        failed.push(format!("{e:#}"));
                    }
                }
            }
            if out.json {
                outln!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    if r["valid"] == true {
                        outln!(
                            "ok  {}  {} v{}  sha256 {}",
                            r["file"].as_str().unwrap_or(""),
                            r["id"].as_str().unwrap_or(""),
                            r["version"].as_str().unwrap_or(""),
                            r["sha256"].as_str().unwrap_or("")
                        );
                    }
                }
            }
            if !failed.is_empty() {
                bail!("{}", failed.join("\n"));
            }
            Ok(())
        }
        TermsCommand::Hash { files, out } => {
            let mut rows = Vec::new();
            for f in &files {
                let v = load(f, None)?;
                rows.push(json!({"file": f, "sha256": v.sha256()}));
                if !out.json {
                    outln!("{}  {}", v.sha256(), f.display());
                }
            }
            if out.json {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            }
            Ok(())
        }
        TermsCommand::Render { file, format, out } => {
            let v = load(&file, None)?;
            let text = match format {
                RenderFormat::Markdown => tollgate_terms::render::markdown(&v),
                RenderFormat::Html => tollgate_terms::render::html(&v),
            };
            if out.json {
                let f = if matches!(format, RenderFormat::Html) {
                    "html"
                } else {
                    "markdown"
                };
                let doc = json!({"sha256": v.sha256(), "format": f, "text": text});
                outln!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                out!("{text}");
            }
            Ok(())
        }
        TermsCommand::Diff { old, new, out } => {
            let changes = tollgate_terms::diff(&load(&old, None)?, &load(&new, None)?);
            if out.json {
                outln!("{}", serde_json::to_string_pretty(&changes)?);
            } else if changes.is_empty() {
                outln!("no changes");
            } else {
                for c in &changes {
                    let kind = serde_json::to_value(c.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    outln!("{kind:<17} {:<40} {}", c.path, c.summary);
                }
            }
            Ok(())
        }
        TermsCommand::Compile {
            file,
            operator_policies,
            out,
        } => {
            let v = load(&file, None)?;
            let operator = match operator_policies {
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    tollgate_policy::OperatorPolicies::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                }
                None => tollgate_policy::OperatorPolicies::none(),
            };
            let terms = tollgate_server::policy::plan_terms(
                &format!("{}@{}", v.sheet().id, v.sha256()),
                &v,
            );
            let compiled = tollgate_policy::compile(&terms, &operator)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if out.json {
                let policies: Vec<Value> = compiled
                    .clauses()
                    .map(|(id, clause)| json!({"id": id, "clause": clause}))
                    .collect();
                let doc = json!({"key": compiled.key(), "policies": policies, "cedar": compiled.cedar_text()});
                outln!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                out!("{}", compiled.cedar_text());
            }
            Ok(())
        }
        TermsCommand::Odrl { file, assigner } => {
            let v = load(&file, None)?;
            outln!(
                "{}",
                serde_json::to_string_pretty(&tollgate_terms::odrl::offer(&v, &assigner))?
            );
            Ok(())
        }
    }
}
