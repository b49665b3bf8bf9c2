"""The network boundary of the students' containers (hub role, README "Network boundary of
students' containers"): iptables rules in two chains of the filter table that this module owns.

    MLW-STUDENTS-FWD  jumped to from DOCKER-USER (FORWARD) for every packet: from and to the students' bridge
    MLW-STUDENTS-IN   jumped to from INPUT for packets from the students' bridge to the host itself

Computed from a JSON settings file the hub role writes, applied with `iptables-restore --noflush`
in one transaction (our chains flushed and refilled, stale jumps removed, missing jumps put at the
top), whichever backend `iptables` is (Debian 12: iptables-nft; Docker uses the same command).
IPv4 only: Docker's bridge networks are IPv4 unless IPv6 is enabled on them.

    python -m ml_workshop.firewall show   SETTINGS   the iptables-restore input it would load
    python -m ml_workshop.firewall check  SETTINGS   exit 1 and say what differs from the live rules
    python -m ml_workshop.firewall apply  SETTINGS   load the rules (no change when they are in place)
    python -m ml_workshop.firewall remove SETTINGS   remove the jumps and the chains

Denied packets are REJECTed with icmp-admin-prohibited: a student's connection fails at once
("No route to host") instead of hanging until a timeout; no port is told apart from another.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

from . import hostnet

FWD_CHAIN = "MLW-STUDENTS-FWD"
IN_CHAIN = "MLW-STUDENTS-IN"
DOCKER_USER = "DOCKER-USER"
INPUT = "INPUT"
REJECT = "-j REJECT --reject-with icmp-admin-prohibited"
ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED"
DEFAULT_DENIED = ("169.254.0.0/16", "100.100.100.200/32")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
RESOLV_CONF = ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf")

Runner = Callable[[Sequence[str], str], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Settings:
    """What the hub role writes (roles/hub/templates/student-firewall.json.j2)."""

    network: str
    bridge: str
    gateway: str
    hub_api_port: int
    egress: tuple[str, ...] = ("0.0.0.0/0",)
    denied: tuple[str, ...] = DEFAULT_DENIED
    cache_host: str = ""
    cache_ports: tuple[int, ...] = ()
    iptables: str = "iptables"

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        return cls(
            network=str(data["network"]),
            bridge=str(data["bridge"]),
            gateway=str(data["gateway"]),
            hub_api_port=int(data["hub_api_port"]),
            egress=tuple(str(c) for c in data.get("egress", ["0.0.0.0/0"])),
            denied=tuple(str(c) for c in data.get("denied", DEFAULT_DENIED)),
            cache_host=str(data.get("cache_host") or ""),
            cache_ports=tuple(int(p) for p in data.get("cache_ports", [])),
            iptables=str(data.get("iptables") or "iptables"),
        )


@dataclass(frozen=True)
class Facts:
    """What is read on the host when the rules are computed."""

    interface: str  # the students' bridge as the kernel names it
    cache_addresses: tuple[str, ...] = ()
    cache_is_local: bool = False
    dns_servers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


# --- checks of the settings (the hub role's preflight uses them through its filters) ----------


def cidr_problems(values: object, variable: str) -> list[str]:
    """What is wrong with a list of IPv4 CIDRs (or addresses); [] when usable."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        return [f"{variable} must be a list of IPv4 networks like 10.0.0.0/8, not {values!r}"]
    problems = []
    for value in values:
        try:
            ipaddress.IPv4Network(str(value), strict=False)
        except ValueError:
            problems.append(f"{variable}: {value!r} is not an IPv4 network (e.g. 10.0.0.0/8 or 192.0.2.7)")
    return problems


def bridge_name_problem(name: object) -> str:
    """'' when `name` can name a Linux network interface (at most 15 characters)."""
    if not isinstance(name, str) or not _IFNAME.match(name) or name in (".", ".."):
        return f"{name!r} is not a network interface name (1-15 letters, digits, '_', '.', '-')"
    return ""


# --- reading the host ---------------------------------------------------------------------------


