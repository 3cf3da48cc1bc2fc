//! The usage ledger end to end: `tollgate ledger verify` online and offline on a real
//! marketplace, tampered segment files refused by both the verifier and `serve`, and no
//! delivered call lost or counted twice when the server is killed (`--metering sync`).

use super::{BIN, Server, gateway_get, http, start_demo, tollgate};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A server killed (SIGKILL) when dropped, so a failing test leaves no process behind.
struct Running(Option<Server>);

impl Running {
    fn new(s: Server) -> Self {
        Self(Some(s))
    }

    fn admin(&self) -> String {
        format!("http://{}", self.0.as_ref().unwrap().admin)
    }

    fn gateway(&self) -> String {
        format!("http://{}", self.0.as_ref().unwrap().gateway)
    }

    /// SIGTERM; the exit code.
    fn stop(mut self) -> i32 {
        self.0.take().unwrap().stop()
    }

    /// SIGKILL, as a crash.
    fn kill9(mut self) {
        let mut s = self.0.take().unwrap();
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = &mut self.0 {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
}

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /v1/ledger`'s entry for `log`.
fn log_info(admin: &str, log: &str) -> Value {
    let (status, body) = http("GET", &format!("{admin}/v1/ledger"), None, None);
    assert_eq!(status, 200, "{body}");
    body["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == log)
        .unwrap_or_else(|| panic!("no {log} log in {body}"))
        .clone()
}

/// Waits until every log's latest checkpoint covers all its durable entries; returns the
/// live size.
fn wait_checkpointed(admin: &str) -> u64 {
    for _ in 0..300 {
        let (_, body) = http("GET", &format!("{admin}/v1/ledger"), None, None);
        let logs = body["logs"].as_array().unwrap();
        if logs
            .iter()
            .all(|l| l["checkpoint_size"] == l["size"] && l["pending"] == 0)
        {
            return log_info(admin, "live")["size"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the ledger was not checkpointed in time");
}

/// The note verifier key of `log`.
fn public_key(admin: &str, log: &str) -> String {
    let (status, body) = http(
        "GET",
        &format!("{admin}/v1/ledger/{log}/public-key"),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    body.as_str().unwrap().trim().to_owned()
}

/// `n` successful gateway calls with the demo key (waiting out the demo plan's rate limit).
fn calls(gateway: &str, key: &str, n: usize) {
    let forecast = format!("{gateway}/weather/v1/forecast/lima");
    let mut ok = 0;
    for _ in 0..2000 {
        if ok == n {
            return;
        }
        let (status, head, body) = gateway_get(&forecast, key);
        match status {
            200 => ok += 1,
            429 => std::thread::sleep(Duration::from_millis(100)),
            _ => panic!("{head}{body}"),
        }
    }
    panic!("only {ok} of {n} calls went through");
}

fn verify_json(cwd: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["ledger", "verify", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = tollgate(cwd, &all, &[("TOLLGATE_TOKEN", "")]);
    let v = serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}\n{err}"));
    (code, v, err)
}

fn live(report: &Value) -> &Value {
    report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["log"] == "live")
        .unwrap()
}

#[test]
fn ledger_verify_passes_online_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (s, demo) = start_demo(dir.path());
    let s = Running::new(s);
    let (admin, gateway) = (s.admin(), s.gateway());
    let operator = demo["tokens"]["operator"].as_str().unwrap();
    let key = demo["tokens"]["api_key"].as_str().unwrap();
    let before = wait_checkpointed(&admin);
    calls(&gateway, key, 20);
    let size = wait_checkpointed(&admin);
    assert_eq!(size, before + 20);
    let (live_key, test_key) = (public_key(&admin, "live"), public_key(&admin, "test"));

    // Online with the operator token: every entry read, the tree recomputed.
    let (code, report, err) = verify_json(
        dir.path(),
        &["--url", &admin, "--token", operator, "--log", "all"],
    );
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["ok"], true);
    let l = live(&report);
    assert_eq!(l["entries"], size, "{report:#}");
    assert_eq!(
        (&l["ok"], &l["tree_checked"], &l["signatures_checked"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::Bool(true)),
        "{report:#}"
    );
    assert!(l["checkpoints"].as_u64().unwrap() >= 1, "{report:#}");
    assert_eq!(report["logs"].as_array().unwrap().len(), 2);
    // Without a token: signatures and consistency between checkpoints only.
    let (code, report, err) = verify_json(dir.path(), &["--url", &admin, "--log", "live"]);
    assert_eq!(code, 0, "{report:#}\n{err}");
    let l = live(&report);
    assert_eq!(l["tree_checked"], false);
    assert!(
        l["notes"][0]
            .as_str()
            .unwrap()
            .contains("server's current key")
    );
    assert!(
        l["notes"][1].as_str().unwrap().contains("consistency"),
        "{report:#}"
    );
    // A key given for the log replaces the server's; a malformed one is refused.
    let wrong = test_key.replacen("/test+", "/live+", 1);
    let (code, report, _) = verify_json(
        dir.path(),
        &["--url", &admin, "--log", "live", "--key", &live_key],
    );
    assert_eq!(code, 0, "{report:#}");
    let (code, _, err) = tollgate(
        dir.path(),
        &["ledger", "verify", "--url", &admin, "--key", &wrong],
        &[],
    );
    // The key id binds the name: a renamed key does not parse.
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--key"), "{err}");

    assert_eq!(s.stop(), 0);
    let data = dir.path().join("tollgate-data");
    let data = data.to_str().unwrap();
    let (code, report, err) = verify_json(
        dir.path(),
        &["--data-dir", data, "--key", &live_key, "--key", &test_key],
    );
    assert_eq!(code, 0, "{report:#}\n{err}");
    let l = live(&report);
    assert_eq!(l["entries"], size, "{report:#}");
    assert_eq!(l["signatures_checked"], true);
    assert_eq!(l["segments"], 1);
    assert_eq!(l["torn_tail"], Value::Null);
    assert!(l["checkpoints"].as_u64().unwrap() >= 1);
    // Without a key: everything but the signatures, and it says so.
    let (code, out, err) = tollgate(
        dir.path(),
        &["ledger", "verify", "--data-dir", data, "--log", "live"],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("live ("), "{out}");
    assert!(out.contains(&format!("{size} entries")), "{out}");
    assert!(
        out.contains("signatures not checked (pass --key or use --url)"),
        "{out}"
    );
}

/// Byte ranges of the records of a segment file (16-byte header, then
/// `len u32 LE ‖ hcrc u32 ‖ body ‖ crc u32`).
fn records(seg: &[u8]) -> Vec<std::ops::Range<usize>> {
    assert_eq!(&seg[..8], b"TGLSEG01");
    let mut out = Vec::new();
    let mut at = 16;
    while at + 8 <= seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        out.push(at..at + 12 + len);
        at += 12 + len;
    }
    assert_eq!(at, seg.len(), "trailing bytes in the segment");
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Runs `tollgate serve` on `data_dir` expecting it to refuse to start: its exit code and
/// stderr.
fn serve_refuses(data_dir: &Path) -> (i32, String) {
    let child = Command::new(BIN)
        .args([
            "serve",
            "--admin-listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .env_remove("TOLLGATE_MASTER_KEY")
        .env_remove("TOLLGATE_DATA_DIR")
        .env_remove("TOLLGATE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let mut stderr = guard.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            panic!("serve kept running on a tampered ledger");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, reader.join().unwrap())
}

#[test]
fn tampered_segments_fail_verify_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (s, demo) = start_demo(dir.path());
    let s = Running::new(s);
    let admin = s.admin();
    calls(&s.gateway(), demo["tokens"]["api_key"].as_str().unwrap(), 6);
    wait_checkpointed(&admin);
    let live_key = public_key(&admin, "live");
    assert_eq!(s.stop(), 0);
    let data = dir.path().join("tollgate-data");
    let segs: Vec<PathBuf> = std::fs::read_dir(data.join("ledger/live/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    let seg_name = segs[0].file_name().unwrap().to_str().unwrap().to_owned();
    let original = std::fs::read(&segs[0]).unwrap();
    let recs = records(&original);
    assert!(recs.len() >= 4, "{} records", recs.len());
    let (r1, r2) = (recs[1].clone(), recs[2].clone());

    let flip = {
        let mut b = original.clone();
        b[r2.start + 8 + (r2.len() - 12) / 2] ^= 0x20;
        b
    };
    let delete = [&original[..r1.start], &original[r1.end..]].concat();
    let duplicate = [
        &original[..r1.end],
        &original[r1.clone()],
        &original[r1.end..],
    ]
    .concat();
    let swap = [
        &original[..r1.start],
        &original[r2.clone()],
        &original[r1.clone()],
        &original[r2.end..],
    ]
    .concat();
    let cases = [
        ("flip", flip, 2),
        ("delete", delete, 1),
        ("duplicate", duplicate, 2),
        ("swap", swap, 1),
    ];
    for (case, bytes, index) in cases {
        let copy = tempfile::tempdir().unwrap();
        let tampered = copy.path().join("tollgate-data");
        copy_dir(&data, &tampered);
        std::fs::write(
            tampered.join("ledger/live/segments").join(&seg_name),
            &bytes,
        )
        .unwrap();
        let t = tampered.to_str().unwrap();

        // Without a key and with one: the first bad record, by file, offset and index.
        for keys in [&[][..], &["--key", live_key.as_str()][..]] {
            let mut args = vec!["--data-dir", t, "--log", "live"];
            args.extend_from_slice(keys);
            let (code, report, err) = verify_json(dir.path(), &args);
            assert_eq!(code, 1, "{case}: {report:#}\n{err}");
            assert_eq!(report["ok"], false, "{case}");
            let l = live(&report);
            assert_eq!(l["ok"], false, "{case}");
            let e = l["first_error"].as_str().unwrap();
            assert!(e.contains(&seg_name), "{case}: {e}");
            assert!(e.contains(&format!("(leaf index {index})")), "{case}: {e}");
            assert!(e.contains(" at byte "), "{case}: {e}");
        }
        let (code, out, _) = tollgate(
            dir.path(),
            &["ledger", "verify", "--data-dir", t, "--log", "live"],
            &[],
        );
        assert_eq!(code, 1, "{case}");
        assert!(
            out.contains("FAILED") && out.contains(&seg_name),
            "{case}: {out}"
        );

        let (code, err) = serve_refuses(&tampered);
        assert_ne!(code, 0, "{case}: {err}");
        assert!(err.contains("ledger"), "{case}: {err}");
        assert!(err.contains(&seg_name), "{case}: {err}");
    }
}

/// What one load request got.
enum Outcome {
    /// A 2xx whose whole body arrived, with its usage id.
    Delivered(String),
    /// Any other complete answer (a 429 from the demo plan's rate limit).
    Refused,
    /// No complete answer: the request may or may not have reached the gateway.
    Cut,
}

/// One GET through the gateway, classifying the answer strictly: a response counts as
/// complete only when its framing (Content-Length or the last chunk) says so.
fn load_get(host: &str, path: &str, key: &str) -> Outcome {
    use std::io::{Read, Write};
    let Ok(addr) = host.parse() else {
        return Outcome::Cut;
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Outcome::Cut;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nX-API-Key: {key}\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return Outcome::Cut;
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let Some(split) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Outcome::Cut;
    };
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let body = &resp[split + 4..];
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::trim)
    };
    let complete = match (field("content-length"), field("transfer-encoding")) {
        (Some(n), _) => n.parse::<usize>().is_ok_and(|n| body.len() == n),
        (None, Some(te)) if te.contains("chunked") => body.ends_with(b"0\r\n\r\n"),
        _ => false,
    };
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    match (complete, status) {
        (false, _) => Outcome::Cut,
        (true, 200..=299) => match field("tollgate-usage-id") {
            Some(id) => Outcome::Delivered(id.to_owned()),
            None => Outcome::Cut,
        },
        (true, _) => Outcome::Refused,
    }
}

#[test]
fn sync_metering_loses_and_doubles_nothing_on_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--demo", "--metering", "sync"], &[]);
    let s = Running::new(s);
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("tollgate-data/demo.json")).unwrap(),
    )
    .unwrap();
    let key = demo["tokens"]["api_key"].as_str().unwrap().to_owned();
    let operator = demo["tokens"]["operator"].as_str().unwrap().to_owned();
    let admin = s.admin();
    assert_eq!(log_info(&admin, "live")["durability"], "sync");
    let before = wait_checkpointed(&admin);
    let (live_key, test_key) = (public_key(&admin, "live"), public_key(&admin, "test"));
    let host = s.gateway().trim_start_matches("http://").to_owned();

    // Eight clients loop on the gateway until the server dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (stop, host, key) = (stop.clone(), host.clone(), key.clone());
            std::thread::spawn(move || {
                let cities = ["lima", "osaka", "lagos", "toronto"];
                let path = format!("/weather/v1/forecast/{}", cities[i % cities.len()]);
                let mut out = Vec::new();
                // Bounded: the server is killed long before this many requests.
                for _ in 0..100_000 {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let o = load_get(&host, &path, &key);
                    if matches!(o, Outcome::Refused) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    out.push(o);
                }
                out
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // No request starts after this, so a call without a complete answer was in flight
    // when the server died.
    stop.store(true, Ordering::Release);
    s.kill9();
    let mut delivered = Vec::new();
    let mut cut = 0u64;
    let mut refused = 0u64;
    for w in workers {
        for o in w.join().unwrap() {
            match o {
                Outcome::Delivered(id) => delivered.push(id),
                Outcome::Refused => refused += 1,
                Outcome::Cut => cut += 1,
            }
        }
    }
    eprintln!(
        "kill -9 under load: {} delivered, {refused} refused, {cut} cut",
        delivered.len()
    );
    assert!(
        !delivered.is_empty(),
        "no call went through ({refused} refused, {cut} cut)"
    );

    // The files verify after the crash (a torn tail is crash debris, not tampering).
    let data = dir.path().join("tollgate-data");
    let (code, report, err) = verify_json(
        dir.path(),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--key",
            &live_key,
            "--key",
            &test_key,
        ],
    );
    assert_eq!(code, 0, "{report:#}\n{err}");

    // It starts again on the same files: nothing delivered is missing, nothing doubled.
    let s = Running::new(Server::start(
        dir.path(),
        &["--demo", "--metering", "sync"],
        &[],
    ));
    let admin = s.admin();
    let size = log_info(&admin, "live")["size"].as_u64().unwrap();
    let added = size - before;
    eprintln!("after restart: {added} new live entries");
    let n = delivered.len() as u64;
    assert!(
        added >= n && added <= n + cut,
        "{added} new entries for {n} delivered calls and {cut} cut ones"
    );
    let mut ids = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + 1000).min(size);
        let (status, page) = http(
            "GET",
            &format!("{admin}/v1/ledger/live/entries?start={start}&end={end}"),
            Some(&operator),
            None,
        );
        assert_eq!(status, 200, "{page}");
        for e in page["entries"].as_array().unwrap() {
            ids.push(e["event"]["id"].as_str().unwrap().to_owned());
        }
        start = end;
    }
    assert_eq!(ids.len() as u64, size);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event id appears twice");
    let delivered_unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(delivered_unique.len(), delivered.len());
    for id in &delivered {
        assert!(
            unique.contains(id),
            "delivered call {id} is not in the ledger"
        );
    }
    assert_eq!(s.stop(), 0);
}
