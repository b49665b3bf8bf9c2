#!/usr/bin/env python3
"""Connections through configurable-http-proxy that must outlive a hub restart (hub scenario,
tests/test_proxy.py). Runs in the instance with the hub venv's Python (tornado is there).

  proxy_probe.py USER DIR

Through the proxy on 127.0.0.1:28000, with the ml-workshop-api service token, it opens to USER's
server a terminal websocket (/user/USER/terminals/websocket/NAME) and one HTTP/1.1 keep-alive
connection, and checks both work (a command's output; GET /user/USER/api/status). It writes
DIR/ready, keeps using the HTTP connection every second (CHP closes a keep-alive connection idle
for 5 s) until DIR/go appears, then uses both again and writes DIR/result.json:
  {"http": [status, ...], "same_socket": bool, "ws_after": bool, "errors": [...]}
The HTTP connection never reconnects silently (auto_open = 0): a closed connection is an error.
"""

import asyncio
import http.client
import json
import os
import sys
import time

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

HOST, PORT = "127.0.0.1", 28000
with open("/etc/jupyterhub/secrets/api_token", encoding="utf-8") as f:
    HEADERS = {"Authorization": "token " + f.read().strip()}


async def read_until(ws, marker, timeout=30.0):
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        msg = await asyncio.wait_for(ws.read_message(), max(deadline - time.monotonic(), 0.1))
        if msg is None:
            raise RuntimeError(f"the websocket was closed before {marker!r} arrived")
        kind, *data = json.loads(msg)
        if kind == "stdout":
            seen += data[0]
    return seen


def request(conn, method, path):
    conn.request(method, path, headers=HEADERS)
    r = conn.getresponse()
    return r.status, r.read()


async def main(user, out):
    result = {"http": [], "errors": [], "ws_after": False, "same_socket": False}
    conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
    conn.connect()
    conn.auto_open = 0
    local = conn.sock.getsockname()
    status, body = request(conn, "POST", f"/user/{user}/api/terminals")
    assert status == 200, (status, body)
    term = json.loads(body)["name"]
    url = f"ws://{HOST}:{PORT}/user/{user}/terminals/websocket/{term}"
    ws = await websocket_connect(HTTPRequest(url, headers=HEADERS))
    # The terminal echoes the typed line ("...$((6*7))"); only the command's output holds the 42.
    ws.write_message(json.dumps(["stdin", "echo mlw-before-$((6*7))\r"]))
    await read_until(ws, "mlw-before-42")
    result["http"].append(request(conn, "GET", f"/user/{user}/api/status")[0])
    with open(os.path.join(out, "ready"), "w") as f:
        f.write(f"terminal {term}\n")

    deadline = time.monotonic() + 600
    while not os.path.exists(os.path.join(out, "go")) and time.monotonic() < deadline:
        await asyncio.sleep(1)
        try:
            result["http"].append(request(conn, "GET", f"/user/{user}/api/status")[0])
        except Exception as e:  # noqa: BLE001 - reported, the test fails on it
            result["errors"].append(f"http during the restart: {e!r}")
            break

    try:
        ws.write_message(json.dumps(["stdin", "echo mlw-after-$((6*7))\r"]))
        await read_until(ws, "mlw-after-42")
        result["ws_after"] = True
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"websocket after the restart: {e!r}")
    try:
        result["http"].append(request(conn, "GET", f"/user/{user}/api/status")[0])
        result["same_socket"] = conn.sock is not None and conn.sock.getsockname() == local
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"http after the restart: {e!r}")
    ws.close()
    conn.close()
    try:
        request(
            http.client.HTTPConnection(HOST, PORT, timeout=10), "DELETE", f"/user/{user}/api/terminals/{term}"
        )
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"removing the terminal: {e!r}")
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    except Exception as e:
        with open(os.path.join(sys.argv[2], "result.json"), "w") as f:
            json.dump(
                {"http": [], "errors": [f"probe failed: {e!r}"], "ws_after": False, "same_socket": False}, f
            )
        raise
