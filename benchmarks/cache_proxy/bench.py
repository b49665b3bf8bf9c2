#!/usr/bin/env python3
"""Cache proxy benchmark: N concurrent clients fetch the same wheels through devpi and the same
.debs through apt-cacher-ng, cold cache then warm, plus straight from upstream, in one run.

Starts a real devpi-server and a real apt-cacher-ng on loopback with throw-away data
directories, prints its numbers and exits (not a test; nothing is asserted).

    python3 benchmarks/cache_proxy/bench.py [--clients 20] [--devpi-venv DIR]

Needs: apt-cacher-ng installed (apt-get install apt-cacher-ng; the service need not run),
a virtualenv with devpi-server (created under /tmp if --devpi-venv is not given), network access
to PyPI and deb.debian.org (directly or through the environment's proxy settings).
"""

import argparse
import collections
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

WHEELS = [  # small, pure-Python, pinned: the same bytes in every run
    "six==1.16.0",
    "idna==3.7",
    "packaging==24.1",
    "certifi==2024.7.4",
    "urllib3==2.2.2",
    "charset-normalizer==3.3.2",
    "requests==2.32.3",
    "attrs==23.2.0",
    "pluggy==1.5.0",
    "iniconfig==2.0.0",
    "numpy==1.26.4",
    "pandas==2.2.2",  # two large ones (about 30 MB together)
]
# A few small and a few larger .debs (about 27 MB together) from the main archive.
DEB_PACKAGES = ["hello", "sl", "tree", "bc", "pv", "figlet", "cowsay", "vim-runtime", "libicu72", "cpp-12"]
DEBIAN = "http://deb.debian.org/debian/"


