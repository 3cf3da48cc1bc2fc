"""Before/after on one machine in one sitting: the full pipeline (API key + Cedar + GCRA +
quota) with the given metering mode, through each binary in turn, alternating, N rounds.
Prints req/s, CPU µs per request (the proxy's utime+stime) and p50/p99 for each run.

Usage: python3 bench/compare.py BEFORE_BIN AFTER_BIN [async|sync] [ROUNDS]
(the load generator is target/release/tollgate-bench, built by `bench/run`)."""
import json, os, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

before, after = sys.argv[1], sys.argv[2]
metering = sys.argv[3] if len(sys.argv) > 3 else "async"
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
loadgen = os.path.join(harness.target_dir(), "release", "tollgate-bench")


def measure(binary):
    tmp = tempfile.mkdtemp(prefix="tollgate-compare-")
    port = harness.free_port()
    up = harness.spawn([loadgen, "upstream", "--listen", f"127.0.0.1:{port}"], 1,
                       os.path.join(tmp, "upstream.log"))
    harness.wait_port(port, up)
    p, gw, setup = harness.start_tollgate(binary, tmp, "cmp", metering,
                                          f"http://127.0.0.1:{port}", 0, loadgen)
    try:
        return harness.load(loadgen, 1, gw, "/bench/v1/data", p.pid,
                            headers=[f"X-API-Key: {setup['api_key']}"], conns=8,
                            warmup=1, duration=8)
    finally:
        harness.stop_all()


for _ in range(rounds):
    for name, binary in (("after", after), ("before", before)):
        r = measure(binary)
        print(json.dumps({"binary": name, "rps": round(r["rps"]),
                          "cpu_us_per_req": round(r["cpu"]["us_per_req"], 1),
                          "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"]}))
