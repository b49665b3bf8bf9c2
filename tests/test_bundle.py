"""ml_workshop.bundle: the offline bundle's collection, manifest, preflight check and devpi upload
(issue 16), with the tools (pip, apt-get, dpkg-deb, npm, docker, devpi) replaced by fakes that
answer as the real ones do. The real tools run in molecule/offline."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import urllib.error
from pathlib import Path

import pytest

from ml_workshop import bundle
from ml_workshop.bundle import BundleError, Platform

BOOKWORM = Platform.from_dict(
    {"distro": "Debian", "release": "bookworm", "arch": "x86_64", "python": "3.11.2"}
)
ARM = Platform.from_dict({"distro": "debian", "release": "bookworm", "arch": "aarch64", "python": "3.11"})


def done(argv, rc=0, stdout="", stderr=""):
    return subprocess.CompletedProcess(argv, rc, stdout, stderr)


# --- platforms and needs ----------------------------------------------------------------------


def test_platform_names_and_pip_tags():
    assert BOOKWORM.key == "debian-bookworm-amd64" and ARM.key == "debian-bookworm-arm64"
    assert BOOKWORM.python == "3.11" and BOOKWORM.python_key == "cp311-x86_64-glibc2.36"
    args = BOOKWORM.pip_args()
    tags = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    # every manylinux tag up to the release's glibc, and the legacy aliases: pip takes each literally
    assert (
        tags[0] == "manylinux_2_36_x86_64"
        and "manylinux_2_17_x86_64" in tags
        and "manylinux2014_x86_64" in tags
    )
    assert all(t.endswith("x86_64") for t in tags)
    assert args[args.index("--abi") + 1] == "cp311" and "--only-binary=:all:" in args


@pytest.mark.parametrize(
    "data, word",
    [
        ({"distro": "debian", "release": "bookworm", "arch": "x86_64"}, "python"),
        ({"distro": "debian", "release": "../etc", "arch": "x86_64", "python": "3.11"}, "release"),
        ({"distro": "debian", "release": "bookworm", "arch": "riscv64", "python": "3.11"}, "arch"),
        ({"distro": "debian", "release": "bookworm", "arch": "x86_64", "python": "2.7"}, "python"),
    ],
)
def test_a_bad_platform_is_refused_naming_the_field(data, word):
    with pytest.raises(BundleError, match=word):
        Platform.from_dict(data)


@pytest.mark.parametrize(
    "needs",
    [
        {"wheels": {"hub": ["--index-url=http://evil/"]}},
        {"wheels": {"hub": ["https://evil.example/x.whl"]}},
        {"wheels": {"../hub": ["six"]}},
        {"debs": ["rsync; rm -rf /"]},
        {"debs": "rsync"},
        {"npm": ["whistle"]},  # no version
        {"images": ["../../etc/passwd"]},
        {"rpms": ["x"]},
    ],
)
def test_hostile_or_malformed_needs_are_refused(needs):
    with pytest.raises(BundleError):
        bundle.normalise_needs(needs)


def test_needs_of_several_roles_merge_into_one_union():
    merged = bundle.merge_needs(
        [
            {"debs": ["rsync", "python3-venv"], "wheels": {"hub": ["jupyterhub==5.5.4"]}},
            {
                "debs": ["rsync"],
                "wheels": {"hub": ["setuptools==80.9.0"], "students": ["numpy"]},
                "npm": ["whistle@2.10.10"],
            },
            {
                "files": ["Ascend-hdk-910b-npu-driver_24.1.rc1_linux-x86-64.run"],
                "images": ["ml-workshop-user"],
            },
        ]
    )
    assert merged["debs"] == ["python3-venv", "rsync"]
    assert merged["wheels"] == {"hub": ["jupyterhub==5.5.4", "setuptools==80.9.0"], "students": ["numpy"]}
    assert merged["npm"] == ["whistle@2.10.10"] and merged["images"] == ["ml-workshop-user"]
    assert bundle.normalise_needs(
        {"wheels": {"s": ["torch==2.1.0; platform_machine == 'aarch64'", "jupyterlab>=4.4,<5"]}}
    )


# --- wheels -----------------------------------------------------------------------------------


class FakePip:
    """pip download/wheel as far as the bundle uses them: projects with wheels, and sdist-only ones."""

    def __init__(
        self, wheels: dict[str, str], sdist_only: set[str] = frozenset(), unknown: set[str] = frozenset()
    ):
        self.wheels, self.sdist_only, self.unknown, self.built = wheels, set(sdist_only), set(unknown), set()
        self.calls: list[list[str]] = []

    def __call__(self, argv, env=None, cwd=None):
        self.calls.append(list(argv))
        dest = Path(argv[argv.index("--wheel-dir" if "wheel" in argv else "--dest") + 1])
        reqs = [a for a in argv[argv.index("--abi") + 2 :]] if "--abi" in argv else [argv[-1]]
        if "wheel" in argv:
            name = reqs[0]
            (dest / f"{name}-1.0-py3-none-any.whl").write_text(name)
            self.built.add(name)
            return done(argv, stdout=f"Saved {dest}/{name}-1.0-py3-none-any.whl\n")
        lines = []
        for req in reqs:
            name = req.split("=")[0]
            if name in self.unknown:
                return done(argv, 1, stderr=f"ERROR: No matching distribution found for {name}\n")
            if name in self.sdist_only and name not in self.built:
                return done(argv, 1, stderr=f"ERROR: No matching distribution found for {name}\n")
            files = [self.wheels.get(name, f"{name}-1.0-py3-none-any.whl")]
            for f in files:
                (dest / f).write_text(name)
                lines.append(f"Saved {dest}/{f}")
        return done(argv, stdout="\n".join(lines) + "\n")


def test_wheels_are_downloaded_per_platform_and_recorded_per_set(tmp_path):
    pip = FakePip({"tornado": "tornado-6.5-cp39-abi3-manylinux_2_17_x86_64.whl"})
    recorded, missing = bundle.collect_wheels(tmp_path, {"hub": ["tornado==6.5", "six"]}, [BOOKWORM], run=pip)
    assert missing == []
    assert recorded == {
        "cp311-x86_64-glibc2.36": {
            "hub": {
                "requirements": ["six", "tornado==6.5"],
                "files": ["six-1.0-py3-none-any.whl", "tornado-6.5-cp39-abi3-manylinux_2_17_x86_64.whl"],
            }
        }
    }
    assert all("--only-binary=:all:" in call for call in pip.calls)


def test_an_sdist_only_project_is_built_into_a_wheel_here(tmp_path):
    pip = FakePip({}, sdist_only={"onetimepass"})
    recorded, missing = bundle.collect_wheels(tmp_path, {"hub": ["onetimepass"]}, [BOOKWORM], run=pip)
    assert missing == [] and pip.built == {"onetimepass"}
    assert recorded["cp311-x86_64-glibc2.36"]["hub"]["requirements"] == ["onetimepass"]


def test_a_requirement_without_any_distribution_is_named_and_the_rest_collected(tmp_path):
    pip = FakePip({}, unknown={"nosuchproject"})
    recorded, missing = bundle.collect_wheels(
        tmp_path, {"students": ["six", "nosuchproject"]}, [BOOKWORM], run=pip
    )
    assert recorded["cp311-x86_64-glibc2.36"]["students"]["requirements"] == ["six"]
    assert [m["name"] for m in missing] == ["students: nosuchproject"]
    assert "No matching distribution found for nosuchproject" in missing[0]["why"]


# --- debs -------------------------------------------------------------------------------------


class FakeApt:
    """apt-get update / -s install / --download-only install against a tiny archive."""

    ARCHIVE = {
        "rsync": ("3.2.7-1", "amd64", ["libpopt0"]),
        "libpopt0": ("1.19+dfsg-1", "amd64", []),
        "libcrypt1": ("1:4.4.33-2", "amd64", []),
    }

    def __init__(self, fail_update=False):
        self.fail_update = fail_update
        self.calls: list[list[str]] = []

    def __call__(self, argv, env=None, cwd=None):
        self.calls.append(list(argv))
        if argv[0] == "dpkg-deb":
            name = Path(argv[-1]).name.split("_")[0]
            return done(
                argv, stdout=f"Package: {name}\nVersion: {self.ARCHIVE[name][0]}\nArchitecture: amd64\n"
            )
        opts = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")
        if "update" in argv:
            return done(
                argv, 100 if self.fail_update else 0, stderr="E: Failed to fetch http://deb.debian.org/x\n"
            )
        wanted = argv[argv.index("install") + 1 :]
        unknown = [w for w in wanted if w not in self.ARCHIVE]
        if unknown:
            return done(argv, 100, stderr="".join(f"E: Unable to locate package {u}\n" for u in unknown))
        closure, todo = [], list(wanted)
        while todo:
            name = todo.pop()
            if name not in closure:
                closure.append(name)
                todo += self.ARCHIVE[name][2]
        if "-s" in argv:
            return done(
                argv,
                stdout="".join(
                    f"Inst {n} ({self.ARCHIVE[n][0]} Debian:12/stable [{self.ARCHIVE[n][1]}])\n"
                    for n in closure
                ),
            )
        archives = Path(opts["Dir::Cache"]) / "archives"
        for n in closure:
            (archives / bundle.deb_filename(n, self.ARCHIVE[n][0], self.ARCHIVE[n][1])).write_bytes(
                n.encode()
            )
        return done(argv)


def test_debs_are_the_closure_as_a_flat_repository_tarball(tmp_path, monkeypatch):
    monkeypatch.setitem(bundle.KEYRINGS, "debian", str(tmp_path / "keyring.gpg"))
    (tmp_path / "keyring.gpg").write_text("k")
    apt = FakeApt()
    got, missing = bundle.collect_debs(
        tmp_path / "out", ["rsync", "libcrypt1", "nosuchpkg"], BOOKWORM, tmp_path / "work", run=apt
    )
    assert [m["name"] for m in missing] == ["nosuchpkg"] and "no such package" in missing[0]["why"]
    assert got["requested"] == ["libcrypt1", "rsync"] and got["tar"] == "apt/debian-bookworm-amd64.tar"
    assert (
        "libcrypt1_1%3a4.4.33-2_amd64.deb" in got["files"]
        and "libpopt0_1.19+dfsg-1_amd64.deb" in got["files"]
    )
    with tarfile.open(tmp_path / "out" / got["tar"]) as tar:
        members = {m.name: m for m in tar.getmembers()}
        packages = tar.extractfile("debian-bookworm-amd64/Packages").read().decode()
    assert all(m.uid == 0 and m.uname == "root" for m in members.values())
    assert (
        "Package: rsync\n" in packages
        and "Filename: ./rsync_3.2.7-1_amd64.deb\n" in packages
        and "SHA256: " in packages
    )
    # the nothing-is-installed database and the release's signed sources
    sources = (tmp_path / "work/apt/debian-bookworm-amd64/sources.list").read_text()
    assert "bookworm-security main" in sources and "signed-by=" in sources
    assert all("APT::Architecture=amd64" in c for c in apt.calls if c[0] == "apt-get")


def test_debs_for_an_rpm_distro_or_an_unreachable_mirror_are_reported_not_faked(tmp_path, monkeypatch):
    euler = Platform.from_dict(
        {"distro": "openEuler", "release": "22.03", "arch": "aarch64", "python": "3.9"}
    )
    got, missing = bundle.collect_debs(tmp_path, ["rsync"], euler, tmp_path, run=FakeApt())
    assert got == {} and "rpm" in missing[0]["why"]
    monkeypatch.setitem(bundle.KEYRINGS, "debian", str(tmp_path / "keyring.gpg"))
    (tmp_path / "keyring.gpg").write_text("k")
    got, missing = bundle.collect_debs(tmp_path, ["rsync"], BOOKWORM, tmp_path, run=FakeApt(fail_update=True))
    assert got == {} and "apt-get update" in missing[0]["why"] and "Failed to fetch" in missing[0]["why"]


# --- images, files, manifest, the preflight's question ----------------------------------------


def test_images_from_a_harness_cache_keep_thin_tarballs_only_with_their_base(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "user.tar").write_bytes(b"layers")
    (cache / "hcie.tar").write_bytes(b"own layers")
    (cache / "manifest.json").write_text(
        json.dumps(
            {
                "ml-workshop-user": {
                    "tarball": str(cache / "user.tar"),
                    "id": "sha256:aa",
                    "ref": "ml-workshop-user:latest",
                    "base": "",
                },
                "ml-workshop-hcie": {
                    "tarball": str(cache / "hcie.tar"),
                    "id": "sha256:bb",
                    "base": "ml-workshop-user",
                },
            }
        )
    )
    got, missing = bundle.collect_images(
        tmp_path / "out", ["ml-workshop-user", "ml-workshop-hcie", "ml-workshop-x"], source=cache
    )
    assert got["ml-workshop-user"] == {
        "file": "images/ml-workshop-user.tar",
        "id": "sha256:aa",
        "ref": "ml-workshop-user:latest",
        "base": "",
    }
    assert got["ml-workshop-hcie"]["base"] == "ml-workshop-user"
    assert (tmp_path / "out/images/ml-workshop-user.tar").read_bytes() == b"layers"
    assert [m["name"] for m in missing] == ["ml-workshop-x"]
    # without the student image in the bundle, the thin HCIE tarball is no image at all
    got, missing = bundle.collect_images(tmp_path / "out2", ["ml-workshop-hcie"], source=cache)
    assert got == {} and "which is not in the bundle" in missing[0]["why"]


def _docker_save_tar(path: Path, layers: dict[str, str]) -> None:
    """A docker-save layout: manifest.json, the config with the diff ids, a directory per layer."""
    config = {"rootfs": {"type": "layers", "diff_ids": list(layers)}}
    files = {
        "manifest.json": json.dumps(
            [{"Config": "cfg.json", "RepoTags": ["x:1"], "Layers": [f"{d[7:]}/layer.tar" for d in layers]}]
        ),
        "cfg.json": json.dumps(config),
    }
    for diff, body in layers.items():
        files[f"{diff[7:]}/layer.tar"] = body
        files[f"{diff[7:]}/json"] = "{}"
    with tarfile.open(path, "w") as tar:
        for diff in layers:
            info = tarfile.TarInfo(diff[7:])
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, body in files.items():
            data = body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_images_from_the_engine_are_saved_and_those_built_on_another_kept_thin(tmp_path):
    images = {
        "ml-workshop-user:latest": {"sha256:base": "BASE" * 100, "sha256:user": "USER"},
        "ml-workshop-hcie:latest": {
            "sha256:base": "BASE" * 100,
            "sha256:user": "USER",
            "sha256:hcie": "HCIE",
        },
    }

    def docker(argv, env=None, cwd=None):
        ref = argv[-1]
        if argv[1] == "image":
            if ref not in images:
                return done(argv, 1, stderr="No such image")
            return done(argv, stdout=f"sha256:id-{ref.split(':')[0]} {json.dumps(list(images[ref]))}\n")
        _docker_save_tar(Path(argv[argv.index("--output") + 1]), images[ref])
        return done(argv)

    got, missing = bundle.collect_images(
        tmp_path, ["ml-workshop-hcie", "ml-workshop-openclaw", "ml-workshop-user"], run=docker
    )
    assert got["ml-workshop-user"]["base"] == "" and got["ml-workshop-hcie"]["base"] == "ml-workshop-user"
    assert got["ml-workshop-hcie"]["id"] == "sha256:id-ml-workshop-hcie"
    with tarfile.open(tmp_path / "images/ml-workshop-hcie.tar") as tar:
        names = set(tar.getnames())
    assert "hcie/layer.tar" in names and "base/layer.tar" not in names and "user/layer.tar" not in names
    with tarfile.open(tmp_path / "images/ml-workshop-user.tar") as tar:
        assert {"base/layer.tar", "user/layer.tar"} <= set(tar.getnames())
    assert (
        missing[0]["name"] == "ml-workshop-openclaw"
        and "not in this machine's Docker engine" in missing[0]["why"]
    )


def test_thin_tarball_drops_only_the_base_images_layer_files(tmp_path):
    path = tmp_path / "img.tar"
    _docker_save_tar(path, {"sha256:base": "BASE" * 1000, "sha256:own": "OWN"})
    dropped, size = bundle.thin_tarball(path, {"sha256:base"})
    assert dropped == 2 and size == 4002  # base/layer.tar and base/json
    with tarfile.open(path) as tar:
        assert set(tar.getnames()) == {
            "base",
            "own",
            "manifest.json",
            "cfg.json",
            "own/layer.tar",
            "own/json",
        }
        assert tar.extractfile("own/layer.tar").read() == b"OWN"
    config = {"rootfs": {"diff_ids": ["sha256:a", "sha256:b"]}}
    with pytest.raises(ValueError, match="2 diff ids but 1 layers"):
        bundle.layers_to_drop(
            [{"Config": "cfg.json", "Layers": ["a/layer.tar"]}], {"cfg.json": config}, set()
        )


def test_the_base_of_an_image_is_the_longest_layer_prefix():
    layers = {"u": ["a", "b"], "h": ["a", "b", "c"], "x": ["a"], "o": ["z", "b", "c"]}
    assert bundle.base_of(layers, "h") == "u" and bundle.base_of(layers, "u") == "x"
    assert bundle.base_of(layers, "o") == "" and bundle.base_of(layers, "x") == ""


def _bundle(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    (out / "images").mkdir(parents=True)
    (out / "images/ml-workshop-user.tar").write_bytes(b"image")
    contents = {
        "wheels": {BOOKWORM.python_key: {"hub": {"requirements": ["jupyterhub==5.5.4"], "files": []}}},
        "debs": {BOOKWORM.key: {"requested": ["rsync", "docker.io"]}},
        "npm": {"requested": ["configurable-http-proxy@5.3.0"]},
        "images": {
            "ml-workshop-user": {"file": "images/ml-workshop-user.tar", "id": "sha256:aa", "base": ""},
            "ml-workshop-hcie": {
                "file": "images/ml-workshop-hcie.tar",
                "id": "sha256:bb",
                "base": "ml-workshop-user",
            },
        },
        "files": {"names": ["Ascend-hdk-driver.run"]},
    }
    bundle.write_manifest(out, bundle.empty_needs(), [BOOKWORM], contents, [])
    return out


def test_the_preflight_names_each_missing_item_and_nothing_else(tmp_path):
    manifest = bundle.load_manifest(_bundle(tmp_path))
    ok = {
        "debs": ["rsync"],
        "wheels": {"hub": ["jupyterhub==5.5.4"]},
        "npm": ["configurable-http-proxy@5.3.0"],
        "images": ["ml-workshop-user"],
    }
    assert bundle.missing(manifest, ok, BOOKWORM) == []
    lacking = {
        "debs": ["rsync", "apt-cacher-ng"],
        "wheels": {"hub": ["jupyterhub==5.5.5"]},  # a pin changed after the bundle was made
        "npm": ["whistle@2.10.10"],
        "images": ["ml-workshop-openclaw"],
        "files": ["Ascend-cann-toolkit.run"],
    }
    assert bundle.missing(manifest, lacking, BOOKWORM) == [
        "wheels: jupyterhub==5.5.5 (set hub, cp311-x86_64-glibc2.36)",
        "debs: apt-cacher-ng (debian-bookworm-amd64)",
        "npm: whistle@2.10.10",
        "images: ml-workshop-openclaw",
        "files: Ascend-cann-toolkit.run (Ascend packages)",
    ]
    # a host that loads the HCIE image, kept as layers on the student image, without the student image
    assert bundle.missing(manifest, {"images": ["ml-workshop-hcie"]}, BOOKWORM) == [
        "images: ml-workshop-hcie is kept in the bundle as layers on ml-workshop-user, which this host does not load (enable it too)"
    ]
    # a host of a platform the bundle was not made for
    lines = bundle.missing(manifest, ok, ARM)
    assert (
        lines[0].startswith("wheels for cp311-aarch64") and "debs for debian-bookworm-arm64: none" in lines[1]
    )


def test_check_and_verify_on_the_command_line(tmp_path, capsys):
    out = _bundle(tmp_path)
    platform = json.dumps(BOOKWORM.as_dict())
    assert (
        bundle.main(["check", str(out), "--needs", json.dumps({"debs": ["rsync"]}), "--platform", platform])
        == 0
    )
    assert (
        bundle.main(["check", str(out), "--needs", json.dumps({"debs": ["cowsay"]}), "--platform", platform])
        == 1
    )
    assert "debs: cowsay (debian-bookworm-amd64)" in capsys.readouterr().out
    assert bundle.main(["verify", str(out)]) == 0
    (out / "images/ml-workshop-user.tar").write_bytes(b"tampered")
    assert bundle.main(["verify", str(out)]) == 1
    assert "images/ml-workshop-user.tar: differs from the manifest" in capsys.readouterr().out
    assert bundle.main(["check", str(tmp_path / "nothing"), "--needs", "{}", "--platform", platform]) == 2
    assert "not a bundle" in capsys.readouterr().err


# --- devpi ------------------------------------------------------------------------------------


class FakeDevpi:
    """devpi-server's answers to the calls devpi_upload makes (index JSON, simple pages, upload)."""

    def __init__(self, has_index=False, files=()):
        self.has_index, self.files = has_index, set(files)
        self.requests: list[tuple[str, str, dict]] = []

    def __call__(self, request, timeout=None):
        method, url = request.get_method(), request.full_url
        self.requests.append((method, url, dict(request.header_items())))
        path = url.split("3141", 1)[1]

        def answer(status, body=b""):
            if status >= 400:
                raise urllib.error.HTTPError(url, status, "x", {}, io.BytesIO(body))
            response = io.BytesIO(body)
            response.status = status
            response.__enter__ = lambda *_: response  # type: ignore[method-assign]
            return _Ctx(response)

        if method == "GET" and path == "/root/bundle":
            return answer(200 if self.has_index else 404, b"{}")
        if method == "PUT":
            self.has_index = True
            return answer(201)
        if method == "GET" and path == "/root/bundle/+simple/":
            projects = {f.split("-")[0] for f in self.files}
            return answer(200, "".join(f'<a href="{p}/">{p}</a>' for p in projects).encode())
        if method == "GET" and path.startswith("/root/bundle/+simple/"):
            project = path.split("/")[-2]
            return answer(
                200, "".join(f'<a href="../x">{f}</a>' for f in self.files if f.startswith(project)).encode()
            )
        if method == "POST":
            body = request.data
            name = body.split(b'filename="')[1].split(b'"')[0].decode()
            if name in self.files:
                return answer(409)
            self.files.add(name)
            return answer(200)
        raise AssertionError(f"unexpected {method} {url}")


