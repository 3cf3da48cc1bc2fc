//! Ledger benches: durable appends per second through the group-commit writer (encoding,
//! hashing, segment write, fsync), commit latency at a steady offered load (hdrhistogram),
//! and inclusion / consistency proof generation on a 10^7-leaf stored log.
//!
//! `LEDGER_BENCH_LEAVES` overrides the size of the proof log; `LEDGER_BENCH_DIR` places the
//! temporary directories (default: the system temp dir, which must be a real disk for the
//! fsync figures to mean anything).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use tollgate_core::usage::{UsageData, UsageEvent};
use tollgate_ledger::log::{Log, Options};
use tollgate_ledger::note::Ed25519Signer;
use tollgate_ledger::writer::{Committed, Writer, WriterConfig};

const ORIGIN: &str = "bench.tollgate.example/ledger";

type Done = Box<dyn FnOnce(Committed) + Send>;

fn tempdir() -> tempfile::TempDir {
    match std::env::var_os("LEDGER_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// A usage event as the gateway writes it (tollgate-core's CloudEvent, ~0.6 KiB leaf),
/// encoded the way the server encodes it: version byte + canonical JSON written directly.
fn event_leaf(template: &UsageEvent, i: u64) -> Vec<u8> {
    let mut e = template.clone();
    e.id = format!("01a20d2c-4d28-7253-a886-{i:012}");
    e.data.latency_us = 900 + i % 700;
    e.leaf()
}

fn template() -> UsageEvent {
    let sub = tollgate_core::SubscriptionId::new();
    UsageEvent {
        data: UsageData {
            api_id: tollgate_core::ApiId::new(),
            app_id: tollgate_core::AppId::new(),
            client_ip_hash: Some("5f1c2d3e4f505f1c2d3e4f505f1c2d3e".into()),
            consumer_org_id: tollgate_core::OrgId::new(),
            credential_id: tollgate_core::ApiKeyId::new().to_string(),
            fields: Default::default(),
            latency_us: 1234,
            method: "GET".into(),
            mode: tollgate_core::apikey::KeyMode::Live,
            operation_id: "getForecast".into(),
            policy_ids: vec!["plan/abc/allow-forecasts".into()],
            provider_org_id: tollgate_core::OrgId::new(),
            refunded: false,
            request_bytes: 0,
            response_bytes: 1024,
            snapshot_version: 42,
            status: 200,
            subscription_id: sub,
            terms_sha256: Some(
                "0de18df6c71bb41ffa609cefbd093e1c9c74f23543d2642ad4385e6e7a04f5d1".into(),
            ),
        },
        datacontenttype: "application/json".into(),
        id: String::new(),
        source: "/tollgate/mkt-1/node-0/gateway".into(),
        specversion: "1.0".into(),
        subject: sub.to_string(),
        time: "2026-03-01T12:00:00.123456Z".into(),
        kind: "dev.tollgate.usage.call.v1".into(),
    }
}

fn spawn_writer(dir: &std::path::Path) -> Writer<Done> {
    let signer = Ed25519Signer::from_seed(ORIGIN, &[7u8; 32]).unwrap();
    let log = Log::open(dir, ORIGIN, &[signer.verifier()], Options::default()).unwrap();
    let config = WriterConfig {
        signer: Some(Box::new(signer)),
        ..WriterConfig::default()
    };
    Writer::spawn(log, config).unwrap()
}

fn bench_writer(c: &mut Criterion) {
    let dir = tempdir();
    let writer = spawn_writer(dir.path());
    let done = Arc::new(AtomicU64::new(0));
    let mut next = 0u64;
    let mut g = c.benchmark_group("writer");
    let t = template();
    const N: u64 = 50_000;
    g.throughput(Throughput::Elements(N));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("encode_only_50k_events", |b| {
        b.iter(|| {
            for i in 0..N {
                black_box(event_leaf(&t, i));
            }
        })
    });
    g.bench_function("durable_append_50k_events", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let target = done.load(Ordering::Acquire) + iters * N;
            for _ in 0..iters * N {
                let d = done.clone();
                let leaf = event_leaf(&t, next);
                next += 1;
                writer
                    .append(
                        leaf,
                        Box::new(move |r: Committed| {
                            r.unwrap();
                            d.fetch_add(1, Ordering::Release);
                        }),
                    )
                    .unwrap();
            }
            while done.load(Ordering::Acquire) < target {
                std::thread::sleep(Duration::from_micros(200));
            }
            start.elapsed()
        })
    });
    // The same without the JCS encoding (done before the clock starts): what the writer
    // thread itself sustains once producers hand it bytes.
    g.bench_function("durable_append_50k_preencoded", |b| {
        b.iter_custom(|iters| {
            let leaves: Vec<Vec<u8>> = (0..iters * N).map(|i| event_leaf(&t, next + i)).collect();
            next += iters * N;
            let start = Instant::now();
            let target = done.load(Ordering::Acquire) + iters * N;
            for leaf in leaves {
                let d = done.clone();
                writer
                    .append(
                        leaf,
                        Box::new(move |r: Committed| {
                            r.unwrap();
                            d.fetch_add(1, Ordering::Release);
                        }),
                    )
                    .unwrap();
            }
            while done.load(Ordering::Acquire) < target {
                std::thread::sleep(Duration::from_micros(200));
            }
            start.elapsed()
        })
    });
    g.finish();
    drop(writer.shutdown().unwrap());
}

