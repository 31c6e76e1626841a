#!/usr/bin/env python3
"""Attacks on Liftoff's public edge, as a hostile or broken client would make them.

Starts `liftoff serve` from BIN on a fresh data directory and runs each attack row, watching
the server's RSS (peak during the attack, and 30 s after it stopped) and /healthz latency
while the attack runs. With --baseline OLD_BIN the same rows run against another build in the
same run, for before/after tables. With --check the outcomes the edge promises are asserted
(statuses, bounds on RSS, connections closed within their timeouts, nothing acknowledged lost;
never latency, which depends on the machine) and the exit status says whether they held.

  bench/edge/attack.py target/release/liftoff [--baseline OLD] [--short] [--check]
                       [--rows 1,2,3] [--json out.json]

Rows (see BENCHMARKS.md "Public edge"):
  1 parallel failed sign-ins          6 admin lock-out and per-client throttling
  2 idle TCP connections (+ fd limit) 7 open redirects after sign-in
  3 stalled heads, drips, bodies, idle 8 header injection through `next`
  4 unauthenticated gzip bombs        9 outbound: metadata addresses, remote bodies
  5 ingest flood (wrk)               10 bad tokens at full speed
Only loopback addresses are used. Needs python3; row 5 needs wrk.
"""
import argparse
import gzip
import http.client
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

TOKEN = "attack-admin-token-0123456789abcdef"
PASSWORD = "attack-password-42"
MB = 1024 * 1024


