//! The load generator: a closed loop of keep-alive connections on one thread (maximum
//! throughput) or a fixed request rate with latency counted from each request's
//! scheduled send time (no coordinated omission), plus the watched process's CPU time
//! and peak RSS over exactly the measured window.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::wire::RespBuf;

/// What is sent: one request replayed, or pre-built unique requests used once each.
#[derive(Debug)]
pub enum Requests {
    /// The same bytes for every request.
    Fixed(Vec<u8>),
    /// One entry per request (e.g. pre-signed with unique nonces); the run stops early
    /// when they run out.
    Unique {
        /// The serialized requests.
        list: Vec<Vec<u8>>,
        /// The next unused entry.
        next: AtomicUsize,
    },
}

impl Requests {
    fn get(&self) -> Option<&[u8]> {
        match self {
            Requests::Fixed(b) => Some(b),
            Requests::Unique { list, next } => list
                .get(next.fetch_add(1, Ordering::Relaxed))
                .map(Vec::as_slice),
        }
    }
}

/// A run's parameters.
#[derive(Debug)]
pub struct Config {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Keep-alive connections.
    pub connections: usize,
    /// Time before measuring.
    pub warmup: Duration,
    /// The measured time.
    pub duration: Duration,
    /// A fixed rate in requests per second; `None` for a closed loop (maximum throughput).
    pub rate: Option<f64>,
    /// The requests.
    pub requests: Arc<Requests>,
    /// A process whose CPU time and peak RSS are reported for the measured window.
    pub watch_pid: Option<u32>,
    /// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`).
    pub clk_tck: u64,
}

/// Per-connection tallies, merged at the end.
struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    non2xx: u64,
    errors: u64,
    exhausted: bool,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            // 1 µs .. 100 s, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds"),
            ok: 0,
            non2xx: 0,
            errors: 0,
            exhausted: false,
            first_error: None,
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        self.non2xx += other.non2xx;
        self.errors += other.errors;
        self.exhausted |= other.exhausted;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn record(&mut self, status: u16, micros: u64) {
        if (200..300).contains(&status) {
            self.ok += 1;
        } else {
            self.non2xx += 1;
        }
        let _ = self.hist.record(micros.max(1));
    }
}

/// CPU ticks (utime + stime) of a process, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at the state (3rd).
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `/proc/<pid>/status` value in kB (`VmHWM`, `VmRSS`).
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs the load and returns the report as JSON.
pub fn run(cfg: &Config) -> Value {
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + cfg.warmup;
    let measure_to = measure_from + cfg.duration;
    // CPU samples at the window's edges, from a thread of their own so they are on time.
    let sampler = cfg.watch_pid.map(|pid| {
        std::thread::spawn(move || {
            sleep_until(measure_from);
            let t0 = Instant::now();
            let a = cpu_ticks(pid);
            sleep_until(measure_to);
            let b = cpu_ticks(pid);
            let secs = t0.elapsed().as_secs_f64();
            (a.zip(b).map(|(a, b)| b - a), secs, status_kb(pid, "VmHWM"))
        })
    });
    let tally = match cfg.rate {
        None => closed_loop(cfg, start, measure_from, measure_to),
        Some(rate) => open_loop(cfg, rate, start, measure_from, measure_to),
    };
    let secs = cfg.duration.as_secs_f64();
    let done = tally.ok + tally.non2xx;
    let h = &tally.hist;
    let q = |p: f64| if done == 0 { 0 } else { h.value_at_quantile(p) };
    let mut report = json!({
        "mode": if cfg.rate.is_some() { "rate" } else { "max" },
        "target_rate": cfg.rate,
        "connections": cfg.connections,
        "duration_s": secs,
        "requests": done,
        "ok": tally.ok,
        "non2xx": tally.non2xx,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "exhausted": tally.exhausted,
        "rps": done as f64 / secs,
        "latency_us": {
            "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999),
            "max": if done == 0 { 0 } else { h.max() }, "mean": if done == 0 { 0.0 } else { h.mean() },
        },
    });
    if let Some(s) = sampler
        && let Ok((ticks, window, hwm)) = s.join()
    {
        let cpu_s = ticks.map(|t| t as f64 / cfg.clk_tck as f64);
        report["cpu"] = json!({
            "pid": cfg.watch_pid,
            "ticks": ticks,
            "cpu_s": cpu_s,
            "window_s": window,
            "utilisation": cpu_s.map(|c| c / window),
            "us_per_req": cpu_s.filter(|_| done > 0).map(|c| c * 1e6 / done as f64),
        });
        report["vmhwm_kb"] = json!(hwm);
    }
    report
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Maximum throughput: every connection sends its next request as soon as the previous
/// response is complete, all on one thread (epoll), as wrk does.
fn closed_loop(cfg: &Config, start: Instant, from: Instant, to: Instant) -> Tally {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..cfg.connections {
            let requests = cfg.requests.clone();
            let addr = cfg.addr;
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                connection(addr, &requests, from, to).await
            }));
        }
        let mut total = Tally::new();
        for t in tasks {
            match t.await {
                Ok(t) => total.merge(t),
                Err(e) => total.error(format!("task failed: {e}")),
            }
        }
        total
    })
}

