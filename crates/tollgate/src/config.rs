//! `tollgate serve` configuration: flags, `TOLLGATE_*` environment variables, a TOML file
//! and defaults, merged with precedence flag > environment > file > default. The file
//! struct's doc comments are its user documentation.

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default admin API (control plane) listen address.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:7700";
/// Default gateway listen address.
pub const DEFAULT_GATEWAY_LISTEN: &str = "127.0.0.1:7800";

/// Options of `tollgate serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "TOLLGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, master key, admin token and (later) ledger
    /// segments. Created if missing. [default: ./tollgate-data]
    #[arg(long, env = "TOLLGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admin API listen address. [default: 127.0.0.1:7700]
    #[arg(long, env = "TOLLGATE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Gateway listen address. [default: 127.0.0.1:7800]
    #[arg(long, env = "TOLLGATE_GATEWAY_LISTEN", value_name = "ADDR")]
    pub gateway_listen: Option<SocketAddr>,
    /// Database: `sqlite:PATH` or `postgres://user@host/db`.
    /// [default: sqlite:<data-dir>/tollgate.db]
    #[arg(long, env = "TOLLGATE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Seconds in-flight requests may take to finish on SIGINT/SIGTERM. [default: 10]
    #[arg(long, env = "TOLLGATE_DRAIN_TIMEOUT", value_name = "SECONDS")]
    pub drain_timeout: Option<u64>,
    /// Log format: `json` or `text`. [default: text on a terminal, json otherwise]
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Operator-wide Cedar policies (e.g. a global `forbid` for embargoed regions),
    /// always applied beside every plan's policies and checked when a sheet is published.
    #[arg(long, env = "TOLLGATE_OPERATOR_POLICIES", value_name = "FILE")]
    pub operator_policies: Option<PathBuf>,
    /// The CIDR → region table term sheets restrict regions by: one `CIDR REGION` pair
    /// per line (`#` starts a comment), e.g. `192.0.2.0/24 eu-west`.
    #[arg(long, env = "TOLLGATE_REGIONS", value_name = "FILE")]
    pub regions: Option<PathBuf>,
    /// PEM certificate chain for the gateway: with --tls-key, the gateway speaks TLS
    /// (HTTP/2 and HTTP/1.1 by ALPN) instead of plain HTTP/1.1 + h2c.
    #[arg(
        long,
        env = "TOLLGATE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(
        long,
        env = "TOLLGATE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// PEM file of the CA(s) that issue client certificates for OAuth clients
    /// registered with `tls_client_auth` (RFC 8705): their certificate must chain to one
    /// of these and name the registered subject DN or SAN. Needs --tls-cert.
    #[arg(long, env = "TOLLGATE_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Certificate revocation list of the client CA (PEM or DER); repeat for several.
    /// With CRLs, a chain whose revocation status is unknown is refused. The files are
    /// re-read when they change, so a reissued CRL needs no restart.
    #[arg(
        long = "client-crl",
        env = "TOLLGATE_CLIENT_CRLS",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub client_crls: Vec<PathBuf>,
    /// Usage ledger durability: `sync` (default) ends each response only once its usage
    /// event is fsynced — no delivered response goes unbilled; `async` answers at once and
    /// bounds the loss window to the events not yet written (shown by `GET /v1/ledger`).
    #[arg(long, env = "TOLLGATE_METERING", value_name = "MODE")]
    pub metering: Option<Metering>,
    /// Days after which usage event bodies may be pruned from the ledger (their hashes
    /// stay: checkpoints and proofs still verify). Default: keep everything.
    #[arg(long, env = "TOLLGATE_LEDGER_RETENTION_DAYS", value_name = "DAYS")]
    pub ledger_retention_days: Option<u32>,
    /// Seed a small demo marketplace (a provider with a sample API served by this
    /// process, two plans, a consumer org with an app and a subscription) and write its
    /// credentials to <data-dir>/demo.json. Seeding is skipped if it exists already.
    #[arg(long, env = "TOLLGATE_DEMO")]
    pub demo: bool,
}

/// Usage ledger durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Metering {
    Sync,
    Async,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// The TOML configuration file (`--config`). Every key is optional.
///
/// ```toml
/// data_dir = "/var/lib/tollgate"
/// admin_listen = "127.0.0.1:7700"
/// gateway_listen = "0.0.0.0:7800"
/// database_url = "postgres://tollgate@db/tollgate"
/// drain_timeout = 10
/// log_format = "json"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Admin API listen address.
    pub admin_listen: Option<SocketAddr>,
    /// Gateway listen address.
    pub gateway_listen: Option<SocketAddr>,
    /// Database URL.
    pub database_url: Option<String>,
    /// Drain timeout in seconds.
    pub drain_timeout: Option<u64>,
    /// `json` or `text`.
    pub log_format: Option<LogFormat>,
    /// Seed the demo marketplace.
    pub demo: Option<bool>,
    /// Operator-wide Cedar policies file.
    pub operator_policies: Option<PathBuf>,
    /// CIDR → region table file.
    pub regions: Option<PathBuf>,
    /// Gateway TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Gateway TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// CA certificates for `tls_client_auth` client certificates (PEM).
    pub client_ca: Option<PathBuf>,
    /// CRLs of the client CA.
    pub client_crls: Option<Vec<PathBuf>>,
    /// Usage ledger durability: `sync` or `async`.
    pub metering: Option<Metering>,
    /// Days after which ledger entry bodies may be pruned.
    pub ledger_retention_days: Option<u32>,
}

