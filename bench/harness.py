#!/usr/bin/env python3
"""Side-by-side load benchmark: the same workload through the upstream directly, nginx,
HAProxy and Tollgate (no auth, full pipeline async/sync, RFC 9421 signed requests).

Run through `bench/run [--quick|--smoke] [--out DIR]`. Everything listens on 127.0.0.1;
configs and data live in a temporary directory; every process started here is stopped on
exit (normal, error or signal). Standard library only.
"""

import argparse
import atexit
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BODY_LEN = 1024

# Durations in seconds; connections for the closed loop (max throughput).
PROFILES = {
    "full": dict(warmup=3.0, duration=15.0, conns=64, rate_warmup=2.0, rate_duration=10.0),
    "quick": dict(warmup=1.0, duration=4.0, conns=64, rate_warmup=1.0, rate_duration=3.0),
    "smoke": dict(warmup=0.2, duration=0.6, conns=4, rate_warmup=0.1, rate_duration=0.5),
}
SMOKE_RATE = 200.0
# Signed requests are made before each run; the gateway verifies ~25-40k ed25519
# signatures per second per core, so this many per second of run is enough for one core.
SIGNED_MAX_RATE = 40_000

SCENARIOS = [
    ("direct", "upstream directly (1 KiB fixed response)"),
    ("nginx", "nginx `proxy_pass`, 1 worker, upstream keepalive"),
    ("haproxy", "HAProxy, 1 thread, keepalive"),
    ("tg-public", "Tollgate, route with no auth"),
    ("tg-async", "Tollgate, API key + Cedar + GCRA + quota, metering async"),
    ("tg-sync", "Tollgate, same, metering sync"),
    ("tg-signed", "Tollgate, RFC 9421 ed25519 signed requests, metering async"),
]

PROCS = []  # Popen objects, each the leader of its own session.


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stop_all():
    for p in reversed(PROCS):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    for p in reversed(PROCS):
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    PROCS.clear()


