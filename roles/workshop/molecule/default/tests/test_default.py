"""workshop role: the throwaway test CA made by prepare.yml is trusted system-wide (installed,
in the bundle, accepted by openssl and curl for a certificate it signed; an untrusted CA's
certificate is still refused), and the base packages are installed."""

import time

import pytest

T = "/root/mlw-test"
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
INSTALLED = "/usr/local/share/ca-certificates/ml-workshop/mlw-throwaway-ca.crt"


def pem_body(text):
    return "".join(line for line in text.splitlines() if line and not line.startswith("-----"))


def test_ca_installed_under_its_crt_name(host):
    f = host.file(INSTALLED)
    assert f.is_file and f.user == "root" and f.group == "root" and f.mode == 0o644
    assert f.content_string == host.file(f"{T}/throwaway-ca.pem").content_string
    assert host.file("/usr/local/share/ca-certificates/ml-workshop").mode == 0o755


def test_ca_in_the_system_bundle_and_hashed_directory(host):
    ca = pem_body(host.file(f"{T}/throwaway-ca.pem").content_string)
    assert ca in pem_body(host.file(BUNDLE).content_string)
    h = host.check_output(f"openssl x509 -noout -subject_hash -in {T}/throwaway-ca.pem")
    link = host.file(f"/etc/ssl/certs/{h}.0")
    assert link.is_symlink
    assert pem_body(host.file(link.linked_to).content_string) == ca


@pytest.mark.parametrize("store", [f"-CAfile {BUNDLE}", "", "-CApath /etc/ssl/certs"])
def test_openssl_verifies_a_certificate_the_ca_signed(host, store):
    out = host.check_output(f"openssl verify {store} {T}/leaf.crt")
    assert out.strip() == f"{T}/leaf.crt: OK"


def test_a_certificate_of_an_untrusted_ca_is_still_refused(host):
    r = host.run(f"openssl verify -CAfile {BUNDLE} {T}/other-leaf.crt")
    assert r.rc != 0 and "unable to get local issuer certificate" in r.stdout + r.stderr


def test_curl_trusts_a_tls_server_with_that_certificate(host):
    host.run(
        f"nohup timeout 30 openssl s_server -quiet -www -naccept 1 -accept 127.0.0.1:8443 "
        f"-cert {T}/leaf.crt -key {T}/leaf.key >/dev/null 2>&1 &"
    )
    url = "https://mirror.workshop.test:8443/"
    cmd = f"curl -sS -o /dev/null -w '%{{http_code}}' --resolve mirror.workshop.test:8443:127.0.0.1 {url}"
    for _ in range(40):  # until s_server listens (curl exit 7: could not connect)
        r = host.run(cmd)
        if r.rc != 7:
            break
        time.sleep(0.5)
    assert r.rc == 0, r.stderr  # no -k: curl checked the chain against the system store
    assert r.stdout == "200"


@pytest.mark.parametrize("name", ["ca-certificates", "python3", "curl", "gnupg", "jq"])
def test_base_packages_installed(host, name):
    assert host.package(name).is_installed


def test_installed_package_works(host):
    assert host.check_output("echo '{\"a\": 1}' | jq .a") == "1"


def test_package_lists_present(host):
    assert host.run("ls /var/lib/apt/lists/*_Packages*").rc == 0
