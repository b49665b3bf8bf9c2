#!/usr/bin/env python3
"""VS Code in the browser, first load and later loads, as a student sees it (issue 13, item 5).

A real Chromium (Playwright, as the end-to-end tests drive it) logs a student in, starts their
server (JupyterLab), then opens VS Code at /user/NAME/vscode/ (code-server behind
jupyter-server-proxy, behind configurable-http-proxy) and times each load:

  first      code-server is not running yet: jupyter-server-proxy starts it on this request
  new_tab    code-server runs; a new browser context (empty browser cache: another device)
  reload     the same context again (the browser's cache is warm)

For each load: the document's time to first byte (the proxy chain, and for `first` code-server's
start), DOMContentLoaded, the workbench drawn (`.monaco-workbench`), and the workbench ready
(the explorer lists the home folder: the remote connection over the WebSocket works), plus what
was transferred: requests, bytes on the wire, bytes decoded, and how much of it came compressed
(Resource Timing: encodedBodySize < decodedBodySize, and Content-Encoding headers).

--repeat K stops and starts the student's server between rounds, so every round has a `first`.
--throttle MBIT[,LATENCY_MS] emulates a slower link per browser (Chrome DevTools Protocol
Network.emulateNetworkConditions), e.g. 20,20 for a student's share of a classroom Wi-Fi.

The student is signed up and approved first when --admin-password(-file) is given (NativeAuthenticator's
/hub/signup and /hub/authorize), else it must exist and be approved.

  python benchmarks/hub/vscode.py --url http://127.0.0.1:28101 --user vsbench --password '...' \\
      --admin-password-file /tmp/su [--repeat 3] [--throttle 20,20] [--json out.json]

Needs Playwright (the project's venv) and a Chromium (--chromium, default /usr/bin/chromium).
Prints a table; asserts nothing; rc 1 when a load failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"]

# Resource Timing of everything the page loaded (same origin: the sizes are exposed)
RESOURCES_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const all = nav ? [nav, ...res] : res;
  return {
    ttfb: nav ? nav.responseStart - nav.startTime : null,
    dcl: nav ? nav.domContentLoadedEventEnd - nav.startTime : null,
    resources: all.map(r => ({name: r.name, transfer: r.transferSize, encoded: r.encodedBodySize,
                              decoded: r.decodedBodySize, type: r.initiatorType})),
  };
}"""


@dataclass
class Load:
    round: int
    kind: str
    ok: bool = False
    error: str = ""
    ttfb_s: float | None = None
    dcl_s: float | None = None
    workbench_s: float | None = None
    ready_s: float | None = None
    requests: int = 0
    transfer_bytes: int = 0
    encoded_bytes: int = 0
    decoded_bytes: int = 0
    compressed_bytes_decoded: int = 0
    content_encodings: dict[str, int] = field(default_factory=dict)
    ws_payload_received: int = 0
    ws_payload_sent: int = 0
    ws_deflate: str = ""  # permessage-deflate negotiated on the WebSockets: yes / no / mixed
    largest: list[tuple[str, int, int]] = field(default_factory=list)


