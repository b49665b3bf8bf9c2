"""The harness's own helpers: the test images' recipe comes from the shared molecule config,
and the README timing table is made from scripts/test's summary."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


image_vars = _load(REPO / "tests/harness/image_recipe.py")
timing = _load(REPO / "scripts/timing-table.py")


def test_interpolation_like_molecule():
    env = {"A": "x", "EMPTY": ""}
    assert image_vars.interpolate("${A}-${B:-dflt}-${EMPTY:-e}-${NONE}", env) == "x-dflt-e-"


def test_recipe_is_the_images_block_of_the_shared_config():
    env = {"MLW_PLATFORM_IMAGE": "ml-workshop/platform:bookworm-abc", "MLW_REPO": "/r"}
    r = image_vars.recipe(REPO / ".config/molecule/config.yml", env)
    assert r["images_user_base_image"] == "ml-workshop/platform:bookworm-abc"
    assert r["images_hcie_envs"][0]["requirements"] == "/r/tests/fixtures/hcie/requirements-env0.txt"
    assert "ansible_managed" in r and "workshop_extra_ca_certificates" in r
    assert all(
        k.startswith("images_") or k in {"ansible_managed", "workshop_extra_ca_certificates"} for k in r
    )


def test_no_scenario_overrides_the_test_image_recipe():
    """One recipe: a scenario that set its own images_* build variables would render another
    hash and build inside its instance (slow), so none may, except the images scenario's
    lean variant, which it sets in converge.yml on purpose."""
    recipe_keys = set(image_vars.recipe(REPO / ".config/molecule/config.yml", {}))
    recipe_keys -= {"ansible_managed", "workshop_extra_ca_certificates"}
    for mol in list(REPO.glob("roles/*/molecule/*/molecule.yml")) + list(
        REPO.glob("molecule/*/molecule.yml")
    ):
        text = mol.read_text()
        clash = [k for k in recipe_keys if f"{k}:" in text]
        assert not clash, f"{mol} overrides the shared test image recipe: {clash}"


def test_timing_table(tmp_path):
    summary = "PASS yamllint                                 3s\nFAIL molecule hub/default   300s\nTOTAL wall time  400s\n"
    rows = timing.parse(summary)
    assert rows == [
        ("PASS", "yamllint", 3),
        ("FAIL", "molecule hub/default", 300),
        ("TOTAL", "wall time", 400),
    ]
    block = timing.table(rows, "note")
    assert "| molecule hub/default | fail | 300 s |" in block and "400 s (6.7 min)" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{timing.BEGIN}\nold\n{timing.END}\nb\n")
    timing.update(readme, block)
    text = readme.read_text()
    assert "old" not in text and text.startswith("a\n") and text.endswith("\nb\n") and "hub/default" in text


def test_thin_image_tar_is_the_bundles_thinning():
    """The harness's thin tarballs and the offline bundle's are one implementation
    (ml_workshop.bundle.thin_tarball, tested in tests/test_bundle.py)."""
    from ml_workshop import bundle

    thin = _load(REPO / "tests/harness/thin_image_tar.py")
    assert thin.thin is bundle.thin_tarball and thin.layers_to_drop is bundle.layers_to_drop
    assert thin.main(["thin_image_tar.py"]) == 2


def test_nested_docker_seed_key_volume_and_prune(tmp_path):
    """The seed of a set of images is keyed by the instance's image and the image ids (in any order);
    the engine's data directory is the read-write mount at /var/lib/docker; pruning keeps the most
    recently used seeds and drops unfinished copies."""
    import os

    seed = _load(REPO / "tests/harness/nested_docker_seed.py")
    assert seed.seed_key("sha256:p", ["sha256:a", "sha256:b"]) == seed.seed_key(
        "sha256:p", ["sha256:b", "sha256:a"]
    )
    assert seed.seed_key("sha256:p", ["sha256:a"]) != seed.seed_key("sha256:q", ["sha256:a"])
    assert seed.seed_key("sha256:p", ["sha256:a"]) != seed.seed_key("sha256:p", ["sha256:a", "sha256:b"])
    info = {
        "Mounts": [
            {"Destination": "/sys/fs/cgroup", "Source": "/sys/fs/cgroup", "RW": True},
            {"Destination": "/var/lib/docker", "Source": "/v/x/_data", "RW": True},
        ]
    }
    assert seed.engine_volume(info) == Path("/v/x/_data")
    assert (
        seed.engine_volume({"Mounts": [{"Destination": "/var/lib/docker", "Source": "/v", "RW": False}]})
        is None
    )
    assert seed.engine_volume({"Mounts": []}) is None
    for i, name in enumerate(["old", "mid", "new", "newest", "oldformat"]):
        (tmp_path / name).mkdir()
        marker = "c1\n" if name == "oldformat" else f"format {seed.FORMAT}\nc1\n"
        (tmp_path / name / "complete").write_text(marker)
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
    (tmp_path / "abc.tmp-12").mkdir()
    (tmp_path / "unfinished").mkdir()  # no marker: never counted, left alone
    gone = seed.prune(tmp_path, keep=2)
    assert sorted(gone) == ["abc.tmp-12", "mid", "old", "oldformat"]  # an older format goes, however recent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "newest", "unfinished"]
    # the copy leaves out the engine's networks (and containers, swarm, tmp)
    src, dst = tmp_path / "engine", tmp_path / "copy"
    for sub in ("image", "overlay2", "network", "containers"):
        (src / sub).mkdir(parents=True)
        (src / sub / "f").write_text(sub)
    dst.mkdir()
    seed.copy_tree(src, dst, exclude=seed.EXCLUDE)
    assert sorted(p.name for p in dst.iterdir()) == ["image", "overlay2"]
    assert (dst / "overlay2" / "f").read_text() == "overlay2"
    d = tmp_path / "vol"
    (d / "sub").mkdir(parents=True)
    (d / "f").write_text("x")
    (d / "link").symlink_to(d / "sub")
    seed.empty_dir(d)
    assert list(d.iterdir()) == []