/// The merged, validated configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub admin_listen: SocketAddr,
    pub gateway_listen: SocketAddr,
    pub database_url: String,
    pub drain_timeout: Duration,
    pub log_format: LogFormat,
    pub demo: bool,
    pub operator_policies: Option<PathBuf>,
    pub regions: Option<PathBuf>,
    /// Certificate and key files, when the gateway speaks TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Client CA file and its CRLs (`tls_client_auth`).
    pub client_ca: Option<(PathBuf, Vec<PathBuf>)>,
    pub metering: Metering,
    pub ledger_retention_days: Option<u32>,
}

/// Reads a TOML config file; errors name the file, line and field.
pub fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(l) => anyhow::anyhow!("{}:{l}: {}", path.display(), e.message()),
            None => anyhow::anyhow!("{}: {}", path.display(), e.message()),
        }
    })
}

impl ServeArgs {
    /// Merges flags/env (already resolved by clap), the config file and defaults.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        // `FileConfig { .. }` destructured so a new key cannot be forgotten here.
        let FileConfig {
            data_dir,
            admin_listen,
            gateway_listen,
            database_url,
            drain_timeout,
            log_format,
            demo,
            operator_policies,
            regions,
            tls_cert,
            tls_key,
            client_ca,
            client_crls,
            metering,
            ledger_retention_days,
        } = file;
        let tls = match (self.tls_cert.or(tls_cert), self.tls_key.or(tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!("the gateway needs both tls_cert and tls_key, or neither"),
        };
        let crls = if self.client_crls.is_empty() {
            client_crls.unwrap_or_default()
        } else {
            self.client_crls
        };
        let client_ca = match (self.client_ca.or(client_ca), crls.is_empty()) {
            (Some(_), _) if tls.is_none() => {
                bail!("client_ca needs the gateway to speak TLS (tls_cert and tls_key)")
            }
            (Some(ca), _) => Some((ca, crls)),
            (None, true) => None,
            (None, false) => bail!("client_crls need a client_ca"),
        };
        let data_dir = self
            .data_dir
            .or(data_dir)
            .unwrap_or_else(crate::default_data_dir);
        let database_url = self
            .database_url
            .or(database_url)
            .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("tollgate.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("database url must start with sqlite: or postgres:// (got {database_url:?})");
        }
        let drain = self.drain_timeout.or(drain_timeout).unwrap_or(10);
        if drain > 3600 {
            bail!("drain timeout must be at most 3600 seconds");
        }
        let default_format = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            LogFormat::Text
        } else {
            LogFormat::Json
        };
        Ok(ServeConfig {
            admin_listen: self
                .admin_listen
                .or(admin_listen)
                .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.parse().expect("valid default")),
            gateway_listen: self
                .gateway_listen
                .or(gateway_listen)
                .unwrap_or_else(|| DEFAULT_GATEWAY_LISTEN.parse().expect("valid default")),
            database_url,
            drain_timeout: Duration::from_secs(drain),
            log_format: self.log_format.or(log_format).unwrap_or(default_format),
            demo: self.demo || demo.unwrap_or(false),
            operator_policies: self.operator_policies.or(operator_policies),
            regions: self.regions.or(regions),
            tls,
            client_ca,
            metering: self.metering.or(metering).unwrap_or(Metering::Sync),
            ledger_retention_days: match self.ledger_retention_days.or(ledger_retention_days) {
                // Late usage is accepted for 35 days: bodies stay at least that long.
                Some(d) if d < 35 => bail!("ledger retention must be at least 35 days"),
                d => d,
            },
            data_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "admin_listen = \"127.0.0.1:9001\"\ngateway_listen = \"127.0.0.1:9002\"\ndrain_timeout = 3\n").unwrap();
        let t = T::try_parse_from([
            "t",
            "--config",
            file.to_str().unwrap(),
            "--admin-listen",
            "127.0.0.1:9999",
        ])
        .unwrap();
        let c = t.args.resolve().unwrap();
        assert_eq!(c.admin_listen.port(), 9999, "flag wins over file");
        assert_eq!(c.gateway_listen.port(), 9002, "file wins over default");
        assert_eq!(c.drain_timeout, Duration::from_secs(3));
        assert_eq!(c.data_dir, PathBuf::from("tollgate-data"), "default");
        assert!(c.database_url.starts_with("sqlite:tollgate-data"));
    }

    #[test]
    fn client_ca_needs_tls_and_crls_need_a_client_ca() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        let resolve = |toml: &str, flags: &[&str]| {
            std::fs::write(&file, toml).unwrap();
            let mut argv = vec!["t", "--config", file.to_str().unwrap()];
            argv.extend_from_slice(flags);
            T::try_parse_from(argv).unwrap().args.resolve()
        };
        let c = resolve(
            "tls_cert = \"gw.crt\"\ntls_key = \"gw.key\"\nclient_ca = \"ca.pem\"\n",
            &["--client-crl", "a.crl,b.crl"],
        )
        .unwrap();
        assert_eq!(
            c.client_ca,
            Some((
                PathBuf::from("ca.pem"),
                vec![PathBuf::from("a.crl"), PathBuf::from("b.crl")]
            ))
        );
        let err = resolve("client_ca = \"ca.pem\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the gateway to speak TLS"), "{err}");
        let err = resolve("client_crls = [\"a.crl\"]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("need a client_ca"), "{err}");
        // The flags mix with the file: the same checks apply to their sum.
        let err = resolve("", &["--client-ca", "ca.pem"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the gateway to speak TLS"), "{err}");
    }

    #[test]
    fn file_errors_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "data_dir = \"x\"\nadmin_lsten = \"127.0.0.1:1\"\n").unwrap();
        let err = read_file(&file).unwrap_err().to_string();
        assert!(err.contains("bad.toml:2:"), "{err}");
        assert!(err.contains("admin_lsten"), "{err}");
    }
}
