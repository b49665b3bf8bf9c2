"""ml_workshop.firewall: the students' network boundary, computed and compared without iptables
(a fake runner stands in for iptables/iptables-restore)."""

from __future__ import annotations

import json
import subprocess

import pytest

from ml_workshop import firewall as fw

SETTINGS = fw.Settings(
    network="ml-workshop",
    bridge="mlw0",
    gateway="172.31.240.1",
    hub_api_port=8081,
    egress=("0.0.0.0/0",),
    denied=("169.254.0.0/16", "100.100.100.200"),
    cache_host="cache1",
    cache_ports=(3142, 3141, 8899),
)
FACTS = fw.Facts(interface="mlw0", cache_addresses=("10.0.0.5",), dns_servers=("10.0.0.53",))
REJECT = "-j REJECT --reject-with icmp-admin-prohibited"


def test_forward_rules_order_and_shape():
    rules = fw.forward_rules(SETTINGS, FACTS)
    assert rules == [
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "! -i mlw0 ! -o mlw0 -j RETURN",
        "! -i mlw0 -o mlw0 -m conntrack --ctstate DNAT -j RETURN",
        f"! -i mlw0 -o mlw0 {REJECT}",
        f"-o mlw0 {REJECT}",
        "-d 10.0.0.53/32 -p udp -m udp --dport 53 -j RETURN",
        "-d 10.0.0.53/32 -p tcp -m tcp --dport 53 -j RETURN",
        f"-d 169.254.0.0/16 {REJECT}",
        f"-d 100.100.100.200/32 {REJECT}",
        "-d 10.0.0.5/32 -p tcp -m tcp --dport 3142 -j RETURN",
        "-d 10.0.0.5/32 -p tcp -m tcp --dport 3141 -j RETURN",
        "-d 10.0.0.5/32 -p tcp -m tcp --dport 8899 -j RETURN",
        f"-d 10.0.0.5/32 {REJECT}",
        "-j RETURN",  # 0.0.0.0/0 prints without -d
        REJECT,
    ]


def test_no_egress_leaves_only_the_cache_host():
    rules = fw.forward_rules(fw.Settings(**{**SETTINGS.__dict__, "egress": ()}), FACTS)
    assert "-j RETURN" not in rules and rules[-1] == REJECT
    egress = fw.Settings(**{**SETTINGS.__dict__, "egress": ("10.1.0.0/16",)})
    assert "-d 10.1.0.0/16 -j RETURN" in fw.forward_rules(egress, FACTS)


def test_input_rules_open_the_hub_api_and_a_local_cache_only():
    remote = fw.input_rules(SETTINGS, FACTS)
    assert remote[:2] == [
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-d 172.31.240.1/32 -p tcp -m tcp --dport 8081 -j ACCEPT",
    ]
    assert not any("3142" in r for r in remote) and remote[-1] == REJECT
    local = fw.input_rules(SETTINGS, fw.Facts(**{**FACTS.__dict__, "cache_is_local": True}))
    assert "-d 10.0.0.5/32 -p tcp -m tcp --dport 3141 -j ACCEPT" in local and local[-1] == REJECT


def test_bridge_interface():
    assert fw.bridge_interface(SETTINGS, None) == "mlw0"
    assert fw.bridge_interface(SETTINGS, {"Id": "0123456789abcdef", "Options": {}}) == "br-0123456789ab"
    inspect = {"Id": "0123456789abcdef", "Options": {fw.BRIDGE_NAME_OPTION: "mlw0"}}
    assert fw.bridge_interface(SETTINGS, inspect) == "mlw0"


@pytest.mark.parametrize("name", ["mlw0", "br-ml_work.1", "a" * 15])
def test_bridge_name_ok(name):
    assert fw.bridge_name_problem(name) == ""


@pytest.mark.parametrize("name", ["", "a" * 16, "ml w", "mlw/0", 7, ".."])
def test_bridge_name_bad(name):
    assert fw.bridge_name_problem(name)


def test_cidr_problems():
    assert fw.cidr_problems(["0.0.0.0/0", "10.0.0.1", "192.168.0.0/16"], "v") == []
    assert fw.cidr_problems("0.0.0.0/0", "v")[0].startswith("v must be a list")
    assert fw.cidr_problems(["10.0.0.0/33", "::/0", "cache1"], "v") == [
        "v: '10.0.0.0/33' is not an IPv4 network (e.g. 10.0.0.0/8 or 192.0.2.7)",
        "v: '::/0' is not an IPv4 network (e.g. 10.0.0.0/8 or 192.0.2.7)",
        "v: 'cache1' is not an IPv4 network (e.g. 10.0.0.0/8 or 192.0.2.7)",
    ]


def test_parse_nameservers():
    text = (
        "# x\nnameserver 127.0.0.53\nnameserver 10.0.0.53\nnameserver ::1\nnameserver 10.0.0.53\nsearch lan\n"
    )
    assert fw.parse_nameservers(text) == ["10.0.0.53"]


