"""GET /v1/usage latency: a demo marketplace (given binary) with 10 000 reported events, then 500
sequential queries; prints p50/p99. Usage: python3 bench/usage_latency.py target/release/tollgate"""
import datetime, json, os, re, subprocess, sys, tempfile, time, urllib.request
binary = sys.argv[1]
d = os.path.join(tempfile.mkdtemp(prefix="tollgate-usage-"), "data")
subprocess.run(["rm", "-rf", d])
p = subprocess.Popen([binary, "serve", "--demo", "--data-dir", d, "--admin-listen", "127.0.0.1:0",
                      "--gateway-listen", "127.0.0.1:0", "--log-format", "json"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
admin = None
for line in p.stderr:
    m = re.search(r"Tollgate is running: admin API (http://\S+)", line)
    if m:
        admin = m.group(1); break
import threading
threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
demo = json.load(open(os.path.join(d, "demo.json")))
sub, org = demo["ids"]["subscription"], demo["ids"]["provider_org"]
alice, bob = demo["tokens"]["provider_owner"], demo["tokens"]["consumer_developer"]
def call(method, path, token, body=None):
    req = urllib.request.Request(admin + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
for b in range(10):
    batch = [{"specversion": "1.0", "id": f"e{b}-{i}", "source": f"/providers/{org}", "type": "pay",
              "subject": sub, "time": now, "data": {"operation_id": f"op{i % 7}",
              "fields": {"amount": f"{i % 97}.25", "currency": ["eur", "usd", "gbp"][i % 3], "units": i % 11}}}
             for i in range(1000)]
    r = call("POST", "/v1/usage/events", alice, batch)
    assert r["accepted"] == 1000, r
time.sleep(1.5)
lat = []
for _ in range(500):
    t = time.perf_counter()
    r = call("GET", f"/v1/usage?subscription_id={sub}", bob)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(f"aggregates: {len(r['aggregates'])} rows, indexed_through {r['indexed_through']}")
print(f"GET /v1/usage over 10 000 events: p50 {lat[249]:.2f} ms, p99 {lat[494]:.2f} ms, max {lat[-1]:.2f} ms")
p.terminate(); p.wait()
