"""scripts/check-hcie-requirements: how a requirements file's lines are sorted (resolved together,
alone with --no-deps, a URL to mirror, another index) and the uv command it runs. The resolution
itself runs in scripts/test's lint phase (suite hcie-requirements: it needs the package index)."""

from pathlib import Path

import pytest
from scriptload import load_script

REPO = Path(__file__).resolve().parents[1]
check = load_script(REPO / "scripts" / "check-hcie-requirements", "check_hcie_requirements")


def test_lines_are_sorted_by_their_markers():
    r = check.parse(
        """
        # comment
        torch==2.2.0
        mindspore @ https://example.invalid/mindspore-2.3.0-cp39-cp39-linux_aarch64.whl
        transformers==4.29.0  # mlw: no-deps
        msadvisor==1.0.0  # mlw: not-on-pypi (another index)
        numpy==1.26.4  # an ordinary comment
        """
    )
    assert r.resolve == ["torch==2.2.0", "numpy==1.26.4"]
    assert r.no_deps == ["transformers==4.29.0"]
    assert r.urls == ["mindspore @ https://example.invalid/mindspore-2.3.0-cp39-cp39-linux_aarch64.whl"]
    assert r.elsewhere == ["msadvisor==1.0.0"]
    with pytest.raises(ValueError, match="pip options"):
        check.parse("-r other.txt\n")


def test_the_course_sets_as_shipped():
    env0 = check.parse((REPO / "files/hcie/course/requirements-env0.txt").read_text())
    env1 = check.parse((REPO / "files/hcie/course/requirements-env1.txt").read_text())
    assert env0.no_deps == ["transformers==4.29.0", "tokenizers==0.15.0"]  # the pair no resolver accepts
    assert not env1.no_deps and "transformers==4.39.3" in env1.resolve
    for env in (env0, env1):
        assert len(env.urls) == 1 and env.urls[0].startswith("mindspore @ https://")
        assert env.elsewhere == ["msadvisor==1.0.0"]
        assert {"torch==2.2.0", "torch-npu==2.2.0.post2", "ipykernel==6.23.1"} <= set(env.resolve)


def test_uv_is_asked_for_the_target_platform():
    argv = check.compile_argv("r.txt", "3.9", "aarch64-manylinux2014", "http://cache:3141/root/pypi/+simple/")
    assert argv[:3] == ["uv", "pip", "compile"] and argv[-1] == "r.txt"
    assert argv[argv.index("--python-version") + 1] == "3.9"
    assert argv[argv.index("--python-platform") + 1] == "aarch64-manylinux2014"
    assert argv[argv.index("--index-url") + 1] == "http://cache:3141/root/pypi/+simple/"
    assert "--native-tls" in argv and "--no-deps" not in argv
    assert "--no-deps" in check.compile_argv("r.txt", "3.9", "x", "", no_deps=True)
    assert "--index-url" not in check.compile_argv("r.txt", "3.9", "x", "")