def summarize_resources(resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals of Resource Timing entries: requests, transfer, encoded and decoded bytes, the
    decoded bytes of the entries that came compressed (encoded < decoded), the five largest."""
    out = {"requests": 0, "transfer": 0, "encoded": 0, "decoded": 0, "compressed_decoded": 0}
    sized = []
    for r in resources:
        enc, dec = int(r.get("encoded") or 0), int(r.get("decoded") or 0)
        out["requests"] += 1
        out["transfer"] += int(r.get("transfer") or 0)
        out["encoded"] += enc
        out["decoded"] += dec
        if 0 < enc < dec:
            out["compressed_decoded"] += dec
        sized.append((str(r.get("name", "")).rsplit("/", 1)[-1][:48], enc, dec))
    out["largest"] = sorted(sized, key=lambda t: -t[2])[:5]
    return out


def pct(values: Sequence[float], p: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def mib(n: int) -> str:
    return f"{n / 1048576:.1f}"


def format_report(loads: Sequence[Load]) -> list[str]:
    lines = [
        f"{'round':>5} {'load':8} {'ttfb s':>7} {'DCL s':>6} {'drawn s':>7} {'ready s':>7} "
        f"{'reqs':>5} {'wire MiB':>8} {'decoded MiB':>11} {'compressed':>10} {'ws in MiB':>9} "
        f"{'ws out MiB':>10} {'ws deflate':>10}",
    ]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for ld in loads:
        if not ld.ok:
            lines.append(f"{ld.round:>5} {ld.kind:8} FAILED: {ld.error}")
            continue
        share = ld.compressed_bytes_decoded / ld.decoded_bytes if ld.decoded_bytes else 0.0
        lines.append(
            f"{ld.round:>5} {ld.kind:8} {f(ld.ttfb_s):>7} {f(ld.dcl_s):>6} {f(ld.workbench_s):>7} "
            f"{f(ld.ready_s):>7} {ld.requests:>5} {mib(ld.transfer_bytes):>8} "
            f"{mib(ld.decoded_bytes):>11} {share:>10.0%} {mib(ld.ws_payload_received):>9} "
            f"{mib(ld.ws_payload_sent):>10} {ld.ws_deflate:>10}"
        )
    lines.append("")
    lines.append("per kind (ready = the explorer lists the home folder):")
    for kind in ("first", "new_tab", "reload"):
        ready = [ld.ready_s for ld in loads if ld.kind == kind and ld.ok and ld.ready_s is not None]
        ttfb = [ld.ttfb_s for ld in loads if ld.kind == kind and ld.ok and ld.ttfb_s is not None]
        if ready:
            lines.append(
                f"  {kind:8} n={len(ready)}  ready p50 {statistics.median(ready):.2f} s, "
                f"max {max(ready):.2f} s; ttfb p50 {statistics.median(ttfb):.2f} s"
            )
    firsts = [ld for ld in loads if ld.ok and ld.kind in ("first", "new_tab")]
    if firsts:
        ld = firsts[0]
        lines.append("largest responses of the first load (name, wire bytes, decoded bytes):")
        for name, enc, dec in ld.largest:
            lines.append(f"  {name:48} {enc:>10} {dec:>10}")
        if ld.content_encodings:
            lines.append(f"Content-Encoding seen: {ld.content_encodings}")
    return lines


# --- browser steps ----------------------------------------------------------------------------


def _login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_load_state("networkidle")
    if "/hub/login" in page.url:
        raise SystemExit(f"{user} could not log in at {base} (not approved? not on this server's roster?)")


def ensure_student(
    browser: Any, base: str, user: str, password: str, admin: str, admin_password: str
) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{base}/hub/signup")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    if page.locator("#password_confirmation_input").count():
        page.fill("#password_confirmation_input", password)
    page.click("#signup_submit")
    page.wait_for_load_state("networkidle")
    ctx.close()
    ctx = browser.new_context()
    page = ctx.new_page()
    _login(page, base, admin, admin_password)
    page.goto(f"{base}/hub/authorize")
    link = page.locator(f"a[href$='authorize/{user}']", has_text="Authorize")
    if link.count() and "Unauthorize" not in (link.first.inner_text() or ""):
        link.first.click()
        page.wait_for_load_state("networkidle")
    ctx.close()


def _api(page: Any, base: str, method: str, path: str) -> Any:
    """The hub's REST API with the browser's login cookie, as the hub's own pages call it: with
    the XSRF token the hub put in the page (window.jhdata.xsrf_token) in X-XSRFToken."""
    if "/hub/home" not in page.url:
        page.goto(f"{base}/hub/home")
    xsrf = page.evaluate("() => (window.jhdata || {}).xsrf_token || ''")
    return page.request.fetch(f"{base}{path}", method=method, headers={"X-XSRFToken": xsrf})


def restart_server(page: Any, base: str, user: str, timeout: float = 180) -> None:
    """Stop the student's server (REST API with the browser's cookie) and start it again."""
    r = _api(page, base, "DELETE", f"/hub/api/users/{user}/server")
    if r.status not in (202, 204, 400):  # 400: no server running
        raise SystemExit(f"stopping {user}'s server: HTTP {r.status} {r.text()[:200]}")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = _api(page, base, "GET", f"/hub/api/users/{user}")
        if r.status == 200 and not (r.json().get("servers") or {}):
            break
        time.sleep(1)
    start_server(page, base, user)


def start_server(page: Any, base: str, user: str) -> None:
    """Start as the student does; on a hub that offers profiles, the default one (ML Workshop)."""
    page.goto(f"{base}/hub/spawn")
    if page.locator("#spawn_form").count():
        page.click("#spawn_form button[type=submit]")
    page.wait_for_url(f"**/user/{user}/**", timeout=240_000)
    page.wait_for_load_state("load")


def devtools(ctx: Any, page: Any, spec: str) -> Any:
    """A DevTools session on the page (Network events), throttled when spec says so."""
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    if spec:
        throttle(cdp, spec)
    return cdp


def throttle(cdp: Any, spec: str) -> None:
    mbit, _, latency = spec.partition(",")
    bps = float(mbit) * 1_000_000 / 8
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": float(latency or 0),
            "downloadThroughput": bps,
            "uploadThroughput": bps,
        },
    )


def load_vscode(page: Any, cdp: Any, base: str, user: str, rnd: int, kind: str, timeout_ms: int) -> Load:
    ld = Load(round=rnd, kind=kind)
    encodings: dict[str, int] = {}
    deflate: list[bool] = []

    def on_response(resp: Any) -> None:
        enc = (resp.headers or {}).get("content-encoding", "")
        encodings[enc or "none"] = encodings.get(enc or "none", 0) + 1

    def on_websocket(ws: Any) -> None:
        # payload sizes as the page sees them (after any permessage-deflate is undone)
        def received(payload: Any) -> None:
            ld.ws_payload_received += len(payload or b"")

        def sent(payload: Any) -> None:
            ld.ws_payload_sent += len(payload or b"")

        ws.on("framereceived", received)
        ws.on("framesent", sent)

    def on_handshake(event: dict[str, Any]) -> None:
        headers = {k.lower(): v for k, v in (event.get("response", {}).get("headers") or {}).items()}
        deflate.append("permessage-deflate" in headers.get("sec-websocket-extensions", ""))

    page.on("response", on_response)
    page.on("websocket", on_websocket)
    cdp.on("Network.webSocketHandshakeResponseReceived", on_handshake)
    t0 = time.monotonic()
    try:
        if kind == "reload":
            page.reload(wait_until="commit", timeout=timeout_ms)
        else:
            page.goto(f"{base}/user/{user}/vscode/", wait_until="commit", timeout=timeout_ms)
        page.wait_for_selector(".monaco-workbench", state="attached", timeout=timeout_ms)
        ld.workbench_s = time.monotonic() - t0
        page.wait_for_selector(".explorer-folders-view .monaco-list-row", timeout=timeout_ms)
        ld.ready_s = time.monotonic() - t0
        page.wait_for_load_state("networkidle", timeout=timeout_ms)
        info = page.evaluate(RESOURCES_JS)
        ld.ttfb_s = info["ttfb"] / 1000 if info.get("ttfb") is not None else None
        ld.dcl_s = info["dcl"] / 1000 if info.get("dcl") is not None else None
        s = summarize_resources(info["resources"])
        ld.requests, ld.transfer_bytes = s["requests"], s["transfer"]
        ld.encoded_bytes, ld.decoded_bytes = s["encoded"], s["decoded"]
        ld.compressed_bytes_decoded, ld.largest = s["compressed_decoded"], s["largest"]
        ld.ok = True
    except Exception as e:  # a benchmark reports and goes on
        ld.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    finally:
        page.remove_listener("response", on_response)
        page.remove_listener("websocket", on_websocket)
        cdp.remove_listener("Network.webSocketHandshakeResponseReceived", on_handshake)
    ld.content_encodings = encodings
    ld.ws_deflate = "-" if not deflate else "yes" if all(deflate) else "no" if not any(deflate) else "mixed"
    return ld


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the hub's public URL, e.g. http://127.0.0.1:28101")
    ap.add_argument("--user", default="vsbench", help="a student this server lets in (hub_roster!)")
    ap.add_argument("--password", default="vs-bench-Pass-2026")
    ap.add_argument("--admin", default="superuser")
    ap.add_argument("--admin-password", default="")
    ap.add_argument("--admin-password-file", default="")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--throttle", default="", help="MBIT[,LATENCY_MS] per browser context")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per load")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--json", default="")
    a = ap.parse_args(argv)
    admin_pw = a.admin_password
    if a.admin_password_file:
        with open(a.admin_password_file, encoding="utf-8") as fh:
            admin_pw = fh.read().strip()

    from playwright.sync_api import sync_playwright

    base = a.url.rstrip("/")
    loads: list[Load] = []
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"hub: {base}; student {a.user}; throttle: {a.throttle or 'none'}; rounds: {a.repeat}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=CHROMIUM_ARGS)
        if admin_pw:
            ensure_student(browser, base, a.user, a.password, a.admin, admin_pw)
        ctx = browser.new_context()
        page = ctx.new_page()
        _login(page, base, a.user, a.password)
        for rnd in range(1, a.repeat + 1):
            restart_server(page, base, a.user)  # code-server is not running in a fresh server
            vctx = browser.new_context(storage_state=ctx.storage_state())
            vpage = vctx.new_page()
            vcdp = devtools(vctx, vpage, a.throttle)
            loads.append(load_vscode(vpage, vcdp, base, a.user, rnd, "first", int(a.timeout * 1000)))
            loads.append(load_vscode(vpage, vcdp, base, a.user, rnd, "reload", int(a.timeout * 1000)))
            vctx.close()
            nctx = browser.new_context(storage_state=ctx.storage_state())
            npage = nctx.new_page()
            ncdp = devtools(nctx, npage, a.throttle)
            loads.append(load_vscode(npage, ncdp, base, a.user, rnd, "new_tab", int(a.timeout * 1000)))
            nctx.close()
        browser.close()
    for line in format_report(loads):
        print(line)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump([asdict(ld) for ld in loads], fh, indent=1)
    return 0 if all(ld.ok for ld in loads) else 1


if __name__ == "__main__":
    sys.exit(main())