def test_settings_from_dict():
    s = fw.Settings.from_dict(
        {"network": "n", "bridge": "b", "gateway": "1.2.3.4", "hub_api_port": "8081", "cache_ports": ["3142"]}
    )
    assert s.hub_api_port == 8081 and s.cache_ports == (3142,) and s.egress == ("0.0.0.0/0",)
    assert s.denied == fw.DEFAULT_DENIED and s.iptables == "iptables"


class FakeIptables:
    """iptables -S / -N and iptables-restore --noflush over a dict of chains (enough for ours)."""

    def __init__(self, chains: dict[str, list[str]] | None = None) -> None:
        self.chains = chains if chains is not None else {"INPUT": [], "DOCKER-USER": []}
        self.restored: list[str] = []

    def __call__(self, argv, stdin):
        def done(rc=0, out=""):
            return subprocess.CompletedProcess(list(argv), rc, out, "")

        if argv[0] == "iptables" and argv[2] == "-S":
            chain = argv[3]
            if chain not in self.chains:
                return done(1)
            return done(0, f"-N {chain}\n" + "".join(f"-A {chain} {r}\n" for r in self.chains[chain]))
        if argv[0] == "iptables" and argv[2] == "-N":
            self.chains[argv[3]] = []
            return done()
        assert argv[0] == "iptables-restore" and "--noflush" in argv
        self.restored.append(stdin)
        for line in stdin.splitlines():
            if line.startswith(":"):
                self.chains[line[1:].split()[0]] = []
            elif line.startswith("-X "):
                del self.chains[line.split()[1]]
            elif line.startswith(("-A ", "-D ", "-I ")):
                op, chain, rest = line.split(" ", 2)
                if op == "-A":
                    self.chains[chain].append(rest)
                elif op == "-D":
                    self.chains[chain].remove(rest)
                else:
                    pos, rule = rest.split(" ", 1)
                    self.chains[chain].insert(int(pos) - 1, rule)
        return done()


def test_apply_then_check_then_remove():
    fake = FakeIptables({"INPUT": ["-p tcp -j ACCEPT"]})
    assert fw.differences(SETTINGS, FACTS, fw.read_live(SETTINGS, fake))
    assert fw.apply(SETTINGS, FACTS, fake) is True
    assert fake.chains["DOCKER-USER"] == ["-j MLW-STUDENTS-FWD"]
    assert fake.chains["INPUT"] == ["-i mlw0 -j MLW-STUDENTS-IN", "-p tcp -j ACCEPT"]
    assert fw.differences(SETTINGS, FACTS, fw.read_live(SETTINGS, fake)) == []
    assert fw.apply(SETTINGS, FACTS, fake) is False and len(fake.restored) == 1
    # someone flushed our chain: check says so, apply puts it back
    fake.chains[fw.FWD_CHAIN] = []
    assert any("missing" in p for p in fw.differences(SETTINGS, FACTS, fw.read_live(SETTINGS, fake)))
    assert fw.apply(SETTINGS, FACTS, fake) is True
    assert fw.remove(SETTINGS, fake) is True
    assert fake.chains == {"INPUT": ["-p tcp -j ACCEPT"], "DOCKER-USER": []}
    assert fw.remove(SETTINGS, fake) is False


def test_apply_moves_a_stale_jump_to_the_new_bridge():
    """The network was recreated (br-<id> became mlw0): the old INPUT jump goes, the new one is
    first; DOCKER-USER's jump (for every packet) is moved back to the top, and a jump of an
    older shape (limited to one bridge) is removed."""
    fake = FakeIptables({"INPUT": [], "DOCKER-USER": []})
    old = fw.Facts(**{**FACTS.__dict__, "interface": "br-0123456789ab"})
    fw.apply(SETTINGS, old, fake)
    fake.chains["DOCKER-USER"].insert(0, "-j RETURN")
    fake.chains["DOCKER-USER"].append("-i br-0123456789ab -j MLW-STUDENTS-FWD")
    problems = fw.differences(SETTINGS, FACTS, fw.read_live(SETTINGS, fake))
    assert "DOCKER-USER: unexpected -A DOCKER-USER -i br-0123456789ab -j MLW-STUDENTS-FWD" in problems
    assert "INPUT: unexpected -A INPUT -i br-0123456789ab -j MLW-STUDENTS-IN" in problems
    fw.apply(SETTINGS, FACTS, fake)
    assert fake.chains["DOCKER-USER"] == ["-j MLW-STUDENTS-FWD", "-j RETURN"]
    assert fake.chains["INPUT"] == ["-i mlw0 -j MLW-STUDENTS-IN"]


def test_show_prints_the_restore_input(tmp_path, monkeypatch, capsys):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps({"network": "n", "bridge": "mlw0", "gateway": "172.31.240.1", "hub_api_port": 8081})
    )
    monkeypatch.setattr(fw, "gather", lambda s: fw.Facts(interface="mlw0"))
    assert fw.main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("*filter\n:MLW-STUDENTS-FWD - [0:0]\n") and out.endswith("COMMIT\n")
    assert "-I DOCKER-USER 1 -j MLW-STUDENTS-FWD" in out