/// Offers `rate` events/s for `secs` seconds from one thread and reports commit latency
/// (append call to completion) percentiles.
fn latency_at(rate: u64, secs: u64) {
    let dir = tempdir();
    let writer = spawn_writer(dir.path());
    let hist = Arc::new(std::sync::Mutex::new(
        hdrhistogram::Histogram::<u64>::new(3).unwrap(),
    ));
    let outstanding = Arc::new(AtomicU64::new(0));
    let t = template();
    let total = rate * secs;
    let start = Instant::now();
    for i in 0..total {
        // Pace in small bursts of 1 ms worth of events.
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t0 = Instant::now();
        let h = hist.clone();
        let o = outstanding.clone();
        o.fetch_add(1, Ordering::AcqRel);
        writer
            .append(
                event_leaf(&t, i),
                Box::new(move |r: Committed| {
                    r.unwrap();
                    h.lock()
                        .unwrap()
                        .record(t0.elapsed().as_micros() as u64)
                        .unwrap();
                    o.fetch_sub(1, Ordering::AcqRel);
                }),
            )
            .unwrap();
    }
    while outstanding.load(Ordering::Acquire) > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let achieved = total as f64 / start.elapsed().as_secs_f64();
    drop(writer.shutdown().unwrap());
    let h = hist.lock().unwrap();
    println!(
        "latency at {rate} events/s offered ({achieved:.0}/s achieved, {total} events): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
}

fn bench_latency(_c: &mut Criterion) {
    for rate in [20_000, 100_000] {
        latency_at(rate, 5);
    }
}

fn bench_proofs(c: &mut Criterion) {
    let n: u64 = std::env::var("LEDGER_BENCH_LEAVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempdir();
    let t = Instant::now();
    let mut log = Log::open(dir.path(), ORIGIN, &[], Options::default()).unwrap();
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(65536);
    let mut i = 0u64;
    while i < n {
        batch.clear();
        let end = (i + 65536).min(n);
        // Synthetic 80-byte leaves: building 10^7 JCS events would only slow the setup.
        batch.extend((i..end).map(|k| {
            let mut v = vec![1u8; 80];
            v[..8].copy_from_slice(&k.to_le_bytes());
            v
        }));
        log.append_batch(&batch).unwrap();
        i = end;
    }
    println!("built a {n}-leaf log in {:.1} s", t.elapsed().as_secs_f64());
    let reader = log.reader();
    let mut g = c.benchmark_group(format!("proofs_{n}"));
    g.sample_size(50).measurement_time(Duration::from_secs(5));
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    g.bench_function("inclusion", |b| {
        b.iter(|| {
            let i = rnd() % n;
            black_box(reader.inclusion_proof(i, n).unwrap())
        })
    });
    let mut y = 0x2545f4914f6cdd1du64;
    g.bench_function("consistency", |b| {
        b.iter(|| {
            y ^= y << 13;
            y ^= y >> 7;
            y ^= y << 17;
            let m = 1 + y % (n - 1);
            black_box(reader.consistency_proof(m, n).unwrap())
        })
    });
    g.bench_function("root_at", |b| {
        b.iter(|| {
            let m = 1 + rnd() % n;
            black_box(reader.root_at(m).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_writer, bench_latency, bench_proofs);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
