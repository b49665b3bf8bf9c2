#!/usr/bin/env python3
"""Spawn burst benchmark for the ml-workshop hub: N users start their servers at once
(image already present), through the REST API with the ml-workshop-api service token.

Prints: spawn latency p50/p95/max (request -> server ready), failures (with reasons), and
hub API latency (GET /hub/api/users/NAME, sampled every 0.2 s during the burst).
Stdlib only. Run it on the hub host (see README.md in this directory).

  python3 spawn_burst.py [-n 20] [--url http://127.0.0.1:28000] \
      [--token-file /etc/jupyterhub/secrets/api_token] [--prefix bench] [--keep]
"""

import argparse
import json
import statistics
import threading
import time
import urllib.error
import urllib.request


def call(base, token, method, path, timeout=300):
    req = urllib.request.Request(base + path, method=method, headers={"Authorization": "token " + token})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return r.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body.decode(errors="replace")


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--url", default="http://127.0.0.1:28000")
    ap.add_argument("--token-file", default="/etc/jupyterhub/secrets/api_token")
    ap.add_argument("--prefix", default="bench")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--keep", action="store_true", help="leave the servers running")
    a = ap.parse_args()
    token = open(a.token_file).read().strip()
    users = [f"{a.prefix}{i:03d}" for i in range(a.n)]
    for u in users:  # create the hub users (idempotent: 409 when they exist)
        call(a.url, token, "POST", f"/hub/api/users/{u}")

    results, stop = {}, threading.Event()
    api_lat = []

    def sampler():
        while not stop.is_set():
            t = time.monotonic()
            call(a.url, token, "GET", f"/hub/api/users/{users[0]}")
            api_lat.append(time.monotonic() - t)
            stop.wait(0.2)

    def spawn(u):
        t0 = time.monotonic()
        status, body = call(a.url, token, "POST", f"/hub/api/users/{u}/server")
        if status not in (201, 202):
            results[u] = (None, f"HTTP {status}: {body}")
            return
        while time.monotonic() - t0 < a.timeout:
            st, info = call(a.url, token, "GET", f"/hub/api/users/{u}")
            srv = (info or {}).get("servers", {}).get("", {}) if st == 200 else {}
            if srv.get("ready"):
                results[u] = (time.monotonic() - t0, None)
                return
            if st == 200 and not srv:
                results[u] = (None, "server stopped while starting (see the hub log)")
                return
            time.sleep(0.5)
        results[u] = (None, "timeout")

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    t_start = time.monotonic()
    workers = [threading.Thread(target=spawn, args=(u,)) for u in users]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.monotonic() - t_start
    stop.set()
    th.join()

    ok = [v for v, err in results.values() if err is None]
    fails = {u: err for u, (v, err) in results.items() if err}
    print(f"users: {a.n}  started: {len(ok)}  failures: {len(fails)}  burst wall time: {wall:.1f} s")
    if ok:
        print(
            f"spawn latency s: p50 {pct(ok, 50):.2f}  p95 {pct(ok, 95):.2f}  max {max(ok):.2f}"
            f"  mean {statistics.mean(ok):.2f}"
        )
    if api_lat:
        ms = [x * 1000 for x in api_lat]
        print(
            f"hub API latency during burst ms ({len(ms)} samples): p50 {pct(ms, 50):.1f}"
            f"  p95 {pct(ms, 95):.1f}  max {max(ms):.1f}"
        )
    for u, err in sorted(fails.items())[:10]:
        print(f"  failed {u}: {str(err)[:200]}")
    if not a.keep:
        t = time.monotonic()
        for u in users:
            call(a.url, token, "DELETE", f"/hub/api/users/{u}/server")
        for u in users:
            for _ in range(120):
                st, info = call(a.url, token, "GET", f"/hub/api/users/{u}")
                if st != 200 or not info.get("servers"):
                    break
                time.sleep(0.5)
            call(a.url, token, "DELETE", f"/hub/api/users/{u}")
        print(f"stopped and removed {a.n} users in {time.monotonic() - t:.1f} s")


if __name__ == "__main__":
    main()