class _Ctx:
    def __init__(self, response):
        self.response = response
        self.status = response.status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self):
        return self.response.read()


def test_devpi_upload_makes_the_index_and_uploads_only_what_it_lacks(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in (
        "six-1.17.0-py2.py3-none-any.whl",
        "pyjokes-0.8.3-py3-none-any.whl",
        "onetimepass-1.0.1.tar.gz",
    ):
        (wheels / name).write_bytes(b"dist")
    devpi = FakeDevpi()
    counts = bundle.devpi_upload(
        "http://127.0.0.1:3141", "root/bundle", "root", "s3cret", wheels, opener=devpi
    )
    assert counts == {"uploaded": 3, "present": 0}
    put = [r for r in devpi.requests if r[0] == "PUT"]
    assert len(put) == 1 and put[0][2]["X-devpi-auth"] == "cm9vdDpzM2NyZXQ="  # base64("root:s3cret")
    again = bundle.devpi_upload(
        "http://127.0.0.1:3141", "root/bundle", "root", "s3cret", wheels, opener=devpi
    )
    assert again == {"uploaded": 0, "present": 3}
    assert not [r for r in devpi.requests[len(put) + 7 :] if r[0] in ("PUT", "POST")]


def test_distribution_names_and_versions_of_files():
    assert bundle.dist_name_version("jupyterhub_nativeauthenticator-1.3.0-py3-none-any.whl") == (
        "jupyterhub_nativeauthenticator",
        "1.3.0",
    )
    assert bundle.dist_name_version("onetimepass-1.0.1.tar.gz") == ("onetimepass", "1.0.1")
    with pytest.raises(BundleError):
        bundle.dist_name_version("evil.sh")


def test_pack_makes_a_root_owned_sorted_tarball_and_removes_the_source(tmp_path):
    src = tmp_path / "wheels"
    src.mkdir()
    (src / "b.whl").write_text("b")
    (src / "a.whl").write_text("a")
    bundle.pack(src, tmp_path / "wheels.tar", "wheels")
    with tarfile.open(tmp_path / "wheels.tar") as tar:
        assert tar.getnames() == ["wheels", "wheels/a.whl", "wheels/b.whl"]
        assert {m.uid for m in tar.getmembers()} == {0}
    assert not src.exists()
