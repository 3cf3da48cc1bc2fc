//! The `tollgate` binary: serve the marketplace, apply and export catalogs, manage keys.

/// `println!` for command output: a closed pipe (`tollgate keys list | head -1`) ends
/// the process quietly instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_out(&format!($($arg)*), true)
    };
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(&format!($($arg)*), false)
    };
}

mod billing_cmd;
mod client;
mod config;
mod demo;
mod httpsig_cmd;
mod ledger_cmd;
mod manifest_cmd;
mod serve;
mod terms_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tollgate: a self-hostable API marketplace whose every number is provable.
///
/// `tollgate serve` runs the marketplace (admin API + gateway) on this machine with an
/// embedded SQLite database; `tollgate apply` and `tollgate export` manage its catalog
/// as files; `tollgate keys` manages the keyring.
#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the marketplace: the admin API (control plane) and the gateway, in one process.
    ///
    /// With no options it listens on 127.0.0.1:7700 (admin API) and 127.0.0.1:7800
    /// (gateway), keeps its data under ./tollgate-data (SQLite database, master key,
    /// admin token) and applies migrations. Every option can also come from a TOML file
    /// (--config) or a TOLLGATE_* environment variable; precedence is
    /// flag > environment > config file > default.
    Serve(config::ServeArgs),
    /// Create or update the catalog from files (YAML, TOML or JSON; a file or a folder).
    ///
    /// Objects are matched by slug, so applying the same files again changes nothing.
    /// Objects in the marketplace but not in the files are left alone.
    Apply(manifest_cmd::ApplyArgs),
    /// Write the catalog as a manifest that `tollgate apply` reproduces on an empty
    /// marketplace.
    Export(manifest_cmd::ExportArgs),
    /// Work on term sheet files without a server: validate, hash, render, diff, compile
    /// to Cedar, export ODRL.
    Terms {
        #[command(subcommand)]
        command: terms_cmd::TermsCommand,
    },
    /// Sign or verify HTTP message signatures (RFC 9421) on raw HTTP/1.1 request files,
    /// and check them against the gateway's signature policy.
    Httpsig {
        #[command(subcommand)]
        command: httpsig_cmd::HttpsigCommand,
    },
    /// Verify the usage ledger, offline from its files or online through the admin API.
    Ledger {
        #[command(subcommand)]
        command: ledger_cmd::LedgerCommand,
    },
    /// List, show, export, preview and prove invoices through the admin API.
    Invoice {
        #[command(subcommand)]
        command: billing_cmd::InvoiceCommand,
    },
    /// Quote prices, and close billing periods and make payouts (operators), through the
    /// admin API.
    Billing {
        #[command(subcommand)]
        command: billing_cmd::BillingCommand,
    },
    /// List or rotate the marketplace's keys (operators).
    Keys {
        #[command(subcommand)]
        command: manifest_cmd::KeysCommand,
    },
    /// Print the version.
    Version {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Apply(args) => manifest_cmd::apply(args).await,
            Command::Export(args) => manifest_cmd::export(args).await,
            Command::Keys { command } => manifest_cmd::keys(command).await,
            Command::Terms { command } => terms_cmd::run(command),
            Command::Httpsig { command } => httpsig_cmd::run(command),
            Command::Ledger { command } => ledger_cmd::run(command).await,
            Command::Invoice { command } => billing_cmd::invoice(command).await,
            Command::Billing { command } => billing_cmd::billing(command).await,
            Command::Version { json } => {
                if json {
                    outln!("{}", serde_json::json!({"name": "tollgate", "version": env!("CARGO_PKG_VERSION")}));
                } else {
                    outln!("tollgate {}", env!("CARGO_PKG_VERSION"));
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub(crate) fn write_out(text: &str, newline: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(1);
    }
}

/// The data directory's default.
pub(crate) fn default_data_dir() -> PathBuf {
    PathBuf::from("tollgate-data")
}
