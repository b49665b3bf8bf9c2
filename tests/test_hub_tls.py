"""hub_tls: ml_workshop.tls (the certificate's names, the CA's fingerprint), the hub config with
TLS on, and the contracts of the role's TLS tasks (the workshop CA is made once)."""

import datetime
import hashlib
import pathlib

import pytest
import yaml
from test_hub_config import settings

from ml_workshop import hubconfig, tls

REPO = pathlib.Path(__file__).resolve().parents[1]
HUB = REPO / "roles" / "hub"


@pytest.mark.parametrize("value", ["off", "files", "selfsigned"])
def test_the_three_modes_are_accepted(value):
    assert tls.mode_problems(value) == []


@pytest.mark.parametrize("value", [False, True, "on", "Off", None, ""])
def test_anything_else_is_refused_naming_hub_tls(value):
    (problem,) = tls.mode_problems(value)
    assert problem.startswith("hub_tls must be one of the strings off, files, selfsigned")
    assert ("quote it" in problem) == (value is False)


def test_the_role_default_is_the_string_off():
    assert yaml.safe_load((HUB / "defaults/main.yml").read_text())["hub_tls"] == "off"


@pytest.mark.parametrize(
    "names, bad",
    [
        ([], []),
        (["hub.example.edu", "10.0.0.5", "2001:db8::1", "npu1"], []),
        (["bad_name.example"], ["bad_name.example"]),
        (["-x.example", "a..b", "*.example.edu", "1.2.3"], ["-x.example", "a..b", "*.example.edu", "1.2.3"]),
        ([5], [5]),
    ],
)
def test_name_problems(names, bad):
    got = tls.name_problems(names)
    assert len(got) == len(bad) and all(g.startswith("hub_tls_names: ") for g in got), got


def test_name_problems_wants_a_list():
    assert tls.name_problems("hub.example.edu")[0].startswith("hub_tls_names must be a list")


def test_subject_alt_names_classifies_and_deduplicates():
    got = tls.subject_alt_names(
        [
            "localhost",
            "127.0.0.1",
            "NPU1",
            "npu1",
            "npu1.example.edu",
            "",
            None,
            "192.0.2.10",
            "192.0.2.10",
            "2001:DB8:0::1",
            "under_score",
            " npu1 ",
            False,
        ]
    )
    assert got == [
        "DNS:localhost",
        "IP:127.0.0.1",
        "DNS:npu1",
        "DNS:npu1.example.edu",
        "IP:192.0.2.10",
        "IP:2001:db8::1",
    ]


def test_host_addresses_leave_out_loopback_and_docker_bridges():
    facts = {
        "interfaces": ["lo", "eth0", "docker0", "br-0123abcd", "veth12ab", "ens3", "bond0.100"],
        "lo": {"ipv4": {"address": "127.0.0.1"}},
        "eth0": {"ipv4": {"address": "192.0.2.10"}, "ipv4_secondaries": [{"address": "192.0.2.11"}]},
        "docker0": {"ipv4": {"address": "172.17.0.1"}},
        "br_0123abcd": {"ipv4": {"address": "172.31.240.1"}},
        "veth12ab": {},
        "ens3": {"ipv4": {"address": "10.0.0.5"}},
        "bond0_100": {"ipv4": {"address": "10.1.0.5"}},
    }
    assert tls.host_addresses(facts) == ["10.0.0.5", "10.1.0.5", "192.0.2.10", "192.0.2.11"]
    assert tls.host_addresses({}) == []


def _ca_pem():
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ML Workshop CA (npu1)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert.public_bytes(serialization.Encoding.PEM), hashlib.sha256(der).hexdigest().upper()


def test_fingerprint_is_the_sha256_of_the_certificate_as_browsers_show_it(tmp_path):
    pem, hexdigest = _ca_pem()
    fp = tls.fingerprint(pem)
    assert fp.replace(":", "") == hexdigest and len(fp.split(":")) == 32
    path = tmp_path / "ca.crt"
    path.write_bytes(pem + pem)  # a bundle: the first certificate counts
    assert tls.read_ca(str(path)) == (pem + pem, fp)


def test_workshop_ca_of_the_handlers(tmp_path):
    pytest.importorskip("jupyterhub")
    from ml_workshop import handlers

    pem, _ = _ca_pem()
    (tmp_path / "ca.crt").write_bytes(pem)
    (tmp_path / "junk.crt").write_text("not a certificate")
    assert handlers.workshop_ca(str(tmp_path / "ca.crt")) == (pem, tls.fingerprint(pem))
    assert handlers.workshop_ca(str(tmp_path / "junk.crt")) is None
    assert handlers.workshop_ca(str(tmp_path / "missing.crt")) is None
    assert handlers.workshop_ca("") is None
    assert handlers.CA_CONTENT_TYPE == "application/x-x509-ca-cert"


def tls_settings(tmp_path, mode="selfsigned", ca="/etc/jupyterhub/tls/workshop-ca.crt"):
    s = settings(tmp_path)
    s["tls"] = {
        "mode": mode,
        "cert_file": "/etc/jupyterhub/tls/server.crt",
        "key_file": "/etc/jupyterhub/tls/server.key",
        "ca_file": ca,
    }
    return s


