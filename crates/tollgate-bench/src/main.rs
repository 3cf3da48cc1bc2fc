//! `tollgate-bench`: the tools behind `bench/run` — an HTTP/1.1 keep-alive load generator
//! (`load`: closed loop for maximum throughput or a fixed rate, optionally with
//! pre-computed RFC 9421 ed25519 signatures, reporting latency percentiles and the CPU
//! time and peak RSS of the process under test as JSON), a fixed-response upstream
//! (`upstream`) and an ed25519 key generator (`keygen`).
//!
//! The harness pins this process and the upstream to one core and the proxy under test
//! to the other; the closed loop runs every connection on one thread, as wrk does.

mod load;
mod sign;
mod upstream;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tollgate-bench",
    about = "Load generator and helpers for bench/run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends load to one address and prints a JSON report on stdout.
    Load(LoadArgs),
    /// Serves a fixed response to every request (keep-alive).
    Upstream {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Body size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
    },
    /// Writes an ed25519 key pair: DIR/private.pem (PKCS#8) and DIR/public.pem (SPKI).
    Keygen {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Address of the server under test.
    #[arg(long)]
    addr: SocketAddr,
    /// Request path (with query).
    #[arg(long, default_value = "/")]
    path: String,
    /// `Host` header value (default: the address).
    #[arg(long)]
    host: Option<String>,
    /// Extra header line, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Keep-alive connections.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Fixed rate in requests per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Sign every request (RFC 9421, ed25519) with this PKCS#8 PEM key.
    #[arg(long, requires = "keyid")]
    sign_key: Option<PathBuf>,
    /// The signature's `keyid`.
    #[arg(long)]
    keyid: Option<String>,
    /// How many signed requests to make before the run (each is sent once).
    #[arg(long, default_value_t = 200_000)]
    sign_count: usize,
    /// Process whose CPU time and VmHWM to report for the measured window.
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Clock ticks per second of /proc/<pid>/stat.
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load(args) => run_load(args),
        Command::Upstream { listen, size } => {
            upstream::serve(listen, size).map_err(|e| e.to_string())
        }
        Command::Keygen { out } => sign::keygen().and_then(|(private, public)| {
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            std::fs::write(out.join("private.pem"), private).map_err(|e| e.to_string())?;
            std::fs::write(out.join("public.pem"), public).map_err(|e| e.to_string())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_load(args: LoadArgs) -> Result<(), String> {
    let host = args.host.clone().unwrap_or_else(|| args.addr.to_string());
    let requests = match (&args.sign_key, &args.keyid) {
        (Some(key), Some(keyid)) => {
            let pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let t = std::time::Instant::now();
            let list = sign::signed(
                &host,
                &args.path,
                &args.headers,
                &pem,
                keyid,
                args.sign_count,
                threads,
            )?;
            eprintln!(
                "signed {} requests in {:.1} s",
                list.len(),
                t.elapsed().as_secs_f64()
            );
            load::Requests::Unique {
                list,
                next: AtomicUsize::new(0),
            }
        }
        _ => load::Requests::Fixed(sign::plain(&host, &args.path, &args.headers)),
    };
    let cfg = load::Config {
        addr: args.addr,
        connections: args.connections.max(1),
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        rate: args.rate.filter(|r| *r > 0.0),
        requests: Arc::new(requests),
        watch_pid: args.watch_pid,
        clk_tck: args.clk_tck.max(1),
    };
    let report = load::run(&cfg);
    println!("{report}");
    Ok(())
}