def rss_mb(pid, field="VmRSS"):
    """Resident memory in MB; `RssAnon` (heap) and `RssFile` + `RssShmem` (mapped files,
    SQLite's shared WAL index) split it."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return 0.0
    return 0.0


class Server:
    def __init__(self, binary, port, extra=(), nofile=None):
        self.dir = tempfile.mkdtemp(prefix="liftoff-attack-")
        self.port = port
        env = dict(os.environ, LIFTOFF_ADMIN_TOKEN=TOKEN, LIFTOFF_ADMIN_PASSWORD=PASSWORD)
        env = {k: v for k, v in env.items() if not k.startswith("LIFTOFF_") or k in ("LIFTOFF_ADMIN_TOKEN", "LIFTOFF_ADMIN_PASSWORD")}

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", os.path.join(self.dir, "data"), "--listen", f"127.0.0.1:{port}",
             "--log-format", "json", *extra],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=limits)
        for _ in range(200):
            try:
                if self.get("/readyz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise SystemExit(f"{binary} did not start; see {self.dir}/server.log")

    def request(self, method, path, body=None, headers=None, timeout=10, source=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            data = res.read()
            return res.status, dict((k.lower(), v) for k, v in res.getheaders()), data
        finally:
            conn.close()

    def get(self, path, timeout=10, token=None):
        h = {"Authorization": f"Bearer {token}"} if token else {}
        s, _, b = self.request("GET", path, headers=h, timeout=timeout)
        return s, b

    def post_json(self, path, doc, token=TOKEN):
        s, h, b = self.request("POST", path, json.dumps(doc).encode(),
                               {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        return s, json.loads(b or b"null")

    def key(self, scope):
        s, doc = self.post_json("/api/keys", {"name": f"attack {scope}", "scope": scope})
        assert s == 201, doc
        return doc["token"]

    def rss(self):
        return rss_mb(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Watch:
    """Samples RSS every 100 ms and /healthz every 100 ms while an attack runs."""

    def __init__(self, server):
        self.s = server
        self.before = server.rss()
        self.peak = self.before
        self.lat = []
        self.timeouts = 0
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._rss, daemon=True),
                        threading.Thread(target=self._health, daemon=True)]
        for t in self.threads:
            t.start()

    def _rss(self):
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, self.s.rss())
            time.sleep(0.1)

    def _health(self):
        while not self.stop_flag.is_set():
            t = time.monotonic()
            try:
                self.s.get("/healthz", timeout=5)
                self.lat.append((time.monotonic() - t) * 1000)
            except OSError:
                self.timeouts += 1
                self.lat.append(5000.0)
            time.sleep(0.1)

    def finish(self, settle):
        self.stop_flag.set()
        for t in self.threads:
            t.join()
        time.sleep(settle)
        after = self.s.rss()
        pid = self.s.proc.pid
        lat = sorted(self.lat) or [0.0]
        return {
            "rss_before_mb": round(self.before, 1),
            "rss_peak_mb": round(self.peak, 1),
            "rss_after_mb": round(after, 1),
            "rss_after_heap_mb": round(rss_mb(pid, "RssAnon"), 1),
            "rss_after_files_mb": round(rss_mb(pid, "RssFile") + rss_mb(pid, "RssShmem"), 1),
            "healthz_p50_ms": round(lat[len(lat) // 2], 1),
            "healthz_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
            "healthz_timeouts": self.timeouts,
        }


def parallel(n, fn):
    out = [None] * n
    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - the outcome is what is being measured
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def login(s, user, password, nxt="/", source=None, timeout=30):
    csrf = "c" * 32
    body = urllib.parse.urlencode({"username": user, "password": password, "csrf": csrf, "next": nxt})
    st, h, _ = s.request("POST", "/login", body.encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"liftoff_login_csrf={csrf}",
        "Origin": f"http://127.0.0.1:{s.port}", "Host": f"127.0.0.1:{s.port}"}, timeout=timeout, source=source)
    return st, h


# ---------------------------------------------------------------- rows

def row1(s, a):
    clients = 64
    def attempt(i):
        return [login(s, f"user{random.getrandbits(64):x}", "wrong-password")[0] for _ in range(3)]
    w = Watch(s)
    statuses = [x for r in parallel(clients, attempt) for x in (r if isinstance(r, list) else [599])]
    out = w.finish(a.settle)
    out["statuses"] = {str(k): statuses.count(k) for k in sorted(set(statuses))}
    out["ok"] = all(x in (401, 429) for x in statuses) and out["rss_peak_mb"] < 512
    return out


def hold_idle(port, n):
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    return socks


def row2(s, a):
    n = 500 if a.short else 2000
    w = Watch(s)
    socks = hold_idle(s.port, n)
    time.sleep(3)
    opened = len(socks)
    for x in socks:
        x.close()
    out = w.finish(a.settle)
    out["connections"] = opened
    # The same with the open-files limit at 256: 300 idle sockets must not stop /healthz.
    low = Server(a.bin_now, s.port + 50, nofile=256)
    try:
        socks = hold_idle(low.port, 300)
        t = time.monotonic()
        try:
            ok = low.get("/healthz", timeout=5)[0] == 200
        except OSError:
            ok = False
        out["fd256_healthz_ms"] = round((time.monotonic() - t) * 1000, 1) if ok else None
        for x in socks:
            x.close()
    finally:
        low.stop()
    out["ok"] = out["rss_peak_mb"] < 512 and out["healthz_timeouts"] == 0 and out["fd256_healthz_ms"] is not None
    return out


def time_to_close(port, send, drip=None, limit=90):
    """Seconds until the server closes a connection that sent `send` (then `drip` every 5 s)."""
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(send)
    c.settimeout(0.5)
    t = time.monotonic()
    last = t
    got = b""
    while time.monotonic() - t < limit:
        if drip and time.monotonic() - last >= 5:
            try:
                c.sendall(drip)
            except OSError:
                break
            last = time.monotonic()
        try:
            chunk = c.recv(4096)
            if not chunk:
                break
            got += chunk
        except socket.timeout:
            continue
        except OSError:
            break
    c.close()
    return round(time.monotonic() - t, 1), got[:12].decode(errors="replace")


def row3(s, a):
    ingest = s.key("ingest")
    cases = {
        "stalled_head": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", None),
        "dripped_head": (b"GET /healthz HTTP/1.1\r\n", b"X-Drip: 1\r\n"),
        "partial_body": (f"POST /api/ingest/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n[".encode(), None),
        "idle_keep_alive": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", None),
    }
    w = Watch(s)
    results = {}
    threads = []
    def run(name, send, drip):
        results[name] = time_to_close(s.port, send, drip, limit=75)
    for name, (send, drip) in cases.items():
        threads.append(threading.Thread(target=run, args=(name, send, drip)))
        threads[-1].start()
    for t in threads:
        t.join()
    out = w.finish(a.settle)
    out["closed_after_s"] = {k: v[0] for k, v in results.items()}
    out["partial_body_answer"] = results["partial_body"][1]
    b = a.bounds
    out["ok"] = (results["stalled_head"][0] <= b["header"] + 2 and results["dripped_head"][0] <= b["header"] + 2
                 and results["partial_body"][0] <= b["body"] + 2 and "408" in results["partial_body"][1]
                 and results["idle_keep_alive"][0] <= b["idle"] + 2)
    return out


def bomb():
    raw = b'{"batch":[' + b'{"event":"x","distinct_id":"u","properties":{"p":"aaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},' * 260_000
    raw = raw[:20 * MB - 200] + b'{"event":"x","distinct_id":"u"}]}'
    return gzip.compress(raw, 9)


def row4(s, a):
    body = bomb()
    seconds = 10 if a.short else 30
    w = Watch(s)
    end = time.monotonic() + seconds
    def client(i):
        counts = {}
        while time.monotonic() < end:
            try:
                st, _, _ = s.request("POST", "/batch/", body, {"Content-Encoding": "gzip"}, timeout=30)
            except OSError:
                st = 0
            counts[st] = counts.get(st, 0) + 1
        return counts
    results = parallel(8, client)
    out = w.finish(a.settle)
    total = {}
    for r in results:
        for k, v in (r.items() if isinstance(r, dict) else []):
            total[str(k)] = total.get(str(k), 0) + v
    out["body_kb"] = round(len(body) / 1024, 1)
    out["statuses"] = total
    out["ok"] = set(total) <= {"401", "429"} and out["rss_peak_mb"] < 512
    return out


WRK_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {}; accepted = 0; missing_retry = 0 end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status == 200 then
    local n = string.match(body, '"accepted":(%d+)')
    if n then accepted = accepted + tonumber(n) end
  elseif status == 429 or status == 503 then
    if headers["Retry-After"] == nil and headers["retry-after"] == nil then missing_retry = missing_retry + 1 end
  end
end
function done(summary, latency, requests)
  local total, acc, miss = {}, 0, 0
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
    acc = acc + t:get("accepted"); miss = miss + t:get("missing_retry")
  end
  io.write("RESULT {")
  for k, v in pairs(total) do io.write(string.format('"%d": %d, ', k, v)) end
  io.write(string.format('"accepted": %d, "missing_retry": %d, "timeouts": %d, "p50_ms": %.1f, "p99_ms": %.1f}\n',
    acc, miss, summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def row5(s, a):
    if not shutil.which("wrk"):
        return {"skipped": "wrk is not installed (apt-get install wrk)", "ok": not a.check}
    ingest = s.key("ingest")
    events = [{"event": f"flood_{i % 7}", "user_id": f"u{i % 997}", "properties": {"i": i}} for i in range(500)]
    body = json.dumps(events)
    work = tempfile.mkdtemp()
    lua = os.path.join(work, "flood.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {ingest}"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write(WRK_LUA)
    conns, secs = (500, 10) if a.short else (2000, 30)
    conns = a.flood_connections or conns
    secs = a.flood_seconds or secs
    w = Watch(s)
    r = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--timeout", "15s", "-s", lua,
                        f"http://127.0.0.1:{s.port}/api/ingest/events"], capture_output=True, text=True)
    out = w.finish(a.settle)
    line = next((l for l in r.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        out["error"] = r.stdout[-500:] + r.stderr[-500:]
        out["ok"] = False
        return out
    res = json.loads(line[7:].replace(", }", "}"))
    out.update(res)
    # Every acknowledged event is stored: count them through the export.
    time.sleep(1)
    _, _, data = s.request("GET", "/api/analytics/export?format=ndjson", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)
    stored = sum(1 for l in data.splitlines() if b'"flood_' in l)
    out["stored"] = stored
    out["connections"], out["seconds"] = conns, secs
    shutil.rmtree(work, ignore_errors=True)
    # Latency is reported, not asserted: the load generator shares the machine.
    out["ok"] = (res["timeouts"] == 0 and res["missing_retry"] == 0
                 and stored >= res["accepted"] and out["rss_peak_mb"] < 512)
    return out


def row6(s, a):
    w = Watch(s)
    first = [login(s, "admin", f"wrong-{i}")[0] for i in range(10)]
    slow = []
    rounds = 2 if a.short else 5
    for i in range(rounds):
        slow.append(login(s, "admin", f"wrong-slow-{i}")[0])
        time.sleep(6)
    # The right password from another client is never locked out by the attacker.
    right, h = login(s, "admin", PASSWORD, source="127.0.0.2")
    # One client trying many user names is throttled.
    spray = [login(s, f"name{i}", "wrong")[0] for i in range(40)]
    out = w.finish(a.settle)
    out["attacker"] = {str(k): (first + slow).count(k) for k in sorted(set(first + slow))}
    out["right_password_other_client"] = right
    out["spray_429"] = spray.count(429)
    out["ok"] = right in (302, 303) and spray.count(429) > 0
    return out


BYPASSES = ["//evil.example", "/\\evil.example", "/%09/evil.example", "/%2F/evil.example", "/%5Cevil.example",
            "\\/evil.example", "https://evil.example", "http:evil.example", "/ /evil.example", "/%20/evil.example",
            "///evil.example", "//%09/evil.example", "/%2f%2fevil.example", "%2F%2Fevil.example",
            "/%252F%252Fevil.example", "javascript:alert(1)", "/\t/evil.example", "/%E3%80%80/evil.example",
            "/%0a/evil.example", "/%0d/evil.example", "//evil.example/%2e%2e", "/\\/evil.example",
            "\\\\evil.example", "/%5C%5Cevil.example", "data:text/html,x", "//@evil.example"]


def safe_location(loc):
    loc = loc or ""
    dec = urllib.parse.unquote(urllib.parse.unquote(loc))
    return loc.startswith("/") and not loc.startswith("//") and not loc.startswith("/\\") and \
        not any(ch.isspace() or ord(ch) < 32 for ch in dec) and not dec.startswith("//") and not dec.startswith("/\\")


def row7(s, a):
    bad = []
    for n in BYPASSES:
        st, h = login(s, "admin", PASSWORD, nxt=n)
        if st >= 500 or not safe_location(h.get("location")):
            bad.append((n, st, h.get("location")))
    return {"tried": len(BYPASSES), "unsafe": bad, "ok": not bad}


def row8(s, a):
    st, h = login(s, "admin", PASSWORD, nxt="/%0d%0aX:%201")
    st2, h2, _ = s.request("GET", "/login?next=/%0d%0aX:%201")
    return {"post_status": st, "get_status": st2, "location": h.get("location"),
            "ok": st < 500 and st2 < 500 and "x" not in {k.lower() for k in h}}


def row9(s, a):
    out = {}
    st, _ = s.post_json("/api/uptime/monitors", {"name": "metadata", "url": "http://169.254.169.254/latest/meta-data/", "interval_seconds": 60, "timeout_seconds": 5})
    out["monitor_on_metadata_address"] = st
    st, _ = s.post_json("/api/notifications/channels", {"name": "metadata", "config": {"kind": "webhook", "url": "http://169.254.169.254/hook"}})
    out["webhook_on_metadata_address"] = st
    # A receiver that answers 500 with a body: the body must not reach read keys or stored errors.
    import http.server
    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"SECRET-BODY-" + b"x" * 500
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        st, ch = s.post_json("/api/notifications/channels", {"name": "receiver", "config": {"kind": "webhook", "url": f"http://127.0.0.1:{receiver.server_port}/hook"}})
        tested = s.request("POST", f"/api/notifications/channels/{ch.get('id')}/test", b"", {"Authorization": f"Bearer {TOKEN}"})[2]
        read = s.key("read")
        _, deliveries = s.get("/api/notifications/deliveries", token=read)
        _, channels = s.get("/api/notifications/channels", token=read)
    finally:
        receiver.shutdown()
    with open(os.path.join(s.dir, "server.log"), "rb") as f:
        logged = f.read()
    out["remote_body_in_test_answer"] = b"SECRET-BODY" in tested
    out["remote_body_seen_by_read_key"] = b"SECRET-BODY" in deliveries + channels
    out["remote_body_in_log"] = b"SECRET-BODY" in logged
    out["ok"] = (out["monitor_on_metadata_address"] == 422 and out["webhook_on_metadata_address"] == 422
                 and not out["remote_body_seen_by_read_key"] and not out["remote_body_in_log"])
    return out


def row10(s, a):
    seconds = 5
    end = time.monotonic() + seconds
    def client(i):
        c = {}
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        while time.monotonic() < end:
            try:
                conn.request("GET", "/api/keys", headers={"Authorization": f"Bearer lft_{random.getrandbits(128):x}"})
                r = conn.getresponse()
                r.read()
                c[r.status] = c.get(r.status, 0) + 1
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        return c
    w = Watch(s)
    res = parallel(8, client)
    out = w.finish(a.settle)
    total = {}
    for r in res:
        for k, v in r.items():
            total[str(k)] = total.get(str(k), 0) + v
    out["statuses"] = total
    out["per_second_401"] = round(total.get("401", 0) / seconds, 1)
    out["ok"] = total.get("401", 0) <= 200 and total.get("429", 0) > 0
    return out


ROWS = {1: row1, 2: row2, 3: row3, 4: row4, 5: row5, 6: row6, 7: row7, 8: row8, 9: row9, 10: row10}


def run_all(binary, a, port):
    extra = []
    if a.short:
        extra = ["--header-timeout-seconds", "3", "--body-timeout-seconds", "3", "--idle-timeout-seconds", "6"]
        a.bounds = {"header": 3, "body": 3, "idle": 6}
    else:
        a.bounds = {"header": 10, "body": 15, "idle": 60}
    results = {}
    for n in a.rows:
        s = Server(binary, port, extra)
        try:
            t = time.monotonic()
            results[n] = ROWS[n](s, a)
            results[n]["seconds"] = round(time.monotonic() - t, 1)
        except Exception as e:  # noqa: BLE001 - a row that cannot run is a failed row
            results[n] = {"ok": False, "error": repr(e)}
        finally:
            s.stop()
        print(f"row {n}: {json.dumps(results[n])}", flush=True)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bin")
    p.add_argument("--baseline", help="another build to run the same rows against")
    p.add_argument("--short", action="store_true", help="smaller attacks and timeouts (CI)")
    p.add_argument("--check", action="store_true", help="assert the outcomes; exit 1 when one fails")
    p.add_argument("--rows", default="1,2,3,4,5,6,7,8,9,10")
    p.add_argument("--settle", type=float, default=None, help="seconds to wait before 'RSS after' (30)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--flood-connections", type=int, help="row 5: wrk connections (2000; 500 with --short)")
    p.add_argument("--flood-seconds", type=int, help="row 5: seconds of flood (30; 10 with --short)")
    a = p.parse_args()
    a.rows = [int(x) for x in a.rows.split(",")]
    a.settle = a.settle if a.settle is not None else (5 if a.short else 30)
    a.bin_now = a.bin
    runs = {"now": run_all(a.bin, a, 7301)}
    if a.baseline:
        a.bin_now = a.baseline
        runs["baseline"] = run_all(a.baseline, a, 7401)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=2)
    failed = [n for n, r in runs["now"].items() if not r.get("ok")]
    passed = len(runs["now"]) - len(failed)
    print(f"edge: {passed} passed, {len(failed)} failed")
    if a.check and failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