def stop(p):
    if p in PROCS:
        PROCS.remove(p)
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def spawn(cmd, cpu, log_path, env=None):
    """Starts `cmd` pinned to `cpu` (if any) in a session of its own."""
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = open(log_path, "ab")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    PROCS.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def worker_pid(master, timeout=5):
    """nginx's single worker (the process doing the work), else the master itself."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        kids = children(master)
        if kids:
            return kids[0]
        time.sleep(0.05)
    return master


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def version(cmd):
    try:
        r = run(cmd, timeout=10)
        text = (r.stdout + r.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# --- tools ---------------------------------------------------------------------------

def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")


def ensure_packages(missing, notes):
    """Installs Debian packages (never under --smoke), without starting their services."""
    if not missing:
        return
    if not shutil.which("apt-get"):
        notes.append(f"not installed (no apt-get): {', '.join(missing)}")
        return
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        notes.append(f"not installed (not root, no sudo): {', '.join(missing)}")
        return
    log(f"installing {' '.join(missing)} (apt-get)")
    # RUNLEVEL=1 keeps invoke-rc.d from starting the packages' system services.
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")
    r = subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + missing, env=env,
                       stdout=sys.stderr, stderr=sys.stderr)
    if r.returncode != 0:
        subprocess.run(sudo + ["apt-get", "update", "-q"], env=env, stdout=sys.stderr)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + missing, env=env,
                       stdout=sys.stderr, stderr=sys.stderr)


def build(profile_release, notes, smoke):
    """The tollgate and tollgate-bench binaries: built in release (full, quick) or the
    debug build CI already has (smoke; built only when missing and cargo exists)."""
    kind = "release" if profile_release else "debug"
    tdir = target_dir()
    tollgate = os.path.join(tdir, kind, "tollgate")
    loadgen = os.path.join(tdir, kind, "tollgate-bench")
    if smoke:
        need = [p for p, b, env in (("tollgate", tollgate, "TOLLGATE_BIN"),
                                    ("tollgate-bench", loadgen, "TOLLGATE_BENCH_BIN"))
                if not os.path.exists(os.environ.get(env, b))]
        if need and shutil.which("cargo"):
            log(f"building {', '.join(need)} (debug)")
            args = ["cargo", "build", "-q"] + sum((["-p", p] for p in need), [])
            subprocess.run(args, cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr)
    elif os.environ.get("TOLLGATE_BIN") and os.environ.get("TOLLGATE_BENCH_BIN"):
        log("using TOLLGATE_BIN and TOLLGATE_BENCH_BIN (no build)")
    else:
        if not shutil.which("cargo"):
            raise SystemExit("bench/run: cargo is required (https://rustup.rs)")
        log("building tollgate and tollgate-bench (release)")
        r = subprocess.run(["cargo", "build", "--release", "-q", "-p", "tollgate", "-p",
                            "tollgate-bench"], cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr)
        if r.returncode != 0:
            raise SystemExit("bench/run: the release build failed")
    # Overrides (e.g. CI's binaries living elsewhere).
    tollgate = os.environ.get("TOLLGATE_BIN", tollgate)
    loadgen = os.environ.get("TOLLGATE_BENCH_BIN", loadgen)
    return (tollgate if os.path.exists(tollgate) else None,
            loadgen if os.path.exists(loadgen) else None)


# --- servers -------------------------------------------------------------------------

NGINX_COMMON = """
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/{name}-body;
  proxy_temp_path {tmp}/{name}-proxy;
  fastcgi_temp_path {tmp}/{name}-fastcgi;
  uwsgi_temp_path {tmp}/{name}-uwsgi;
  scgi_temp_path {tmp}/{name}-scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  {body}
}}
"""


def start_nginx(tmp, name, body, cpu):
    conf = os.path.join(tmp, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(NGINX_COMMON.format(tmp=tmp, name=name, body=body))
    p = spawn(["nginx", "-p", tmp, "-e", f"{tmp}/{name}.error.log", "-c", conf], cpu,
              os.path.join(tmp, f"{name}.log"))
    return p


def upstream_nginx(tmp, port, cpu):
    body = ("server { listen 127.0.0.1:%d; location / { default_type text/plain; "
            "return 200 '%s'; } }") % (port, "x" * BODY_LEN)
    p = start_nginx(tmp, "upstream", body, cpu)
    wait_port(port, p)
    return p, worker_pid(p.pid)


def proxy_nginx(tmp, port, up_port, cpu):
    body = (f"upstream up {{ server 127.0.0.1:{up_port}; keepalive 128; "
            f"keepalive_requests 100000000; }}\n"
            f"  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://up; "
            f"proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}")
    p = start_nginx(tmp, "proxy", body, cpu)
    wait_port(port, p)
    return p, worker_pid(p.pid)


def proxy_haproxy(tmp, port, up_port, cpu):
    conf = os.path.join(tmp, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(f"""global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server up 127.0.0.1:{up_port} maxconn 1000
