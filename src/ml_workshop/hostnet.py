"""This host's own network addresses (no third-party imports: the hub process and the unit tests
use it; the hub's configuration reads it once at start)."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess


def plain_address(address: str) -> str:
    """An IPv4 client of a dual-stack listener (`::ffff:10.0.0.7`) as its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped) if mapped else str(ip)


def parse_ip_addr_json(text: str) -> set[str]:
    """The addresses in `ip -json address show` output."""
    found: set[str] = set()
    for link in json.loads(text or "[]"):
        for info in link.get("addr_info", []):
            if info.get("local"):
                found.add(plain_address(str(info["local"])))
    return found


def local_addresses() -> set[str]:
    """This host's own addresses: where configurable-http-proxy (same host) can connect from.

    The proxy connects to the hub on the containers' gateway address, but the kernel does not
    always use that address as the source: seen in the test instances, a connection to a local
    address came from the host's primary address. Trusting only the gateway then made the hub
    key every proxied request by that one address — one shared rate-limit bucket for everybody.
    A peer with one of our own addresses is a process on this host (packets from outside with a
    local source address are martians the kernel drops), so it may name the client. Read once at
    hub start with iproute2; without it, the addresses the host name resolves to."""
    found: set[str] = set()
    ip = shutil.which("ip")
    if ip:
        try:
            out = subprocess.run([ip, "-json", "address", "show"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                found = parse_ip_addr_json(out.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            found = set()
    if not found:
        try:
            found = {plain_address(str(ai[4][0])) for ai in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            found = set()
    return found
