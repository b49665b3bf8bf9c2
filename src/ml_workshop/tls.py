"""TLS of the hub's public port (hub_tls): the server certificate's names and the workshop CA's
fingerprint. Used by the hub role's filters (preflight, the certificate's SANs) and by the hub
(the CA download page). Standard library only: the hub's venv need not have `cryptography`."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import ssl
from collections.abc import Iterable, Mapping

MODES = ("off", "files", "selfsigned")

# RFC 1123 host names: labels of letters, digits and hyphens (not first or last), 1-63 characters.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Interfaces whose addresses students never use: Docker's bridges appear when a Docker network
# is created (the hub role creates its own after the facts were read), and would change the
# certificate's names from one run to the next.
_SKIPPED_INTERFACES = re.compile(r"^(lo|docker\d*|br-[0-9a-f]+|veth.*)$")


def mode_problems(value: object) -> list[str]:
    """What is wrong with `hub_tls`; [] when it is one of MODES (a string: YAML reads an unquoted
    off as the boolean false, which Ansible's argument spec lets through as 'off')."""
    if isinstance(value, str) and value in MODES:
        return []
    hint = ' (quote it: hub_tls: "off"; YAML reads an unquoted off as false)' if value is False else ""
    return [f"hub_tls must be one of the strings {', '.join(MODES)}, not {value!r}{hint}"]


def is_dns_name(name: str) -> bool:
    """A host name a certificate can carry (RFC 1123; no wildcard, no trailing dot)."""
    if not name or len(name) > 253 or name != name.strip():
        return False
    labels = name.lower().split(".")
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def name_problems(names: object) -> list[str]:
    """What is wrong with `hub_tls_names`: a list of DNS names or IP addresses; [] when usable."""
    if not isinstance(names, list):
        return [f"hub_tls_names must be a list of DNS names or IP addresses, not {names!r}"]
    return [
        f"hub_tls_names: {n!r} is neither a DNS name nor an IP address"
        for n in names
        if not (isinstance(n, str) and (is_ip(n) or is_dns_name(n)))
    ]


def host_addresses(facts: Mapping[str, object]) -> list[str]:
    """The IPv4 addresses of the host's interfaces (Ansible facts: `interfaces` and one entry per
    interface), except loopback and Docker's bridges and veths; sorted."""
    found: set[str] = set()
    for iface in facts.get("interfaces") or []:  # type: ignore[attr-defined]
        if not isinstance(iface, str) or _SKIPPED_INTERFACES.match(iface):
            continue
        info = facts.get(iface) or facts.get(re.sub(r"[-:.]", "_", iface)) or {}
        if not isinstance(info, Mapping):
            continue
        ipv4 = info.get("ipv4")
        entries = [ipv4] if isinstance(ipv4, Mapping) else []
        entries += [e for e in info.get("ipv4_secondaries") or [] if isinstance(e, Mapping)]
        found |= {str(e["address"]) for e in entries if e.get("address")}
    return sorted(found, key=lambda a: ipaddress.ip_address(a))


def subject_alt_names(names: Iterable[object]) -> list[str]:
    """The server certificate's subjectAltName entries for `names` (["DNS:localhost",
    "IP:127.0.0.1", ...]): IP addresses as IP entries (normalized), valid host names as DNS
    entries (lower case), in the given order, each once. Empty values and anything else (a host
    name with an underscore) are left out: a certificate cannot carry them."""
    out: list[str] = []
    for raw in names:
        if raw is None or isinstance(raw, bool):
            continue
        name = str(raw).strip()
        if is_ip(name):
            entry = f"IP:{ipaddress.ip_address(name)}"
        elif is_dns_name(name):
            entry = f"DNS:{name.lower()}"
        else:
            continue
        if entry not in out:
            out.append(entry)
    return out


def fingerprint(pem: str | bytes) -> str:
    """SHA-256 fingerprint of the first certificate of a PEM file, as browsers and `openssl x509
    -fingerprint -sha256` show it (AB:CD:...)."""
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.index(begin)
    block = text[start : text.index(end, start) + len(end)]
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(block)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def read_ca(path: str) -> tuple[bytes, str]:
    """(the PEM file's bytes, its first certificate's SHA-256 fingerprint)."""
    with open(path, "rb") as f:
        pem = f.read()
    return pem, fingerprint(pem)