""")
    p = spawn(["haproxy", "-f", conf, "-db"], cpu, os.path.join(tmp, "haproxy.log"))
    wait_port(port, p)
    return p, p.pid


class Admin:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text.decode(errors="replace")

    def ok(self, method, path, body=None, token=None):
        status, out = self.call(method, path, body, token)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {out}")
        return out


def bench_openapi():
    return {
        "openapi": "3.1.0",
        "info": {"title": "Bench", "version": "1.0.0"},
        "paths": {"/data": {"get": {"operationId": "getData", "summary": "1 KiB of data",
                                    "responses": {"200": {"description": "OK"}}}}},
    }


def bench_terms():
    return {
        "id": "bench-terms", "version": "1.0.0", "title": "Benchmark terms",
        "effective": "2026-01-01", "jurisdiction": "FR", "governing_law": "the laws of France",
        "language": "en",
        "sections": [{"id": "use", "title": "Use", "body": "Load tests only."}],
        "grants": [{"api": "bench", "operations": ["getData"], "scopes": ["bench:read"],
                    "group": "all"}],
        "data": {"retention_days": 30},
        "limits": {
            "time_zone": "UTC",
            # Generous: the bench measures the checks, it must never be throttled.
            "rate": [{"group": "all", "requests": 10_000_000, "per": "second",
                      "burst": 10_000_000}],
            "quota": [{"group": "all", "requests": 1_000_000_000, "per": "calendar_month"}],
        },
        "notice": {"days": 30, "on_expiry": "move"},
    }


def start_tollgate(binary, tmp, tag, metering, upstream_url, cpu, loadgen):
    """Starts `tollgate serve --demo` and creates the bench API (upstream = ours), a plan
    with generous terms, an app, a subscription, an API key, a signing key and, when the
    gateway supports it, a public API. Returns (proc, gateway port, setup dict)."""
    data = os.path.join(tmp, f"tg-{tag}")
    os.makedirs(data, exist_ok=True)
    admin_port, gw_port = free_port(), free_port()
    env = dict(os.environ, TOKIO_WORKER_THREADS="1", TOLLGATE_LOG="warn",
               TOLLGATE_LOG_FORMAT="json")
    p = spawn([binary, "serve", "--demo", "--data-dir", data,
               "--admin-listen", f"127.0.0.1:{admin_port}",
               "--gateway-listen", f"127.0.0.1:{gw_port}", "--metering", metering],
              cpu, os.path.join(tmp, f"tg-{tag}.log"), env=env)
    demo_path = os.path.join(data, "demo.json")
    deadline = time.time() + 120
    while not os.path.exists(demo_path):
        if p.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"tollgate did not start (see {tmp}/tg-{tag}.log)")
        time.sleep(0.1)
    wait_port(gw_port, p)
    time.sleep(0.2)
    with open(demo_path) as f:
        demo = json.load(f)
    ids, tokens = demo["ids"], demo["tokens"]
    a = Admin(f"http://127.0.0.1:{admin_port}", tokens["operator"])
    bob = tokens.get("consumer_developer")
    api = a.ok("POST", "/v1/apis", {
        "org_id": ids["provider_org"], "slug": "bench", "name": "Bench", "version": "v1",
        "description": "Load benchmark API.", "base_path": "/bench/v1",
        "upstreams": [upstream_url], "openapi": bench_openapi()})
    a.ok("PATCH", f"/v1/apis/{api['id']}", {"status": "published"})
    terms = a.ok("POST", "/v1/terms", {"org_id": ids["provider_org"], "document": bench_terms()})
    a.ok("POST", f"/v1/terms/{terms['id']}/publish")
    plan = a.ok("POST", "/v1/plans", {
        "org_id": ids["provider_org"], "slug": "bench", "name": "Bench",
        "description": "Load benchmark.", "visibility": "public", "approval_required": False,
        "apis": [{"api_id": api["id"], "operations": ["getData"]}]})
    a.ok("PATCH", f"/v1/plans/{plan['id']}", {"status": "published", "terms_id": terms["id"]})
    app = a.ok("POST", "/v1/apps", {"org_id": ids["consumer_org"], "slug": "bench",
                                    "name": "Bench client"})
    a.ok("POST", "/v1/subscriptions", {"app_id": app["id"], "plan_id": plan["id"],
                                       "reason": "benchmark", "accept_terms": terms["sha256"]},
         token=bob)
    key = a.ok("POST", f"/v1/apps/{app['id']}/keys", {
        "name": "bench", "mode": "live", "expires_in_days": 30, "scopes": ["bench:read"]},
        token=bob)
    setup = {"api_key": key["secret"], "public_path": None, "keyid": None}
    # RFC 9421 signing key.
    keydir = os.path.join(tmp, f"key-{tag}")
    r = run([loadgen, "keygen", "--out", keydir])
    if r.returncode == 0:
        with open(os.path.join(keydir, "public.pem")) as f:
            pem = f.read()
        status, sk = a.call("POST", f"/v1/apps/{app['id']}/signing-keys", {
            "name": "bench", "alg": "ed25519", "public_key_pem": pem, "expires_in_days": 30,
            "scopes": ["bench:read"]}, token=bob)
        if status < 300:
            setup["keyid"], setup["key_pem"] = sk["id"], os.path.join(keydir, "private.pem")
        else:
            setup["signed_error"] = f"signing key refused: {status} {sk}"
    # A public API (no credential, no subscription), if the gateway knows the setting.
    pub = a.ok("POST", "/v1/apis", {
        "org_id": ids["provider_org"], "slug": "bench-public", "name": "Bench (public)",
        "version": "v1", "description": "Load benchmark API without auth.",
        "base_path": "/benchpub/v1", "upstreams": [upstream_url], "openapi": bench_openapi()})
    status, out = a.call("PATCH", f"/v1/apis/{pub['id']}", {"status": "published",
                                                            "public": True})
    if status < 300:
        setup["public_path"] = "/benchpub/v1/data"
    else:
        a.call("PATCH", f"/v1/apis/{pub['id']}", {"status": "published"})
        setup["public_error"] = f"PATCH public: {status}"
    # The gateway picks up the new snapshot asynchronously: wait for a 200.
    wait_gateway(gw_port, "/bench/v1/data", {"X-API-Key": setup["api_key"]})
    if setup["public_path"]:
        try:
            wait_gateway(gw_port, setup["public_path"], {}, timeout=10)
        except RuntimeError as e:
            setup["public_error"], setup["public_path"] = str(e), None
    return p, gw_port, setup


def wait_gateway(port, path, headers, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                body = r.read()
                if r.status == 200 and len(body) == BODY_LEN:
                    return
                last = f"{r.status}, {len(body)} bytes"
        except urllib.error.HTTPError as e:
            last = f"{e.code} {e.read()[:200]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise RuntimeError(f"gateway {path} not ready: {last}")


# --- load ----------------------------------------------------------------------------

def load(loadgen, cpu, port, path, pid, *, headers=(), conns, warmup, duration, rate=None,
         sign=None):
    cmd = [loadgen, "load", "--addr", f"127.0.0.1:{port}", "--path", path,
           "-c", str(conns), "--warmup", str(warmup), "-d", str(duration),
           "--watch-pid", str(pid), "--clk-tck", str(os.sysconf("SC_CLK_TCK"))]
    for h in headers:
        cmd += ["-H", h]
    if rate:
        cmd += ["--rate", f"{rate:.0f}"]
    if sign:
        cmd += ["--sign-key", sign["key_pem"], "--keyid", sign["keyid"],
                "--sign-count", str(sign["count"])]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    timeout = warmup + duration + 120
    r = run(cmd, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"load generator failed: {r.stderr.strip()[-500:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if r.stderr.strip():
        log(r.stderr.strip().splitlines()[-1])
    return out


def summarize(rep):
    lat = rep["latency_us"]
    cpu = rep.get("cpu") or {}
    return {
        "rps": rep["rps"], "requests": rep["requests"], "non2xx": rep["non2xx"],
        "errors": rep["errors"], "first_error": rep.get("first_error"),
        "exhausted": rep.get("exhausted", False),
        "p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"], "p999": lat["p999"],
        "cpu_us": cpu.get("us_per_req"), "util": cpu.get("utilisation"),
        "rss_kb": rep.get("vmhwm_kb"),
    }


# --- output --------------------------------------------------------------------------

def fmt(v, nd=0, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float) and nd:
        return f"{v:,.{nd}f}{unit}".replace(",", " ")
    return f"{v:,.0f}{unit}".replace(",", " ")


def ratio(a, b, nd=2):
    if a is None or not b:
        return "–"
    return f"{a / b:.{nd}f}×"


def table(results, rate):
    nginx = results.get("nginx", {})
    nmax, nrate = nginx.get("max") or {}, nginx.get("rate") or {}
    base = (results.get("direct") or {}).get("rate") or {}
    rows = ["| scenario | max req/s | × nginx | p50 / p90 / p99 / p99.9 µs (max load) "
            "| CPU µs/req | × nginx | peak RSS MiB "
            f"| @{fmt(rate)}/s p50 / p99 µs | added p50 / p99 µs | added p50 / p99 − nginx's |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, label in SCENARIOS:
        r = results.get(key)
        if r is None:
            continue
        if "skipped" in r:
            rows.append(f"| {label} | n/a ({r['skipped']}) | | | | | | | | |")
            continue
        m, q = r.get("max") or {}, r.get("rate") or {}
        flags = []
        if m.get("exhausted"):
            flags.append("signatures ran out: lower bound")
        bad = (m.get("non2xx") or 0) + (m.get("errors") or 0)
        if bad:
            flags.append(f"{bad} non-2xx/errors")
        if q and q.get("rps") and rate and q["rps"] < 0.97 * rate:
            flags.append(f"fixed rate not sustained: {q['rps']:.0f}/s")
        note = f" ({'; '.join(flags)})" if flags else ""
        added = (None, None)
        if q and base and key != "direct":
            added = (q["p50"] - base["p50"], q["p99"] - base["p99"])
        nadded = (None, None)
        if nrate and base:
            nadded = (nrate["p50"] - base["p50"], nrate["p99"] - base["p99"])
        diff = "–"
        if added[0] is not None and nadded[0] is not None and key != "nginx":
            diff = f"{added[0] - nadded[0]:+.0f} / {added[1] - nadded[1]:+.0f}"
        rows.append(
            f"| {label}{note} | {fmt(m.get('rps'))} | {ratio(m.get('rps'), nmax.get('rps'))} "
            f"| {m.get('p50', '–')} / {m.get('p90', '–')} / {m.get('p99', '–')} / {m.get('p999', '–')} "
            f"| {fmt(m.get('cpu_us'), 1)} | {ratio(m.get('cpu_us'), nmax.get('cpu_us'))} "
            f"| {fmt((m.get('rss_kb') or 0) / 1024, 1) if m.get('rss_kb') else '–'} "
            f"| {q.get('p50', '–')} / {q.get('p99', '–')} "
            f"| {'–' if added[0] is None else f'{added[0]} / {added[1]}'} | {diff} |")
    return "\n".join(rows)


def targets(results):
    out = []
    n = (results.get("nginx") or {}).get("max") or {}
    base = (results.get("direct") or {}).get("rate") or {}

    def get(k, part="max"):
        r = results.get(k) or {}
        return r.get(part) or {}

    def check(name, ok, detail):
        mark = "met" if ok else ("not met" if ok is not None else "not measured")
        out.append(f"- {name}: **{mark}** ({detail})")

    a = get("tg-async")
    if a and n:
        check("full pipeline async ≥ 0.8× nginx throughput", a["rps"] >= 0.8 * n["rps"],
              ratio(a["rps"], n["rps"]))
        if a.get("cpu_us") and n.get("cpu_us"):
            check("full pipeline async CPU-µs/req ≤ 1.25× nginx's",
                  a["cpu_us"] <= 1.25 * n["cpu_us"], ratio(a["cpu_us"], n["cpu_us"]))
    p = get("tg-public")
    if p and n and p.get("cpu_us") and n.get("cpu_us"):
        check("no-auth CPU-µs/req ≤ nginx's", p["cpu_us"] <= n["cpu_us"],
              ratio(p["cpu_us"], n["cpu_us"]))
    else:
        check("no-auth CPU-µs/req ≤ nginx's", None, "no public route or no nginx row")
    q = get("tg-async", "rate")
    if q and base:
        check("added latency at 50 % of nginx max: p50 ≤ 100 µs", q["p50"] - base["p50"] <= 100,
              f"{q['p50'] - base['p50']} µs, full pipeline async")
        check("added latency at 50 % of nginx max: p99 ≤ 1 ms", q["p99"] - base["p99"] <= 1000,
              f"{q['p99'] - base['p99']} µs, full pipeline async")
    s = get("tg-sync")
    if s and n:
        check("metering sync ≥ 0.5× nginx throughput", s["rps"] >= 0.5 * n["rps"],
              ratio(s["rps"], n["rps"]))
    return "\n".join(out)


def svg_chart(results, title):
    """Two bar charts (throughput; CPU µs per request), as SVG written by hand."""
    rows = [(label, results[k]["max"]) for k, label in SCENARIOS
            if k in results and results[k].get("max")]
    if not rows:
        return None
    bar_h, gap, left, width = 18, 6, 330, 300
    panels = [("max throughput, requests/s (higher is better)", "rps", "#3b7dd8"),
              ("proxy CPU µs per request (lower is better)", "cpu_us", "#d8763b")]
    height = 40 + len(panels) * (30 + len(rows) * (bar_h + gap) + 20)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 110}" '
           f'height="{height}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="22" font-size="14" font-weight="bold">{esc(title)}</text>']
    y = 40
    for name, field, colour in panels:
        out.append(f'<text x="10" y="{y + 14}" font-weight="bold">{esc(name)}</text>')
        y += 24
        vmax = max((m.get(field) or 0) for _, m in rows) or 1
        for label, m in rows:
            v = m.get(field)
            w = 0 if not v else max(1, v / vmax * width)
            out.append(f'<text x="{left - 6}" y="{y + bar_h - 5}" text-anchor="end">'
                       f'{esc(label[:52])}</text>')
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                       f'fill="{colour}"/>')
            text = "–" if v is None else (f"{v:,.0f}" if field == "rps" else f"{v:.1f}")
            out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 5}">{text}</text>')
            y += bar_h + gap
        y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "")


# --- main ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="short runs (< 3 min), for development")
    g.add_argument("--smoke", action="store_true",
                   help="seconds, debug build, no installs; what CI runs (always exits 0)")
    ap.add_argument("--out", help="results directory (default bench/results; smoke: a temp dir)")
    ap.add_argument("--only", help="comma-separated scenario keys (" +
                    ", ".join(k for k, _ in SCENARIOS) + ")")
    args = ap.parse_args()
    mode = "smoke" if args.smoke else ("quick" if args.quick else "full")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(stop_all)
    try:
        return bench(args, mode)
    except Exception as e:  # noqa: BLE001 - the smoke run reports and never fails CI
        if mode == "smoke":
            print(f"bench/run --smoke: harness error (not failing CI): {e}")
            return 0
        raise
    finally:
        stop_all()


def bench(args, mode):
    prof = PROFILES[mode]
    smoke = mode == "smoke"
    notes, skipped = [], []
    only = set(args.only.split(",")) if args.only else None

    if not smoke:
        missing = [pkg for pkg, exe in (("nginx", "nginx"), ("haproxy", "haproxy"),
                                        ("util-linux", "taskset")) if not shutil.which(exe)]
        ensure_packages(missing, notes)
    tollgate, loadgen = build(not smoke, notes, smoke)
    if loadgen is None:
        msg = "tollgate-bench (load generator) not built"
        if smoke:
            print(f"bench/run --smoke: skipped ({msg}; run `cargo build -p tollgate-bench`)")
            return 0
        raise SystemExit(f"bench/run: {msg}")

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        proxy_cpu, gen_cpu = cpus[0], cpus[1]
        pinning = f"proxy on CPU {proxy_cpu}; upstream and load generator on CPU {gen_cpu}"
    else:
        proxy_cpu = gen_cpu = None
        pinning = "one CPU only: no pinning (proxy, upstream and generator share it)"
        notes.append(pinning)

    out_dir = args.out or (tempfile.mkdtemp(prefix="tollgate-bench-smoke-") if smoke
                           else os.path.join(ROOT, "bench", "results"))
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tollgate-bench-")
    log(f"mode {mode}; {pinning}; work dir {tmp}")
    load1 = os.getloadavg()[0]

    # Upstream: nginx `return 200` (1 KiB); smoke without nginx: tollgate-bench upstream.
    up_port = free_port()
    have_nginx = bool(shutil.which("nginx"))
    if have_nginx:
        up_proc, up_pid = upstream_nginx(tmp, up_port, gen_cpu)
        upstream_desc = "nginx `return 200`"
    else:
        if not smoke:
            raise SystemExit("bench/run: nginx is required (apt-get install nginx)")
        up_proc = spawn([loadgen, "upstream", "--listen", f"127.0.0.1:{up_port}",
                         "--size", str(BODY_LEN)], gen_cpu, os.path.join(tmp, "upstream.log"))
        wait_port(up_port, up_proc)
        up_pid = up_proc.pid
        upstream_desc = "tollgate-bench upstream (nginx not installed)"
        skipped.append("upstream: nginx not installed, tollgate-bench's fixed-response "
                       "server used instead")
    upstream_url = f"http://127.0.0.1:{up_port}"

    def guarded(key, fn):
        """Runs one scenario; a failure becomes its row's note, not the run's end."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            log(f"{key} failed: {e}")
            results[key] = {"skipped": f"failed: {str(e)[:160]}"}
            skipped.append(f"{key}: failed: {e}")

    def lg(port, path, pid, rate=None, **kw):
        w, d = (prof["rate_warmup"], prof["rate_duration"]) if rate else \
               (prof["warmup"], prof["duration"])
        conns = prof["conns"]
        if rate:
            # Blocking connections: enough that each sends every ~0.5 ms or more.
            conns = max(4, min(256, int(rate / 1000) + 8)) if not smoke else 4
        return summarize(load(loadgen, gen_cpu, port, path, pid, conns=conns, warmup=w,
                              duration=d, rate=rate, **kw))

    results = {}
    wanted = lambda k: only is None or k in only  # noqa: E731

    # 1. Maximum throughput of the upstream and of nginx: nginx's sets the fixed rate.
    if wanted("direct"):
        log("direct upstream: max")
        results["direct"] = {"max": lg(up_port, "/", up_pid)}
    nginx_proc = None
    if shutil.which("nginx"):
        if wanted("nginx"):
            port = free_port()
            nginx_proc, pid = proxy_nginx(tmp, port, up_port, proxy_cpu)
            log("nginx: max")
            results["nginx"] = {"max": lg(port, "/", pid), "_port": port, "_pid": pid}
    else:
        results["nginx"] = {"skipped": "nginx not installed"}
        skipped.append("nginx proxy: not installed")
    nmax = ((results.get("nginx") or {}).get("max") or {}).get("rps")
    if smoke:
        rate = SMOKE_RATE
    elif nmax:
        rate = round(nmax * 0.5, -2)
    else:
        rate = round(((results.get("direct") or {}).get("max") or {}).get("rps", 20000) * 0.25, -2)
        notes.append("no nginx maximum: fixed rate = 25 % of the upstream's maximum")

    # 2. Fixed rate for the upstream and nginx (the baseline of "added latency").
    if "direct" in results:
        log(f"direct upstream: {rate:.0f}/s")
        results["direct"]["rate"] = lg(up_port, "/", up_pid, rate=rate)
    if nginx_proc is not None:
        n = results["nginx"]
        log(f"nginx: {rate:.0f}/s")
        n["rate"] = lg(n.pop("_port"), "/", n.pop("_pid"), rate=rate)
        stop(nginx_proc)

    # 3. HAProxy.
    if wanted("haproxy"):
        if shutil.which("haproxy"):
            def haproxy():
                port = free_port()
                hp, pid = proxy_haproxy(tmp, port, up_port, proxy_cpu)
                try:
                    log("haproxy: max, fixed rate")
                    results["haproxy"] = {"max": lg(port, "/", pid),
                                          "rate": lg(port, "/", pid, rate=rate)}
                finally:
                    stop(hp)
            guarded("haproxy", haproxy)
        else:
            results["haproxy"] = {"skipped": "haproxy not installed"}
            skipped.append("HAProxy: not installed")

    # 4. Tollgate: a fresh process per scenario (clean peak RSS) except under --smoke.
    if tollgate is None:
        for k in ("tg-public", "tg-async", "tg-sync", "tg-signed"):
            results[k] = {"skipped": "tollgate binary not built"}
        skipped.append("Tollgate: binary not built (target/debug/tollgate missing)")
    else:
        shared = {}

        def tg(tag, metering):
            if smoke and metering in shared:
                return shared[metering]
            got = start_tollgate(tollgate, tmp, tag, metering, upstream_url, proxy_cpu, loadgen)
            if smoke:
                shared[metering] = got
            return got

        def done(proc):
            if not smoke:
                stop(proc)

        def public():
            proc, port, setup = tg("public", "async")
            try:
                if setup["public_path"]:
                    log("tollgate no auth: max, fixed rate")
                    path = setup["public_path"]
                    results["tg-public"] = {"max": lg(port, path, proc.pid),
                                            "rate": lg(port, path, proc.pid, rate=rate)}
                else:
                    results["tg-public"] = {"skipped": "no public APIs yet"}
                    skipped.append(f"Tollgate no-auth route: no public APIs yet "
                                   f"({setup.get('public_error')})")
            finally:
                done(proc)

        def full(key, metering):
            proc, port, setup = tg(key, metering)
            try:
                hdr = [f"X-API-Key: {setup['api_key']}"]
                log(f"tollgate full pipeline, metering {metering}: max, fixed rate")
                results[key] = {
                    "max": lg(port, "/bench/v1/data", proc.pid, headers=hdr),
                    "rate": lg(port, "/bench/v1/data", proc.pid, headers=hdr, rate=rate)}
            finally:
                done(proc)

        def signed():
            proc, port, setup = tg("signed", "async")
            try:
                if not setup.get("keyid"):
                    results["tg-signed"] = {"skipped": setup.get("signed_error", "no signing key")}
                    skipped.append(f"Tollgate signed: {setup.get('signed_error')}")
                    return
                log("tollgate signed requests: max, fixed rate")
                # Enough unique signatures for the run (each is sent once: nonces).
                n_max = 2000 if smoke else int(SIGNED_MAX_RATE * (prof["warmup"] + prof["duration"]))
                n_rate = int(rate * (prof["rate_warmup"] + prof["rate_duration"]) * 1.05) + 64
                sign = {"key_pem": setup["key_pem"], "keyid": setup["keyid"]}
                results["tg-signed"] = {
                    "max": lg(port, "/bench/v1/data", proc.pid, sign=dict(sign, count=n_max)),
                    "rate": lg(port, "/bench/v1/data", proc.pid, rate=rate,
                               sign=dict(sign, count=n_rate))}
            finally:
                done(proc)

        if wanted("tg-public"):
            guarded("tg-public", public)
        for key, metering in (("tg-async", "async"), ("tg-sync", "sync")):
            if wanted(key):
                guarded(key, lambda k=key, m=metering: full(k, m))
        if wanted("tg-signed"):
            guarded("tg-signed", signed)
    stop(up_proc)
    load2 = os.getloadavg()[0]

    # 5. Report.
    today = dt.date.today().isoformat()
    name = {"full": today, "quick": f"{today}-quick", "smoke": f"{today}-smoke"}[mode]
    md_path, svg_path = os.path.join(out_dir, f"{name}.md"), os.path.join(out_dir, f"{name}.svg")
    rev = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip() or "?"
    dirty = " (uncommitted changes)" if run(["git", "-C", ROOT, "status", "--porcelain",
                                            "--untracked-files=no"]).stdout.strip() else ""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        pass
    tbl = table(results, rate)
    svg = svg_chart(results, f"Tollgate side-by-side load benchmark, {today} ({mode})")
    if svg:
        with open(svg_path, "w") as f:
            f.write(svg)
    md = [f"# Side-by-side load benchmark — {today} ({mode})", "",
          f"Command: `bench/run{'' if mode == 'full' else ' --' + mode}` · git {rev}{dirty} · "
          f"{len(os.sched_getaffinity(0))} CPUs ({model}) · load average {load1:.1f} before, "
          f"{load2:.1f} after · {pinning}.", "",
          f"Workload: `GET` of a 1 KiB body from {upstream_desc}, HTTP/1.1 keep-alive; max "
          f"throughput with {prof['conns']} connections (closed loop, {prof['warmup']:g} s "
          f"warm-up + {prof['duration']:g} s measured); then a fixed rate of {rate:.0f}/s "
          f"(50 % of nginx's max) for {prof['rate_duration']:g} s, latency counted from each "
          f"request's scheduled send time. CPU µs/req = Δ(utime+stime) of the proxy process "
          f"over the measured window / requests; peak RSS = VmHWM. \"Added\" = latency minus "
          f"the direct upstream's at the same rate.", "",
          f"Versions: {version(['nginx', '-v'])}; {version(['haproxy', '-v'])}; "
          f"{version([tollgate, 'version']) if tollgate else 'tollgate ?'}"
          f" ({'release' if not smoke else 'debug'}); one worker each (nginx "
          f"`worker_processes 1`, HAProxy `nbthread 1`, Tollgate `TOKIO_WORKER_THREADS=1`).", "",
          tbl, ""]
    if svg:
        md += [f"![chart]({os.path.basename(svg_path)})", ""]
    md += ["Targets" + (" (smoke run on a debug build: not meaningful)" if smoke else "") + ":",
           "", targets(results) or "- (not enough rows to check)", ""]
    if notes or skipped:
        md += ["Notes and skipped rows:", ""] + [f"- {s}" for s in notes + skipped] + [""]
    with open(md_path, "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({"mode": mode, "rate": rate, "results": results}, f, indent=1)
    print("\n".join(md))
    print(f"\nwritten: {md_path}" + (f", {svg_path}" if svg else ""))
    if smoke:
        got = [k for k, r in results.items() if (r.get("max") or {}).get("requests")]
        print(f"bench/run --smoke: ok ({len(got)} scenarios measured: {', '.join(got)}; "
              f"skipped: {'; '.join(skipped) or 'none'})")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