def bridge_interface(settings: Settings, inspect: dict | None) -> str:
    """The students' bridge as the kernel names it: the network's bridge.name option, else Docker's
    `br-<first 12 characters of the network id>`; `settings.bridge` when the network is missing."""
    if not inspect:
        return settings.bridge
    name = (inspect.get("Options") or {}).get(BRIDGE_NAME_OPTION)
    if name:
        return str(name)
    return "br-" + str(inspect["Id"])[:12]


def docker_network(name: str) -> dict | None:
    """`docker network inspect NAME` as a dict, None when Docker or the network is missing."""
    try:
        out = subprocess.run(
            ["docker", "network", "inspect", name], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    found = json.loads(out.stdout or "[]")
    return found[0] if found else None


def resolve_ipv4(host: str) -> tuple[str, ...]:
    """IPv4 addresses of a name or literal address; () when it does not resolve."""
    try:
        return (str(ipaddress.IPv4Address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return ()
    return tuple(sorted({str(i[4][0]) for i in infos}))


def parse_nameservers(text: str) -> list[str]:
    """Non-loopback IPv4 nameservers of a resolv.conf."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ip = ipaddress.IPv4Address(parts[1])
            except ValueError:
                continue
            if not ip.is_loopback and str(ip) not in found:
                found.append(str(ip))
    return found


def dns_servers(paths: Sequence[str] = RESOLV_CONF) -> tuple[str, ...]:
    """The resolvers Docker's embedded DNS forwards to: the host's resolv.conf nameservers, or
    systemd-resolved's upstreams when resolv.conf names only a loopback stub (Docker does the same).
    The embedded server sends these queries from the container's namespace, through the bridge."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                found = parse_nameservers(f.read())
        except OSError:
            continue
        if found:
            return tuple(found)
    return ()


def gather(settings: Settings) -> Facts:
    """Read the host: the bridge's name, the cache host's addresses, the resolvers."""
    warnings = []
    interface = bridge_interface(settings, docker_network(settings.network))
    cache: tuple[str, ...] = ()
    local = False
    if settings.cache_host:
        cache = resolve_ipv4(settings.cache_host)
        if not cache:
            warnings.append(
                f"the cache host {settings.cache_host!r} does not resolve to an IPv4 address: "
                "students cannot reach it until it does (run apply again)"
            )
        local = bool(set(cache) & hostnet.local_addresses())
    return Facts(
        interface=interface,
        cache_addresses=cache,
        cache_is_local=local,
        dns_servers=dns_servers(),
        warnings=tuple(warnings),
    )


# --- the rules ---------------------------------------------------------------------------------


def _net(value: str) -> str:
    return ipaddress.IPv4Network(value, strict=False).with_prefixlen


def _dest(value: str) -> str:
    """`-d NET ` as `iptables -S` prints it (nothing for 0.0.0.0/0)."""
    net = _net(value)
    return "" if net == "0.0.0.0/0" else f"-d {net} "


def _tcp(port: int) -> str:
    return f"-p tcp -m tcp --dport {int(port)} "


def _dns(address: str, verdict: str) -> list[str]:
    return [
        f"-d {_net(address)} -p udp -m udp --dport 53 -j {verdict}",
        f"-d {_net(address)} -p tcp -m tcp --dport 53 -j {verdict}",
    ]


def forward_rules(settings: Settings, facts: Facts) -> list[str]:
    """MLW-STUDENTS-FWD (without `-A CHAIN `): every forwarded packet passes here first (the
    jump from DOCKER-USER is unconditional); RETURN hands it back to Docker's own chains.
    Packets that neither come from nor go to the students' bridge return at once. Into the
    bridge only answers and Docker's published ports (DNAT): a machine that routes to the
    students' subnet through the NPU server reaches no unpublished port (Docker's own FORWARD
    rules let it, when the chain's policy is ACCEPT). From the bridge: the rules below."""
    br = facts.interface
    rules = [
        f"{ESTABLISHED} -j RETURN",
        f"! -i {br} ! -o {br} -j RETURN",  # not the students' traffic
        f"! -i {br} -o {br} -m conntrack --ctstate DNAT -j RETURN",  # a published port (SSH)
        f"! -i {br} -o {br} {REJECT}",  # routed or from another network, to an unpublished port
        f"-o {br} {REJECT}",  # another student (also hairpin through a published port)
    ]
    for server in facts.dns_servers:
        rules += _dns(server, "RETURN")
    rules += [f"{_dest(net)}{REJECT}" for net in settings.denied]
    for address in facts.cache_addresses:
        rules += [f"-d {_net(address)} {_tcp(port)}-j RETURN" for port in settings.cache_ports]
        rules.append(f"-d {_net(address)} {REJECT}")
    rules += [f"{_dest(net)}-j RETURN" for net in settings.egress]
    rules.append(REJECT)
    return rules


def input_rules(settings: Settings, facts: Facts) -> list[str]:
    """MLW-STUDENTS-IN (without `-A CHAIN `): packets from a student's container to any of the
    host's own addresses. Docker's embedded DNS (127.0.0.11) answers inside the container's own
    namespace and needs no rule here; its upstream queries are allowed to the host's resolvers."""
    rules = [
        f"{ESTABLISHED} -j ACCEPT",
        f"-d {_net(settings.gateway)} {_tcp(settings.hub_api_port)}-j ACCEPT",
    ]
    for server in facts.dns_servers:
        rules += _dns(server, "ACCEPT")
    if facts.cache_is_local:
        for address in facts.cache_addresses:
            rules += [f"-d {_net(address)} {_tcp(port)}-j ACCEPT" for port in settings.cache_ports]
    rules.append(REJECT)
    return rules


def jump(chain: str, target: str, interface: str) -> str:
    """A jump rule as `iptables -S` prints it: DOCKER-USER jumps for every forwarded packet (the
    chain itself tells the students' traffic apart, both ways), INPUT for the bridge's only."""
    if chain == DOCKER_USER:
        return f"-A {chain} -j {target}"
    return f"-A {chain} -i {interface} -j {target}"


@dataclass(frozen=True)
class Live:
    """The live rules `iptables -S` prints: None for a missing chain."""

    fwd: list[str] | None
    inp: list[str] | None
    docker_user: list[str] | None
    input: list[str] | None


def read_live(settings: Settings, run: Runner | None = None) -> Live:
    runner = run or _run

    def rules(chain: str) -> list[str] | None:
        out = runner([settings.iptables, "-w", "-S", chain], "")
        if out.returncode != 0:
            return None
        return [line.strip() for line in out.stdout.splitlines() if line.startswith("-A ")]

    return Live(rules(FWD_CHAIN), rules(IN_CHAIN), rules(DOCKER_USER), rules(INPUT))


def _chain_body(chain: str, rules: list[str]) -> list[str]:
    return [f"-A {chain} {r}" for r in rules]


def _jumps(rules: list[str] | None, target: str) -> list[str]:
    return [r for r in rules or [] if r.endswith(f"-j {target}")]


def differences(settings: Settings, facts: Facts, live: Live) -> list[str]:
    """What differs between the live rules and the wanted ones; [] when they are in place."""
    problems = []
    for chain, wanted, got in (
        (FWD_CHAIN, forward_rules(settings, facts), live.fwd),
        (IN_CHAIN, input_rules(settings, facts), live.inp),
    ):
        body = _chain_body(chain, wanted)
        if got is None:
            problems.append(f"chain {chain} is missing")
        elif got != body:
            problems += [f"{chain}: missing {r}" for r in body if r not in got]
            problems += [f"{chain}: unexpected {r}" for r in got if r not in body]
            if sorted(got) == sorted(body):
                problems.append(f"{chain}: rules out of order")
    for parent, target, got in ((DOCKER_USER, FWD_CHAIN, live.docker_user), (INPUT, IN_CHAIN, live.input)):
        want = jump(parent, target, facts.interface)
        if got is None:
            problems.append(f"chain {parent} is missing")
            continue
        if not got or got[0] != want:
            problems.append(f"{parent}: {want} is not the first rule")
        problems += [f"{parent}: unexpected {r}" for r in _jumps(got, target) if r != want]
        if got.count(want) > 1:
            problems.append(f"{parent}: {want} is there {got.count(want)} times")
    return problems


def restore_input(settings: Settings, facts: Facts, live: Live) -> str:
    """iptables-restore --noflush input: our chains declared (created or flushed) and refilled,
    every jump to them that is not the single wanted first rule removed, the wanted jump inserted
    at the top. DOCKER-USER and INPUT are never declared (a declaration would flush them)."""
    lines = ["*filter", f":{FWD_CHAIN} - [0:0]", f":{IN_CHAIN} - [0:0]"]
    lines += _chain_body(FWD_CHAIN, forward_rules(settings, facts))
    lines += _chain_body(IN_CHAIN, input_rules(settings, facts))
    for parent, target, got in ((DOCKER_USER, FWD_CHAIN, live.docker_user), (INPUT, IN_CHAIN, live.input)):
        want = jump(parent, target, facts.interface)
        got = got or []
        if got[:1] == [want] and _jumps(got, target) == [want]:
            continue
        lines += ["-D" + r[2:] for r in _jumps(got, target)]
        lines.append("-I" + want[2:].replace(f"{parent} ", f"{parent} 1 ", 1))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def removal_input(live: Live) -> str:
    """iptables-restore --noflush input that removes the jumps and our chains."""
    lines = ["*filter"]
    lines += ["-D" + r[2:] for r in _jumps(live.docker_user, FWD_CHAIN)]
    lines += ["-D" + r[2:] for r in _jumps(live.input, IN_CHAIN)]
    for chain, got in ((FWD_CHAIN, live.fwd), (IN_CHAIN, live.inp)):
        if got is not None:
            lines += [f":{chain} - [0:0]", f"-X {chain}"]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# --- commands -------------------------------------------------------------------------------------


def _run(argv: Sequence[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=60, check=False)


def _restore(settings: Settings, text: str, run: Runner) -> None:
    restore = settings.iptables + "-restore"
    out = run([restore, "-w", "--noflush"], text)
    if out.returncode != 0:
        raise RuntimeError(f"{restore} failed ({out.returncode}): {out.stderr.strip()}\ninput was:\n{text}")


def apply(settings: Settings, facts: Facts, run: Runner | None = None) -> bool:
    """Load the rules; True when something changed."""
    runner = run or _run
    live = read_live(settings, runner)
    if not differences(settings, facts, live):
        return False
    if live.docker_user is None:  # Docker has not created it yet; it uses the existing one
        out = runner([settings.iptables, "-w", "-N", DOCKER_USER], "")
        if out.returncode != 0:
            raise RuntimeError(f"iptables -N {DOCKER_USER} failed: {out.stderr.strip()}")
        live = read_live(settings, runner)
    _restore(settings, restore_input(settings, facts, live), runner)
    left = differences(settings, facts, read_live(settings, runner))
    if left:
        raise RuntimeError("the rules differ after loading them: " + "; ".join(left))
    return True


def remove(settings: Settings, run: Runner | None = None) -> bool:
    """Remove the jumps and the chains; True when something was there."""
    runner = run or _run
    live = read_live(settings, runner)
    if (
        live.fwd is None
        and live.inp is None
        and not _jumps(live.docker_user, FWD_CHAIN)
        and not _jumps(live.input, IN_CHAIN)
    ):
        return False
    _restore(settings, removal_input(live), runner)
    return True


def load_settings(path: str) -> Settings:
    with open(path, encoding="utf-8") as f:
        return Settings.from_dict(json.load(f))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ml_workshop.firewall", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["show", "check", "apply", "remove"])
    p.add_argument("settings", help="JSON settings file (the hub role writes it)")
    args = p.parse_args(argv)
    settings = load_settings(args.settings)
    if args.command == "remove":
        print("removed" if remove(settings) else "nothing to remove")
        return 0
    facts = gather(settings)
    for warning in facts.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.command == "show":
        sys.stdout.write(restore_input(settings, facts, Live([], [], [], [])))
        return 0
    if args.command == "check":
        problems = differences(settings, facts, read_live(settings))
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    try:
        changed = apply(settings, facts)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("changed" if changed else "unchanged")
    # Fail-closed rules are loaded, but a cache host that did not resolve is worth a failed unit.
    return 1 if facts.warnings else 0


if __name__ == "__main__":
    sys.exit(main())
