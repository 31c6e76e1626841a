#!/usr/bin/env python3
"""Analytics queries while events stream in: one thread posts `rate` events a second to
`/api/ingest/events` (batches of 100, each acknowledged before the next is due), another
asks for the 4-step funnel every 250 ms. Prints the ingest rate reached and the query
latencies (p50, p99, max). Standard library only.

    under_ingest.py URL INGEST_TOKEN ADMIN_TOKEN [RATE=5000] [SECONDS=30]
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

url, ingest_token, admin_token = sys.argv[1:4]
rate = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
host = urllib.parse.urlparse(url)
BATCH = 100
FUNNEL = json.dumps({"funnel_steps": ["signup", "search", "view_item", "purchase"],
                     "days": 3650, "conversion_window_days": 7})
stop = time.monotonic() + seconds
sent = [0]
errors = []


def conn():
    return http.client.HTTPConnection(host.hostname, host.port, timeout=30)


def ingest():
    c = conn()
    n = 0
    start = time.monotonic()
    while time.monotonic() < stop:
        now_ms = int(time.time() * 1000)
        events = [{"event": ("signup", "search", "view_item", "purchase")[(n + i) % 4],
                   "user_id": f"live-{(n + i) % 20000}", "timestamp": now_ms,
                   "uuid": str(uuid.uuid4())} for i in range(BATCH)]
        c.request("POST", "/api/ingest/events", json.dumps(events),
                  {"authorization": f"Bearer {ingest_token}", "content-type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status // 100 != 2:
            errors.append(r.status)
        n += BATCH
        sent[0] = n
        time.sleep(max(0.0, start + n / rate - time.monotonic()))


def query(out):
    c = conn()
    while time.monotonic() < stop:
        t = time.monotonic()
        c.request("POST", "/api/analytics/funnel", FUNNEL,
                  {"authorization": f"Bearer {admin_token}", "content-type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            errors.append(r.status)
        out.append((time.monotonic() - t) * 1000)
        time.sleep(max(0.0, 0.25 - (time.monotonic() - t)))


latencies = []
threads = [threading.Thread(target=ingest), threading.Thread(target=query, args=(latencies,))]
began = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - began
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(json.dumps({"events_per_s": round(sent[0] / elapsed), "queries": len(latencies),
                  "p50_ms": round(pick(0.5), 1), "p99_ms": round(pick(0.99), 1),
                  "max_ms": round(latencies[-1], 1), "errors": errors[:5]}))
