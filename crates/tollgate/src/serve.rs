//! `tollgate serve`: prepares the data directory and its secrets, opens the store, and
//! runs the admin API and the gateway until SIGINT/SIGTERM, then drains and exits 0.

use crate::config::{LogFormat, ServeArgs, ServeConfig};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tollgate_core::SystemClock;
use tollgate_gateway::{GatewayConfig, Snapshot, SnapshotHandle};
use tollgate_keyring::MasterKey;
use tollgate_server::{AppState, ServeOptions};
use tollgate_store::Store;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Writes `contents` to a new file readable only by its owner (0600). Fails if it exists.
pub fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn read_secret_file(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "secret file is readable by others; chmod 600 it");
                }
            }
            Ok(Some(s.trim().to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The master key: `TOLLGATE_MASTER_KEY`, else `<data-dir>/master.key` (made on first
/// start).
fn master_key(data_dir: &Path) -> anyhow::Result<MasterKey> {
    if let Ok(v) = std::env::var("TOLLGATE_MASTER_KEY") {
        return MasterKey::from_encoded(&v)
            .context("TOLLGATE_MASTER_KEY is not a valid master key");
    }
    let path = data_dir.join("master.key");
    if let Some(text) = read_secret_file(&path)? {
        return MasterKey::from_encoded(&text)
            .with_context(|| format!("{} is not a valid master key", path.display()));
    }
    let key = MasterKey::generate()?;
    write_secret_file(&path, &format!("{}\n", key.encode().as_str()))?;
    tracing::info!(path = %path.display(), fingerprint = key.fingerprint(), "created master key; back it up: without it the keyring cannot be opened");
    Ok(key)
}

/// The bootstrap operator token and whether it was just created.
fn admin_token(data_dir: &Path) -> anyhow::Result<(String, bool)> {
    if let Ok(v) = std::env::var("TOLLGATE_ADMIN_TOKEN") {
        if v.trim().len() < 16 {
            bail!("TOLLGATE_ADMIN_TOKEN must be at least 16 characters");
        }
        return Ok((v.trim().to_owned(), false));
    }
    let path = data_dir.join("admin-token");
    if let Some(t) = read_secret_file(&path)? {
        return Ok((t, false));
    }
    let token =
        tollgate_server::state::generate_secret("tgo_").map_err(|e| anyhow::anyhow!(e.detail))?;
    write_secret_file(&path, &format!("{token}\n"))?;
    Ok((token, true))
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives during start-up is not lost
/// (nor does it kill the process with the default action).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut int =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let cfg: ServeConfig = args.resolve()?;
    init_logging(cfg.log_format);
    let shutdown = shutdown_signal()?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let master = master_key(&cfg.data_dir)?;
    let (token, created) = admin_token(&cfg.data_dir)?;

    let store = Store::connect(&cfg.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&cfg.database_url)))?;
    store
        .migrate()
        .await
        .context("database migrations failed")?;
    let snapshot = SnapshotHandle::new(Snapshot::empty());
    let state =
        Arc::new(AppState::init(store, Arc::new(SystemClock), master, &token, snapshot).await?);
    if let Some(path) = &cfg.operator_policies {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read operator policies {}", path.display()))?;
        let policies = tollgate_policy::OperatorPolicies::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        tracing::info!(path = %path.display(), count = policies.ids().count(), "operator policies loaded");
        state.set_operator_policies(policies);
    }
    if let Some(path) = &cfg.regions {
        let table = read_regions(path)?;
        *state.regions.write().unwrap_or_else(|e| e.into_inner()) = table;
        tracing::info!(path = %path.display(), "region table loaded");
    }

    let gateway_tls = cfg
        .tls
        .as_ref()
        .map(|(cert, key)| tollgate_gateway::TlsFiles {
            cert_path: cert.clone(),
            key_path: key.clone(),
            client_ca: cfg.client_ca.as_ref().map(|(ca, crls)| {
                tollgate_gateway::tls::ClientCaFiles {
                    ca_path: ca.clone(),
                    crl_paths: crls.clone(),
                }
            }),
        });
    // Load the files now: a bad one must stop start-up, not only the gateway task.
    if let Some(files) = &gateway_tls {
        tollgate_gateway::tls::load(files)?;
    }
    let admin = TcpListener::bind(cfg.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin API)", cfg.admin_listen))?;
    let gateway = TcpListener::bind(cfg.gateway_listen)
        .await
        .with_context(|| format!("cannot listen on {} (gateway)", cfg.gateway_listen))?;
    let admin_addr = admin.local_addr()?;
    let gateway_addr = gateway.local_addr()?;

    if created {
        // Printed once, to stdout, so it can be captured; it is also in the file.
        outln!(
            "Operator token (also in {}): {token}",
            cfg.data_dir.join("admin-token").display()
        );
    }
    // The ledger opens (and, after a crash, recovers and verifies itself) before the
    // marketplace says it is running: a log that disagrees with its checkpoints stops
    // start-up here.
    let ledger_config = tollgate_server::ledger::LedgerConfig {
        retention: cfg
            .ledger_retention_days
            .map(|d| std::time::Duration::from_secs(u64::from(d) * 86_400)),
        ..tollgate_server::ledger::LedgerConfig::under(
            &cfg.data_dir,
            match cfg.metering {
                crate::config::Metering::Sync => tollgate_server::ledger::Durability::Sync,
                crate::config::Metering::Async => tollgate_server::ledger::Durability::Async,
            },
        )
    };
    let ledger = tollgate_server::ledger::Ledger::open(&state, &ledger_config)
        .await
        .context("the usage ledger cannot be opened")?;
    let _ = state.ledger.set(std::sync::Arc::new(ledger));
    tollgate_server::ledger::index(&state)
        .await
        .map_err(|e| anyhow::anyhow!("usage index: {}", e.detail))?;
    let mut demo_traffic = None;
    let demo_upstream = if cfg.demo {
        let (addr, task) = crate::demo::start_upstream().await?;
        tollgate_server::snapshot::refresh(&state)
            .await
            .map_err(|e| anyhow::anyhow!(e.detail))?;
        demo_traffic = crate::demo::seed(
            &state,
            &token,
            addr,
            admin_addr,
            gateway_addr,
            &cfg.data_dir,
        )
        .await
        .context("seeding the demo marketplace")?;
        Some(task)
    } else {
        None
    };
    tracing::info!(admin = %admin_addr, gateway = %gateway_addr, database = %redact(&cfg.database_url), data_dir = %cfg.data_dir.display(), "tollgate serving");
    let running = format!(
        "Tollgate is running: admin API http://{admin_addr} · gateway {}://{gateway_addr} · OpenAPI http://{admin_addr}/openapi.json",
        if cfg.tls.is_some() { "https" } else { "http" }
    );
    // A freshly seeded demo first sends its sample calls through the gateway (served as
    // soon as `serve` below accepts), and says it is running once they are in.
    tokio::spawn(async move {
        if let Some(traffic) = demo_traffic {
            traffic.send().await;
        }
        eprintln!("{running}");
    });
    let options = ServeOptions {
        drain_timeout: cfg.drain_timeout,
        gateway: GatewayConfig {
            tls: gateway_tls,
            ..GatewayConfig::default()
        },
        ledger: Some(ledger_config),
        ..ServeOptions::default()
    };

    tollgate_server::serve(state, admin, gateway, options, shutdown).await?;
    if let Some(t) = demo_upstream {
        t.abort();
    }
    Ok(())
}

/// A database URL without its password, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Reads the operator's CIDR → region table: `CIDR REGION` per line, `#` comments.
/// Errors name the file and line.
fn read_regions(path: &std::path::Path) -> anyhow::Result<tollgate_policy::RegionTable> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read region table {}", path.display()))?;
    let mut table = tollgate_policy::RegionTable::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(cidr), Some(region), None) = (fields.next(), fields.next(), fields.next()) else {
            anyhow::bail!("{}:{}: expected `CIDR REGION`", path.display(), n + 1);
        };
        table
            .insert(cidr, region)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite:x.db"), "sqlite:x.db");
    }
}