async fn connection(addr: SocketAddr, requests: &Requests, from: Instant, to: Instant) -> Tally {
    let mut tally = Tally::new();
    let mut buf = RespBuf::new();
    let mut stream: Option<tokio::net::TcpStream> = None;
    while Instant::now() < to {
        let s = match &mut stream {
            Some(s) => s,
            None => match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    buf.clear();
                    stream.insert(s)
                }
                Err(e) => {
                    tally.error(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(req) = requests.get() else {
            tally.exhausted = true;
            break;
        };
        let sent = Instant::now();
        let result = async {
            s.write_all(req).await.map_err(|e| format!("write: {e}"))?;
            loop {
                if let Some(f) = buf.take()? {
                    return Ok::<_, String>(f);
                }
                let n = s
                    .read(buf.spare())
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("connection closed by the server".into());
                }
                buf.filled(n);
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), result).await {
            Ok(Ok(f)) => {
                let done = Instant::now();
                if sent >= from && done <= to {
                    tally.record(f.status, (done - sent).as_micros() as u64);
                }
                if f.close {
                    stream = None;
                }
            }
            Ok(Err(e)) => {
                tally.error(e);
                stream = None;
            }
            Err(_) => {
                tally.error("timeout (5 s)".into());
                stream = None;
            }
        }
    }
    tally
}

/// A fixed rate: request k of the run is due at `start + k / rate`; connection i (a
/// blocking thread, so send times are microsecond-precise) sends requests i, i + C, …;
/// latency runs from the due time, so a late send counts against the server.
fn open_loop(cfg: &Config, rate: f64, start: Instant, from: Instant, to: Instant) -> Tally {
    let c = cfg.connections;
    let threads: Vec<_> = (0..c)
        .map(|i| {
            let requests = cfg.requests.clone();
            let addr = cfg.addr;
            std::thread::spawn(move || {
                // Finer timer slack for precise send times; best effort.
                let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1000");
                let mut tally = Tally::new();
                let mut buf = RespBuf::new();
                let mut stream: Option<TcpStream> = None;
                let mut k = i as u64;
                loop {
                    let due = start + Duration::from_secs_f64(k as f64 / rate);
                    k += c as u64;
                    if due >= to {
                        break;
                    }
                    sleep_until(due);
                    let s = match &mut stream {
                        Some(s) => s,
                        None => match TcpStream::connect(addr) {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                                buf.clear();
                                stream.insert(s)
                            }
                            Err(e) => {
                                tally.error(format!("connect: {e}"));
                                continue;
                            }
                        },
                    };
                    let Some(req) = requests.get() else {
                        tally.exhausted = true;
                        break;
                    };
                    match exchange(s, req, &mut buf) {
                        Ok(f) => {
                            let done = Instant::now();
                            if due >= from && done <= to + Duration::from_secs(1) {
                                tally.record(f.status, (done - due).as_micros() as u64);
                            }
                            if f.close {
                                stream = None;
                            }
                        }
                        Err(e) => {
                            tally.error(e);
                            stream = None;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::new();
    for t in threads {
        match t.join() {
            Ok(t) => total.merge(t),
            Err(_) => total.error("a connection thread panicked".into()),
        }
    }
    total
}

fn exchange(
    s: &mut TcpStream,
    req: &[u8],
    buf: &mut RespBuf,
) -> Result<crate::wire::Framed, String> {
    s.write_all(req).map_err(|e| format!("write: {e}"))?;
    loop {
        if let Some(f) = buf.take()? {
            return Ok(f);
        }
        let n = s.read(buf.spare()).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed by the server".into());
        }
        buf.filled(n);
    }
}