def test_apply_with_tls_makes_the_hub_https_with_secure_cookies(tmp_path):
    pytest.importorskip("jupyterhub")
    from jupyterhub.app import JupyterHub
    from traitlets.config import Config

    c = hubconfig.apply(Config(), tls_settings(tmp_path))
    hub = c.JupyterHub
    assert hub.bind_url == "https://:28000"
    assert JupyterHub(config=c).bind_url == "https://:28000"  # kept by JupyterHub's validator
    assert hub.cookie_options == {"secure": True}
    assert hub.tornado_settings["xsrf_cookie_kwargs"] == {"secure": True}
    routes = {h[0]: h for h in hub.extra_handlers}
    assert set(routes) == {
        r"/connection",
        r"/my-work\.tar\.gz",
        r"/npus",
        r"/workshop-ca",
        r"/workshop-ca\.crt",
    }
    assert all(
        h[2] == {"ca_file": "/etc/jupyterhub/tls/workshop-ca.crt"}
        for r, h in routes.items()
        if r not in (r"/my-work\.tar\.gz", r"/npus")
    )
    assert hub.template_vars["workshop_ca_url"] == "workshop-ca"


def test_apply_with_files_and_no_ca_offers_no_ca(tmp_path):
    pytest.importorskip("jupyterhub")
    from traitlets.config import Config

    c = hubconfig.apply(Config(), tls_settings(tmp_path, mode="files", ca=""))
    assert c.JupyterHub.bind_url == "https://:28000"
    assert [h[0] for h in c.JupyterHub.extra_handlers] == [r"/connection", r"/my-work\.tar\.gz", r"/npus"]
    assert c.JupyterHub.template_vars["workshop_ca_url"] == ""


def test_apply_without_tls_is_plain_http(tmp_path):
    pytest.importorskip("jupyterhub")
    from traitlets.config import Config

    for s in (tls_settings(tmp_path, mode="off"), settings(tmp_path)):  # and a file from before hub_tls
        c = hubconfig.apply(Config(), s)
        assert c.JupyterHub.bind_url == "http://:28000"
        assert "cookie_options" not in c.JupyterHub and "ssl_cert" not in c.JupyterHub
        assert [h[0] for h in c.JupyterHub.extra_handlers] == [r"/connection", r"/my-work\.tar\.gz", r"/npus"]


def test_apply_refuses_a_bad_mode(tmp_path):
    from traitlets.config import Config

    with pytest.raises(ValueError, match="hub_tls must be one of"):
        hubconfig.apply(Config(), tls_settings(tmp_path, mode=False))
    s = tls_settings(tmp_path)
    s["tls"]["key_file"] = ""
    with pytest.raises(ValueError, match="needs the certificate and key"):
        hubconfig.apply(Config(), s)


def test_settings_template_carries_the_tls_block():
    template = (HUB / "templates/ml-workshop.json.j2").read_text()
    for key in (
        '"mode": hub_tls',
        '"cert_file": hub_tls_cert',
        '"key_file": hub_tls_key',
        '"ca_file": hub_tls_offered_ca',
    ):
        assert key in template, key


def _tasks(name):
    return yaml.safe_load((HUB / "tasks" / name).read_text())


def _flatten(tasks):
    for t in tasks:
        yield t
        yield from _flatten(t.get("block", []))


def test_the_workshop_ca_is_made_once():
    """The CA key is never re-made (regenerate: never), in the root-only secrets directory; its
    certificate is made only when missing (or the key is new); the server certificate alone
    follows the names and the dates."""
    tasks = list(_flatten(_tasks("tls.yml")))
    ca_key = next(t for t in tasks if "CA key" in t["name"])["community.crypto.openssl_privatekey"]
    assert (
        ca_key["path"] == "{{ hub_tls_ca_key }}"
        and ca_key["regenerate"] == "never"
        and ca_key["mode"] == "0600"
    )
    hub_vars = yaml.safe_load((HUB / "vars/main.yml").read_text())
    assert hub_vars["hub_tls_ca_key"] == "{{ hub_secrets_dir }}/workshop-ca.key"
    ca_block = next(t for t in tasks if t["name"].startswith("Make the workshop CA certificate"))
    assert "not hub_tls_ca_cert_stat.stat.exists or hub_tls_ca_key_result is changed" in ca_block["when"]
    ca_cert = next(t for t in ca_block["block"] if "community.crypto.x509_certificate" in t)
    assert ca_cert["community.crypto.x509_certificate"]["path"] == "{{ hub_tls_ca_cert }}"
    server = next(t for t in tasks if t["name"].startswith("Sign the server certificate"))
    args = server["community.crypto.x509_certificate"]
    assert args["provider"] == "ownca" and args["path"] == "{{ hub_tls_cert }}"
    assert "valid_at.renew" in args["force"] and server["notify"] == "Restart configurable-http-proxy"
    server_key = next(t for t in tasks if t["name"].startswith("Create the server key"))
    assert server_key["community.crypto.openssl_privatekey"]["mode"] == "0640"
    assert server_key["community.crypto.openssl_privatekey"]["group"] == "{{ hub_proxy_user }}"


def test_the_proxy_unit_gets_the_certificate_when_tls_is_on():
    unit = (HUB / "templates/configurable-http-proxy.service.j2").read_text()
    assert "{{ hub_proxy_tls_args }}" in unit
    hub_vars = yaml.safe_load((HUB / "vars/main.yml").read_text())
    assert "--ssl-cert ' ~ hub_tls_cert ~ ' --ssl-key ' ~ hub_tls_key" in hub_vars["hub_proxy_tls_args"]