def free_port():
    """A free loopback port below 32768 (apt-cacher-ng 3.7 fails to bind higher ones here)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise SystemExit("no free port")


def wait_http(url, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in {timeout}s")


def no_proxy_opener(proxy=None):
    handlers = [urllib.request.ProxyHandler({"http": proxy} if proxy else {})]
    return urllib.request.build_opener(*handlers)


# --- clients --------------------------------------------------------------------------------------
def pip_client(args):
    """One client: pip download of the whole wheel set (fresh dir, no pip cache)."""
    barrier, index_url, wheels, workdir = args
    dest = tempfile.mkdtemp(dir=workdir)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--isolated",
        "--no-cache-dir",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-d",
        dest,
        "--only-binary=:all:",
        "--timeout",
        "60",
    ]  # as cache_client_pip_timeout sets in pip.conf
    env = dict(os.environ)
    for k in ("PIP_CONSTRAINT", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"):
        env.pop(k, None)
    if index_url:
        cmd += ["--index-url", index_url]
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    barrier.wait()
    t0 = time.time()
    rc = subprocess.run(cmd + wheels, env=env, capture_output=True, text=True)
    dt = time.time() - t0
    n = len([f for f in os.listdir(dest) if f.endswith(".whl")])
    shutil.rmtree(dest, ignore_errors=True)
    return dt, rc.returncode, n, rc.stderr[-300:]


def deb_client(args):
    """One client: GET every .deb URL (through the proxy when given), as apt does over HTTP."""
    barrier, proxy, urls = args
    opener = no_proxy_opener(proxy) if proxy else urllib.request.build_opener()
    barrier.wait()
    t0 = time.time()
    ok = 0
    errors = []
    for u in urls:
        try:
            with opener.open(u, timeout=120) as r:
                while r.read(1 << 16):
                    pass
                ok += r.status == 200
        except Exception as e:  # noqa: BLE001 - reported, not raised
            errors.append(f"{u}: {e}")
    return time.time() - t0, len(errors), ok, "; ".join(errors)[:300]


def run_round(func, n, make_args):
    with mp.Manager() as m:
        barrier = m.Barrier(n + 1)
        with mp.Pool(n) as pool:
            res = pool.map_async(func, [make_args(barrier) for _ in range(n)])
            barrier.wait()
            t0 = time.time()
            out = res.get()
            wall = time.time() - t0
    bad = [o for o in out if o[1] != 0]
    return wall, out, bad


# --- servers --------------------------------------------------------------------------------------
def start_devpi(venv, workdir, request_timeout):
    if not venv:
        venv = os.path.join(tempfile.gettempdir(), "mlw-bench-devpi-venv")
        if not os.path.exists(os.path.join(venv, "bin", "devpi-server")):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "devpi-server"], check=True)
    serverdir = os.path.join(workdir, "devpi")
    subprocess.run(
        [os.path.join(venv, "bin", "devpi-init"), "--serverdir", serverdir], check=True, capture_output=True
    )
    port = free_port()
    log = open(os.path.join(workdir, "devpi.log"), "w")
    env = dict(
        os.environ,
        REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
        SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt",
    )
    proc = subprocess.Popen(
        [
            os.path.join(venv, "bin", "devpi-server"),
            "--serverdir",
            serverdir,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--request-timeout",
            str(request_timeout),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/+api")
    # As the role does after installing: load PyPI's project list once (devpi fetches it on first
    # use; concurrent first requests time out meanwhile). Package pages and files stay cold.
    t0 = time.time()
    wait_http(url + "/root/pypi/+simple/pip/", timeout=300)
    prime = time.time() - t0
    version = subprocess.run(
        [os.path.join(venv, "bin", "devpi-server"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    return proc, url, os.path.join(workdir, "devpi.log"), f"{version} (project list primed in {prime:.1f}s)"


def start_acng(workdir):
    if not shutil.which("apt-cacher-ng") and not os.path.exists("/usr/sbin/apt-cacher-ng"):
        raise SystemExit("apt-cacher-ng is not installed (apt-get install apt-cacher-ng)")
    conf = os.path.join(workdir, "acng")
    os.makedirs(os.path.join(conf, "cache"))
    os.makedirs(os.path.join(conf, "log"))
    port = free_port()
    with open(os.path.join(conf, "acng.conf"), "w") as f:
        f.write(
            f"CacheDir: {conf}/cache\nLogDir: {conf}/log\nSupportDir: /usr/lib/apt-cacher-ng\n"
            f"Port: {port}\nBindAddress: 127.0.0.1\nSocketPath: {conf}/socket\n"
            f"Remap-debrep: file:deb_mirror*.gz /debian ; {DEBIAN}\nForeGround: 1\n"
        )
    proc = subprocess.Popen(
        ["/usr/sbin/apt-cacher-ng", "-c", conf, "ForeGround=1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    end = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > end or proc.poll() is not None:
                proc.kill()
                raise SystemExit(
                    f"apt-cacher-ng did not listen on {port}; see {conf}/log/apt-cacher.err"
                ) from None
            time.sleep(0.3)
    return proc, f"http://127.0.0.1:{port}", os.path.join(conf, "log", "apt-cacher.log")


def deb_urls():
    out = subprocess.run(
        ["apt-cache", "show", "--no-all-versions"] + DEB_PACKAGES, capture_output=True, text=True
    ).stdout
    # Security updates live in another archive: keep the main archive's files only.
    return [DEBIAN + m for m in re.findall(r"^Filename: (\S+)$", out, re.M) if "/updates/" not in m]


def summarize(name, wall, out, bad):
    times = sorted(o[0] for o in out)
    return {
        "round": name,
        "wall_s": round(wall, 2),
        "client_median_s": round(times[len(times) // 2], 2),
        "client_max_s": round(times[-1], 2),
        "failed_clients": len(bad),
        "files_per_client": sorted({o[2] for o in out}),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--devpi-venv", default="")
    ap.add_argument(
        "--devpi-request-timeout",
        type=int,
        default=30,
        help="devpi --request-timeout (the role's default; devpi's own is 5)",
    )
    ap.add_argument("--skip-apt", action="store_true")
    ap.add_argument("--skip-pip", action="store_true")
    a = ap.parse_args()
    n = a.clients
    work = tempfile.mkdtemp(prefix="mlw-cache-bench-")
    procs = []
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "os": platform.freedesktop_os_release().get("PRETTY_NAME", "?"),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        },
        "clients": n,
    }
    try:
        if not a.skip_pip:
            proc, url, log, version = start_devpi(a.devpi_venv, work, a.devpi_request_timeout)
            procs.append(proc)
            index = url + "/root/pypi/+simple/"
            rounds = []
            for name, idx in (("devpi cold", index), ("devpi warm", index), ("direct from PyPI", "")):
                wall, out, bad = run_round(pip_client, n, lambda b, idx=idx: (b, idx, WHEELS, work))
                rounds.append(summarize(name, wall, out, bad))
                if bad:
                    rounds[-1]["first_error"] = bad[0][3]
            text = open(log).read()
            if any(r["failed_clients"] for r in rounds):
                keep = os.path.join(tempfile.gettempdir(), "mlw-cache-bench-devpi.log")
                shutil.copy(log, keep)
                rounds[0]["devpi_log"] = keep
            fetches = collections.Counter(
                m.split("/")[-1] for m in re.findall(r"reading remote: URL\('(https?://[^']+\.whl)'", text)
            )
            results["devpi"] = {
                "version": version,
                "request_timeout": a.devpi_request_timeout,
                "wheels": len(WHEELS),
                "rounds": rounds,
                "upstream_fetches_per_wheel": dict(sorted(fetches.items())),
                "cold_over_warm": round(rounds[0]["wall_s"] / rounds[1]["wall_s"], 1),
                "direct_over_warm": round(rounds[2]["wall_s"] / rounds[1]["wall_s"], 1),
            }
        if not a.skip_apt:
            proc, url, log = start_acng(work)
            procs.append(proc)
            urls = deb_urls()
            rounds = []
            for name, proxy in (
                ("apt-cacher-ng cold", url),
                ("apt-cacher-ng warm", url),
                ("direct from deb.debian.org", ""),
            ):
                wall, out, bad = run_round(deb_client, n, lambda b, p=proxy: (b, p, urls))
                rounds.append(summarize(name, wall, out, bad))
                if bad:
                    rounds[-1]["first_error"] = bad[0][3]
            incoming = collections.Counter(
                line.split("|")[4].strip().split("/")[-1]
                for line in open(log)
                if line.split("|")[1:2] == ["I"] and line.rstrip().endswith(".deb")
            )
            results["apt_cacher_ng"] = {
                "debs": len(urls),
                "rounds": rounds,
                "upstream_fetches_per_deb": dict(sorted(incoming.items())),
                "cold_over_warm": round(rounds[0]["wall_s"] / rounds[1]["wall_s"], 1),
                "direct_over_warm": round(rounds[2]["wall_s"] / rounds[1]["wall_s"], 1),
            }
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
