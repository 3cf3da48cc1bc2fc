//! End-to-end tests of the real `tollgate` binary on 127.0.0.1.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod billing;
mod ledger;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// A running `tollgate serve`.
struct Server {
    child: Child,
    admin: String,
    gateway: String,
    stdout: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Starts the binary in `cwd` with `args` after `serve`, on ephemeral ports, and
    /// waits until it says where it listens.
    fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(cwd)
            .arg("serve")
            .args([
                "--admin-listen",
                "127.0.0.1:0",
                "--gateway-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(args)
            .env_remove("TOLLGATE_ADMIN_TOKEN")
            .env_remove("TOLLGATE_MASTER_KEY")
            .env_remove("TOLLGATE_DATA_DIR")
            .env_remove("TOLLGATE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tollgate");
        let (tx, stdout) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let (etx, erx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match erx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Tollgate is running: admin API ") {
                        let bare = |u: &str| u.trim_start_matches("http://").to_owned();
                        let admin = bare(rest.split(' ').next().unwrap());
                        let gateway = bare(
                            rest.split("gateway ")
                                .nth(1)
                                .unwrap()
                                .split(' ')
                                .next()
                                .unwrap(),
                        );
                        std::thread::spawn(move || for _ in erx {});
                        return Server {
                            child,
                            admin,
                            gateway,
                            stdout,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("tollgate exited with {status}: {}", seen.join("\n"));
                    }
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tollgate did not start: {}", seen.join("\n"));
    }

    /// Sends SIGTERM and returns the exit code.
    fn stop(mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("tollgate did not stop on SIGTERM");
    }

    fn stdout_lines(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        self.stdout.try_iter().collect()
    }
}

/// A blocking HTTP/1.1 request (the tests need nothing fancier).
fn http(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// GET through the gateway with an API key: status, lowercased response head, body.
fn gateway_get(url: &str, key: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nX-API-Key: {key}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The remaining count of the named policy in a `ratelimit:` line of `head`.
fn remaining(head: &str, policy: &str) -> u64 {
    let line = head
        .lines()
        .find(|l| l.starts_with("ratelimit:"))
        .unwrap_or_else(|| panic!("no RateLimit field in {head}"));
    let item = line
        .split(',')
        .find(|i| i.contains(&format!("\"{policy}\"")))
        .unwrap_or_else(|| panic!("no {policy} in {line}"));
    item.split(';')
        .find_map(|p| p.trim().strip_prefix("r="))
        .unwrap()
        .parse()
        .unwrap()
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn tollgate(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .env_remove("TOLLGATE_DATA_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn serve_creates_its_data_dir_prints_the_token_once_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let data = dir.path().join("tollgate-data");
    assert!(data.join("tollgate.db").exists());
    let token = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    #[cfg(unix)]
    {
        assert_eq!(mode(&data.join("admin-token")), 0o600);
        assert_eq!(mode(&data.join("master.key")), 0o600);
    }
    let printed = s.stdout_lines().join("\n");
    assert!(
        printed.contains(&token),
        "the token is printed on first start: {printed}"
    );
    assert_eq!(
        http("GET", &format!("http://{}/healthz", s.admin), None, None).0,
        200
    );
    let (status, ready) = http("GET", &format!("http://{}/readyz", s.admin), None, None);
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["store"], true);
    assert_eq!(
        http("GET", &format!("http://{}/v1/orgs", s.admin), None, None).0,
        401
    );
    assert_eq!(
        http(
            "GET",
            &format!("http://{}/v1/orgs", s.admin),
            Some(&token),
            None
        )
        .0,
        200
    );
    assert_eq!(
        http(
            "GET",
            &format!("http://{}/_tollgate/health", s.gateway),
            None,
            None
        )
        .0,
        200
    );
    assert_eq!(s.stop(), 0, "SIGTERM exits 0");

    // Second start: same token, not printed again; data kept.
    let s = Server::start(dir.path(), &[], &[]);
    assert!(!s.stdout_lines().join("\n").contains(&token));
    assert_eq!(
        http(
            "GET",
            &format!("http://{}/v1/orgs", s.admin),
            Some(&token),
            None
        )
        .0,
        200
    );
    assert_eq!(s.stop(), 0);
}

#[test]
fn configuration_precedence_is_flag_then_env_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tollgate.toml");
    std::fs::write(&cfg, "data_dir = \"from-file\"\ndrain_timeout = 2\n").unwrap();
    let cfgs = cfg.to_str().unwrap();
    // File alone.
    let s = Server::start(dir.path(), &["--config", cfgs], &[]);
    assert_eq!(s.stop(), 0);
    assert!(dir.path().join("from-file/tollgate.db").exists());
    // Env beats file.
    let s = Server::start(
        dir.path(),
        &["--config", cfgs],
        &[("TOLLGATE_DATA_DIR", "from-env")],
    );
    assert_eq!(s.stop(), 0);
    assert!(dir.path().join("from-env/tollgate.db").exists());
    // Flag beats env.
    let s = Server::start(
        dir.path(),
        &["--config", cfgs, "--data-dir", "from-flag"],
        &[("TOLLGATE_DATA_DIR", "from-env-2")],
    );
    assert_eq!(s.stop(), 0);
    assert!(dir.path().join("from-flag/tollgate.db").exists());
    assert!(!dir.path().join("from-env-2").exists());
    // A bad config file names the file, line and field, and nothing starts.
    std::fs::write(&cfg, "data_dir = \"x\"\nadmin_listen = 7\n").unwrap();
    let (code, _, err) = tollgate(dir.path(), &["serve", "--config", cfgs], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("tollgate.toml:2"), "{err}");
    assert!(
        err.contains("admin_listen") || err.contains("invalid type"),
        "{err}"
    );
    // The operator token may come from the environment.
    let s = Server::start(
        dir.path(),
        &["--data-dir", "env-token"],
        &[("TOLLGATE_ADMIN_TOKEN", "tgo_from_the_environment_123")],
    );
    assert_eq!(
        http(
            "GET",
            &format!("http://{}/v1/orgs", s.admin),
            Some("tgo_from_the_environment_123"),
            None
        )
        .0,
        200
    );
    assert_eq!(s.stop(), 0);
    assert!(!dir.path().join("env-token/admin-token").exists());
}

#[test]
fn the_demo_marketplace_is_real() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--demo"], &[]);
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("tollgate-data/demo.json")).unwrap(),
    )
    .unwrap();
    let consumer = demo["tokens"]["consumer_developer"].as_str().unwrap();
    let provider = demo["tokens"]["provider_owner"].as_str().unwrap();
    let (status, apis) = http(
        "GET",
        &format!("http://{}/v1/apis", s.admin),
        Some(consumer),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(apis["items"][0]["base_path"], "/weather/v1");
    let (_, ops) = http(
        "GET",
        &format!(
            "http://{}/v1/apis/{}/operations",
            s.admin,
            demo["ids"]["api"].as_str().unwrap()
        ),
        Some(consumer),
        None,
    );
    assert_eq!(ops.as_array().unwrap().len(), 3);
    let (_, plans) = http(
        "GET",
        &format!("http://{}/v1/plans", s.admin),
        Some(consumer),
        None,
    );
    assert_eq!(plans["items"].as_array().unwrap().len(), 2);
    let (_, subs) = http(
        "GET",
        &format!("http://{}/v1/subscriptions", s.admin),
        Some(provider),
        None,
    );
    assert_eq!(subs["items"][0]["state"], "active");
    // Plans offer published terms; the subscription accepted them with a signed record.
    assert!(
        plans["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["terms_id"].is_string()),
        "{plans}"
    );
    assert_eq!(
        subs["items"][0]["terms_sha256"],
        demo["terms_sha256"]["free"]
    );
    let acceptances = format!(
        "http://{}/v1/subscriptions/{}/acceptances",
        s.admin,
        demo["ids"]["subscription"].as_str().unwrap()
    );
    let (_, acc) = http("GET", &acceptances, Some(consumer), None);
    assert_eq!(acc.as_array().unwrap().len(), 1, "{acc}");
    assert_eq!(
        acc[0]["record"]["terms_sha256"],
        demo["terms_sha256"]["free"]
    );
    let key = demo["tokens"]["api_key"].as_str().unwrap();
    assert!(key.starts_with("tg_live_"), "{key}");
    // The demo's sample traffic went through the gateway before it said it was
    // running: live and test calls are already in their ledger logs.
    let (status, ledger) = http("GET", &format!("http://{}/v1/ledger", s.admin), None, None);
    assert_eq!(status, 200, "{ledger}");
    assert_eq!(ledger["logs"][0]["name"], "live");
    assert_eq!(ledger["logs"][0]["size"], 4, "{ledger}");
    assert_eq!(ledger["logs"][1]["size"], 2, "{ledger}");
    // The sample upstream answers; the gateway routes the API and asks for a credential.
    let (status, fc) = http(
        "GET",
        &format!("{}/forecast/lima", demo["upstream_url"].as_str().unwrap()),
        None,
        None,
    );
    assert_eq!((status, fc["city"].as_str()), (200, Some("lima")));
    let (status, problem) = http(
        "GET",
        &format!("http://{}/weather/v1/forecast/lima", s.gateway),
        None,
        None,
    );
    assert_eq!(status, 401);
    assert_eq!(
        problem["type"],
        "https://tollgate.dev/problems/credential-required"
    );
    // With the README tour's key, the call goes through, limited and metered.
    let forecast = format!("http://{}/weather/v1/forecast/lima", s.gateway);
    let (status, head, body) = gateway_get(&forecast, key);
    assert_eq!(status, 200, "{head}{body}");
    assert!(body.contains("lima"), "{body}");
    assert!(head.contains("tollgate-usage-id: "), "{head}");
    assert!(
        head.contains(
            "ratelimit-policy: \"forecasts-second\";q=10;w=2, \"forecasts-month\";q=10000;"
        ),
        "{head}"
    );
    let before_restart = remaining(&head, "forecasts-month");
    let (status, head, _) = gateway_get(&forecast, key);
    assert_eq!(status, 200);
    assert_eq!(remaining(&head, "forecasts-month"), before_restart - 1);
    assert_eq!(s.stop(), 0);
    // A restart keeps the demo and points its API at the new upstream port.
    let s = Server::start(dir.path(), &["--demo"], &[]);
    let demo2: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("tollgate-data/demo.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(demo2["tokens"], demo["tokens"]);
    let (_, api) = http(
        "GET",
        &format!(
            "http://{}/v1/apis/{}",
            s.admin,
            demo["ids"]["api"].as_str().unwrap()
        ),
        Some(consumer),
        None,
    );
    assert_eq!(api["upstreams"][0], demo2["upstream_url"]);
    // The month's quota count survived the restart.
    let (status, head, body) = gateway_get(
        &format!("http://{}/weather/v1/forecast/lima", s.gateway),
        key,
    );
    assert_eq!(status, 200, "{head}{body}");
    assert_eq!(remaining(&head, "forecasts-month"), before_restart - 2);
    assert_eq!(s.stop(), 0);
}

#[test]
fn serve_on_postgresql() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(tollgate_store::testing::fresh_pg_database()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--database-url", &url, "--demo"], &[]);
    let (status, ready) = http("GET", &format!("http://{}/readyz", s.admin), None, None);
    assert_eq!(status, 200, "{ready}");
    let token = std::fs::read_to_string(dir.path().join("tollgate-data/admin-token")).unwrap();
    let (_, orgs) = http(
        "GET",
        &format!("http://{}/v1/orgs", s.admin),
        Some(token.trim()),
        None,
    );
    assert_eq!(orgs["items"].as_array().unwrap().len(), 2);
    assert_eq!(s.stop(), 0);
    rt.block_on(tollgate_store::testing::drop_pg_database(&url));
}

#[test]
fn help_explains_every_subcommand_and_version_speaks_json() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["serve", "apply", "export", "keys", "version"] {
        let (code, out, _) = tollgate(dir.path(), &[sub, "--help"], &[]);
        assert_eq!(code, 0, "{sub} --help");
        assert!(
            out.contains("Usage: tollgate") && out.lines().count() > 5,
            "{sub} --help is too thin: {out}"
        );
    }
    let (code, out, _) = tollgate(dir.path(), &["version", "--json"], &[]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "tollgate");
}

#[test]
fn keys_list_and_rotate_with_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let url = format!("http://{}", s.admin);
    let (code, out, err) = tollgate(
        dir.path(),
        &["keys", "list", "--json", "--admin-url", &url],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let keys: Value = serde_json::from_str(&out).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 7, "one active key per purpose on first start");
    assert!(keys.iter().all(|k| k["state"] == "active"));
    assert!(!out.contains("sealed"), "no secret material is listed");
    let old = keys
        .iter()
        .find(|k| k["purpose"] == "token_signing")
        .unwrap()["id"]
        .clone();
    let (code, out, err) = tollgate(
        dir.path(),
        &[
            "keys",
            "rotate",
            "token_signing",
            "--json",
            "--admin-url",
            &url,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(rotated["new"]["id"], old);
    assert_eq!(rotated["updated"][0]["id"], old);
    assert_eq!(rotated["updated"][0]["state"], "retiring");
    // The rotation survives a restart (it is in the store, not only in memory).
    assert_eq!(s.stop(), 0);
    let s = Server::start(dir.path(), &[], &[]);
    let url = format!("http://{}", s.admin);
    let (_, out, _) = tollgate(
        dir.path(),
        &["keys", "list", "--json", "--admin-url", &url],
        &[],
    );
    let keys: Value = serde_json::from_str(&out).unwrap();
    let token_keys: Vec<&Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["purpose"] == "token_signing")
        .collect();
    assert_eq!(token_keys.len(), 2);
    let (code, _, err) = tollgate(
        dir.path(),
        &["keys", "rotate", "no_such_purpose", "--admin-url", &url],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("404"), "{err}");
    assert_eq!(s.stop(), 0);
}

#[test]
fn apply_is_idempotent_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &["--data-dir", "a", "--demo"], &[]);
    let a_url = format!("http://{}", a.admin);
    let conn_a = ["--admin-url", a_url.as_str(), "--data-dir", "a"];
    let exported = dir.path().join("catalog.yaml");
    let (code, _, err) = tollgate(
        dir.path(),
        &[
            &["export", "-o", exported.to_str().unwrap()][..],
            &conn_a[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("acme-weather")
            && text.contains("/weather/v1")
            && text.contains("getForecast"),
        "{text}"
    );
    // The demo's two published term sheets are inline, and each plan names the one it
    // offers.
    assert!(
        text.contains("\nterms:\n- org: acme-weather\n  document:\n    id: weather-free\n")
            && text.contains("    id: weather-pro\n    version: 1.0.0\n")
            && text.contains("  terms:\n    id: weather-free\n    version: 1.0.0\n")
            && text.contains("  terms:\n    id: weather-pro\n    version: 1.0.0\n"),
        "{text}"
    );
    assert_eq!(text.matches("  publish: true\n").count(), 2, "{text}");
    assert!(!text.contains("publish: false"), "{text}");
    // The demo's subscriptions (live and test) travel with their signed acceptance
    // records and the public key that verifies them.
    assert!(
        text.contains("\nsubscriptions:\n- app:\n    org: globex\n    slug: dashboard\n  plan:\n    org: acme-weather\n    slug: free\n  state: active\n  acceptances:\n  - record:\n      type: tollgate.acceptance.v1\n")
            && text.contains("  state: active\n  mode: test\n  acceptances:\n")
            && text.matches("    signature: ").count() == 2
            && text.contains("\nverification_keys:\n- key_id: "),
        "{text}"
    );
    // Applying what is already there changes nothing.
    let (code, out, err) = tollgate(
        dir.path(),
        &[
            &["apply", "-f", exported.to_str().unwrap(), "--json"][..],
            &conn_a[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["changes"], 0, "{out}");

    // Applied to an empty marketplace, the export reproduces the same catalog.
    let b = Server::start(dir.path(), &["--data-dir", "b"], &[]);
    let b_url = format!("http://{}", b.admin);
    let conn_b = ["--admin-url", b_url.as_str(), "--data-dir", "b"];
    let (code, out, err) = tollgate(
        dir.path(),
        &[
            &["apply", "-f", exported.to_str().unwrap(), "--dry-run"][..],
            &conn_b[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("create org acme-weather"), "{out}");
    for step in [
        "create terms acme-weather/weather-free 1.0.0",
        "publish terms acme-weather/weather-free 1.0.0",
        "create terms acme-weather/weather-pro 1.0.0",
        "publish terms acme-weather/weather-pro 1.0.0",
        "set terms of plan acme-weather/free to weather-free 1.0.0",
        "set terms of plan acme-weather/pro to weather-pro 1.0.0",
        "import subscription of app globex/dashboard to plan acme-weather/free (active, 1 signed acceptance)",
    ] {
        assert!(out.contains(step), "{step}: {out}");
    }
    let (code, out, err) = tollgate(
        dir.path(),
        &[
            &["apply", "-f", exported.to_str().unwrap(), "--json"][..],
            &conn_b[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert!(r["changes"].as_u64().unwrap() >= 8, "{out}");
    let (code, out, _) = tollgate(
        dir.path(),
        &[
            &["apply", "-f", exported.to_str().unwrap(), "--json"][..],
            &conn_b[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["changes"],
        0,
        "second apply: {out}"
    );
    let (_, again, _) = tollgate(dir.path(), &[&["export"][..], &conn_b[..]].concat(), &[]);
    assert_eq!(again, text, "export → apply → export is lossless");
    // In B the sheets are published, with A's hashes, and offered by the plans.
    let token_a = std::fs::read_to_string(dir.path().join("a/admin-token")).unwrap();
    let token_b = std::fs::read_to_string(dir.path().join("b/admin-token")).unwrap();
    let sheets = |url: &str, token: &str| {
        let (status, page) = http("GET", &format!("{url}/v1/terms"), Some(token.trim()), None);
        assert_eq!(status, 200, "{page}");
        let mut v: Vec<(String, String, String, String)> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                (s("sheet_id"), s("version"), s("sha256"), s("status"))
            })
            .collect();
        v.sort();
        v
    };
    let in_b = sheets(&b_url, &token_b);
    assert_eq!(in_b, sheets(&a_url, &token_a));
    assert_eq!(in_b.len(), 2);
    assert!(in_b.iter().all(|t| t.3 == "published"), "{in_b:?}");
    let (_, plans) = http(
        "GET",
        &format!("{b_url}/v1/plans"),
        Some(token_b.trim()),
        None,
    );
    let plans = plans["items"].as_array().unwrap();
    assert_eq!(plans.len(), 2);
    for p in plans {
        assert!(p["terms_id"].is_string(), "plan without terms in B: {p}");
        assert_eq!(p["status"], "published");
    }
    // B has the subscription with A's signed record — same id, same signature — not a
    // new acceptance signed by B.
    let subscription = |url: &str, token: &str| {
        let (status, page) = http(
            "GET",
            &format!("{url}/v1/subscriptions"),
            Some(token.trim()),
            None,
        );
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        // The demo's live subscription and its sandbox (test) twin.
        assert_eq!(items.len(), 2, "{page}");
        let sub = items.iter().find(|s| s["mode"] == "live").unwrap().clone();
        let (status, acceptances) = http(
            "GET",
            &format!(
                "{url}/v1/subscriptions/{}/acceptances",
                sub["id"].as_str().unwrap()
            ),
            Some(token.trim()),
            None,
        );
        assert_eq!(status, 200, "{acceptances}");
        (sub, acceptances)
    };
    let (sub_a, acc_a) = subscription(&a_url, &token_a);
    let (sub_b, acc_b) = subscription(&b_url, &token_b);
    assert_eq!(acc_b.as_array().unwrap().len(), 1, "{acc_b}");
    assert_eq!(acc_b, acc_a, "the signed record is imported as it is");
    assert_eq!(sub_b["state"], "active");
    assert_eq!(sub_b["terms_sha256"], sub_a["terms_sha256"]);
    assert_ne!(sub_b["id"], sub_a["id"]);
    let signature = acc_a[0]["signature"].as_str().unwrap().to_owned();
    assert!(
        text.contains(&format!("    signature: {signature}\n")),
        "{text}"
    );

    // A change is one step; a broken manifest names file, line and field and changes nothing.
    std::fs::write(
        &exported,
        text.replace("name: Globex Dashboard", "name: Globex Dashboard 2"),
    )
    .unwrap();
    let (code, out, err) = tollgate(
        dir.path(),
        &[
            &["apply", "-f", exported.to_str().unwrap(), "--dry-run"][..],
            &conn_b[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 change"), "{out}");
    // A tampered signature is refused before anything is sent, naming the field: the
    // app's new name (a valid change in the same file) is not applied either.
    let flipped = match signature.as_bytes()[0] {
        b'A' => format!("B{}", &signature[1..]),
        _ => format!("A{}", &signature[1..]),
    };
    let tampered = text
        .replace("name: Globex Dashboard", "name: Globex Dashboard 2")
        .replace(&signature, &flipped);
    std::fs::write(&exported, &tampered).unwrap();
    let (code, _, err) = tollgate(
        dir.path(),
        &[
            &["apply", "-f", exported.to_str().unwrap()][..],
            &conn_b[..],
        ]
        .concat(),
        &[],
    );
    assert_ne!(code, 0);
    let sig_line = tampered
        .lines()
        .position(|l| l.contains("signature: "))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("catalog.yaml:{sig_line}"))
            && err.contains("subscriptions[0].acceptances[0].signature")
            && err.contains("does not verify"),
        "{err}"
    );
    let (_, apps) = http(
        "GET",
        &format!("{b_url}/v1/apps"),
        Some(token_b.trim()),
        None,
    );
    assert_eq!(
        apps["items"][0]["name"], "Globex Dashboard",
        "nothing applied: {apps}"
    );
    assert_eq!(subscription(&b_url, &token_b).1, acc_a);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "orgs:\n  - slug: ok-org\n    name: OK\n    kind: provider\n  - slug: Bad Slug\n    name: x\n    kind: provider\n").unwrap();
    let (code, _, err) = tollgate(
        dir.path(),
        &[&["apply", "-f", bad.to_str().unwrap()][..], &conn_b[..]].concat(),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("bad.yaml:5") && err.contains("orgs[1].slug"),
        "{err}"
    );
    let token = std::fs::read_to_string(dir.path().join("b/admin-token")).unwrap();
    let (_, orgs) = http("GET", &format!("{b_url}/v1/orgs"), Some(token.trim()), None);
    assert!(
        !orgs.to_string().contains("ok-org"),
        "nothing applied from a broken manifest"
    );
    assert_eq!(a.stop(), 0);
    assert_eq!(b.stop(), 0);
}

#[test]
fn serve_names_the_file_and_line_of_a_bad_region_table_or_tls_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("regions.txt"),
        "# operator regions\n192.0.2.0/24 eu-west\n10.0.0.1/8 us\n",
    )
    .unwrap();
    let (code, _, err) = tollgate(
        dir.path(),
        &[
            "serve",
            "--regions",
            "regions.txt",
            "--admin-listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("regions.txt:3:"), "{err}");
    assert!(err.contains("host bits"), "{err}");
    let (code, _, err) = tollgate(
        dir.path(),
        &[
            "serve",
            "--tls-cert",
            "missing.pem",
            "--tls-key",
            "key.pem",
            "--admin-listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("missing.pem"), "{err}");
    let (code, _, err) = tollgate(dir.path(), &["serve", "--tls-cert", "c.pem"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--tls-key"), "{err}");
}

/// The demo marketplace in `dir` and its `demo.json`.
fn start_demo(dir: &Path) -> (Server, Value) {
    let s = Server::start(dir, &["--demo"], &[]);
    let demo = serde_json::from_str(
        &std::fs::read_to_string(dir.join("tollgate-data/demo.json")).unwrap(),
    )
    .unwrap();
    (s, demo)
}

/// A Python with `packages` installed in a venv under the target dir (made once). `None`
/// when Python or PyPI is unavailable outside CI; under `CI=true` that is a failure.
fn python_with(packages: &[&str]) -> Option<std::path::PathBuf> {
    // Tests run in parallel threads: one pip at a time in the shared venv.
    static PIP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = PIP.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-interop");
    let python = venv.join("bin/python");
    let marker = venv.join(format!(
        "installed-{}",
        packages.join("+").replace(['=', '<', '>'], "_")
    ));
    if marker.exists() {
        return Some(python);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let fail = |what: &str| {
        if ci {
            panic!("python interop: {what} (CI=true requires it)");
        }
        eprintln!("python interop: {what}; skipping");
        None
    };
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return fail("cannot create a venv with python3");
        }
    }
    let ok = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return fail("pip install failed");
    }
    std::fs::write(&marker, "").unwrap();
    Some(python)
}

#[test]
fn a_python_oauth_client_gets_a_token_and_calls_the_api() {
    let Some(python) = python_with(&["requests-oauthlib==2.0.0"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (s, demo) = start_demo(dir.path());
    let developer = demo["tokens"]["consumer_developer"].as_str().unwrap();
    let app = demo["ids"]["app"].as_str().unwrap();
    let (status, client) = http(
        "POST",
        &format!("http://{}/v1/apps/{app}/oauth-clients", s.admin),
        Some(developer),
        Some(
            &serde_json::json!({"name": "python", "auth_method": "client_secret_basic", "scopes": ["weather:read"]}),
        ),
    );
    assert_eq!(status, 201, "{client}");
    let script = r#"
import json, sys
from oauthlib.oauth2 import BackendApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session
gateway, client_id, secret = sys.argv[1:4]
session = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
token = session.fetch_token(token_url=gateway + "/oauth/token", auth=HTTPBasicAuth(client_id, secret))
answer = session.get(gateway + "/weather/v1/forecast/lima")
print(json.dumps({"token_type": token["token_type"], "scope": token.get("scope"), "status": answer.status_code, "body": answer.json(), "usage": answer.headers.get("tollgate-usage-id")}))
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(format!("http://{}", s.gateway))
        .arg(client["id"].as_str().unwrap())
        .arg(client["client_secret"].as_str().unwrap())
        // oauthlib refuses plain http unless told the transport is trusted (loopback).
        .env("OAUTHLIB_INSECURE_TRANSPORT", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["token_type"], "Bearer", "{result}");
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"]["city"], "lima", "{result}");
    assert!(result["usage"].is_string(), "{result}");
    assert_eq!(s.stop(), 0);
}

#[test]
fn requests_signed_by_a_python_rfc9421_library_pass_the_gateway() {
    let Some(python) = python_with(&["requests-oauthlib==2.0.0", "http-message-signatures==0.6.1"])
    else {
        return;
    };
    let vectors: Value = serde_json::from_str(include_str!(
        "../../../tollgate-httpsig/tests/vectors/rfc9421_vectors.json"
    ))
    .unwrap();
    let pem = vectors["keys"]["test-key-ed25519"]["pem"].as_str().unwrap();
    let at = pem.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let (public, private) = (&pem[..at], &pem[at..]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), private).unwrap();
    let (s, demo) = start_demo(dir.path());
    let developer = demo["tokens"]["consumer_developer"].as_str().unwrap();
    let app = demo["ids"]["app"].as_str().unwrap();
    let (status, key) = http(
        "POST",
        &format!("http://{}/v1/apps/{app}/signing-keys", s.admin),
        Some(developer),
        Some(
            &serde_json::json!({"name": "python", "alg": "ed25519", "public_key_pem": public, "scopes": ["weather:read"], "expires_in_days": 30}),
        ),
    );
    assert_eq!(status, 201, "{key}");
    let script = r#"
import datetime, json, sys, uuid
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
gateway, key_id, key_file = sys.argv[1:4]
private = load_pem_private_key(open(key_file, "rb").read(), password=None)
class Keys(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id):
        return private
signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=Keys())
def call(nonce):
    request = requests.Request("GET", gateway + "/weather/v1/forecast/lima?units=metric").prepare()
    signer.sign(request, key_id=key_id, created=datetime.datetime.now(datetime.timezone.utc),
                nonce=nonce, label="sig1", covered_component_ids=("@method", "@authority", "@path", "@query"))
    return request
session = requests.Session()
first = call(uuid.uuid4().hex)
answer = session.send(first)
again = session.send(first)
print(json.dumps({"status": answer.status_code, "body": answer.json(), "replay": again.status_code, "replay_type": again.json().get("type")}))
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(format!("http://{}", s.gateway))
        .arg(key["id"].as_str().unwrap())
        .arg(dir.path().join("key.pem"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"]["city"], "lima", "{result}");
    assert_eq!(result["replay"], 401, "{result}");
    assert_eq!(
        result["replay_type"],
        "https://tollgate.dev/problems/signature-replayed"
    );
    assert_eq!(s.stop(), 0);
}
