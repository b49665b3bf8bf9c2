"""One source per setting: the contracts between the roles' defaults, their argument_specs, the
spawner's trait defaults and the images. Each test fails when two places that must agree drift.
Static (YAML and the spawner's source), so it needs neither Ansible nor JupyterHub."""

import ast
import inspect
import re
from pathlib import Path

import pytest
import yaml

from ml_workshop import container

REPO = Path(__file__).resolve().parents[1]
ROLES = sorted(p.parent.parent for p in REPO.glob("roles/*/meta/argument_specs.yml"))


def _yaml(path):
    return yaml.safe_load(path.read_text()) or {}


def _defaults(role):
    return _yaml(role / "defaults" / "main.yml")


def _spec_options(role):
    opts = {}
    for entry in _yaml(role / "meta" / "argument_specs.yml")["argument_specs"].values():
        opts.update(entry.get("options") or {})
    return opts


def _templated(value):
    if isinstance(value, (list, tuple)):
        return any(_templated(v) for v in value)
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    return isinstance(value, str) and "{{" in value


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_role_defaults_equal_argument_specs_defaults(role):
    """Every variable in defaults/main.yml is documented in argument_specs with the same default;
    only a templated default (evaluated at run time) may leave the spec's default out."""
    defaults, opts = _defaults(role), _spec_options(role)
    problems = []
    for name, value in defaults.items():
        if name not in opts:
            problems.append(f"{name}: in defaults/main.yml but not in meta/argument_specs.yml")
        elif "default" in opts[name]:
            if opts[name]["default"] != value:
                problems.append(
                    f"{name}: defaults/main.yml {value!r} != argument_specs {opts[name]['default']!r}"
                )
        elif not _templated(value):
            problems.append(f"{name}: argument_specs documents no default, defaults/main.yml has {value!r}")
    for name, opt in opts.items():
        if "default" in opt and name not in defaults:
            problems.append(
                f"{name}: argument_specs documents default {opt['default']!r} the role does not have"
            )
    assert not problems, f"{role.name}:\n  " + "\n  ".join(problems)


def _spawner_trait_defaults():
    """{trait: default} of WorkshopSpawner's own traits, read from the source (the spawner needs
    jupyterhub/dockerspawner to import). Only literal defaults; cap_add is checked separately."""
    tree = ast.parse((REPO / "src/ml_workshop/spawner.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "WorkshopSpawner")
    out = {}
    for node in cls.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        args = [kw.value for kw in call.keywords if kw.arg == "default_value"] + list(call.args)
        for arg in args:
            try:
                out[node.targets[0].id] = ast.literal_eval(arg)
                break
            except ValueError:
                continue
    return out


def test_spawner_trait_defaults_equal_the_hub_role_defaults():
    """The hub role passes these through its JSON settings; a spawner run without them (a test,
    an operator's own config) must behave the same."""
    hub = _defaults(REPO / "roles/hub")
    traits = _spawner_trait_defaults()
    expected = {
        "npu_policy": hub["hub_npu_policy"],
        "npu_per_user": hub["hub_npu_per_user"],
        "npu_runtime": hub["hub_npu_runtime"],
        "pids_limit": hub["hub_pids_limit"],
        "shm_size": hub["hub_shm_size"],
        "ssh_port_range": tuple(hub["hub_ssh_port_range"]),
        "no_new_privileges": hub["hub_no_new_privileges"],
        "work_root": hub["hub_data_dir"] + "/student-work",
        "state_file": hub["hub_state_dir"] + "/ml-workshop-state.json",
    }
    got = {k: traits.get(k) for k in expected}
    assert got == expected
    assert list(container.DEFAULT_CAP_ADD) == hub["hub_cap_add"]
    params = inspect.signature(container.host_config).parameters
    assert params["pids_limit"].default == hub["hub_pids_limit"]
    assert params["shm_size"].default == hub["hub_shm_size"]


def test_student_uid_gid_is_one_setting():
    """images_user_uid/gid (the image's student) is the setting; the hub passes it to the
    spawner (work_uid/gid: owner of the work directories), falling back to the same default."""
    images = _defaults(REPO / "roles/images")
    hub = _defaults(REPO / "roles/hub")
    hub_vars = _yaml(REPO / "roles/hub/vars/main.yml")
    traits = _spawner_trait_defaults()
    for ids in ("uid", "gid"):
        assert f"hub_student_{ids}" not in hub
        m = re.fullmatch(r"\{\{ images_user_%s \| default\((\d+)\) \}\}" % ids, hub_vars[f"hub_work_{ids}"])
        assert m, hub_vars[f"hub_work_{ids}"]
        assert int(m.group(1)) == images[f"images_user_{ids}"] == traits[f"work_{ids}"]
    template = (REPO / "roles/hub/templates/ml-workshop.json.j2").read_text()
    assert '"work_uid": hub_work_uid | int' in template and '"work_gid": hub_work_gid | int' in template
    hubconfig = (REPO / "src/ml_workshop/hubconfig.py").read_text()
    assert (
        'ws.work_uid = int(sp["work_uid"])' in hubconfig and 'ws.work_gid = int(sp["work_gid"])' in hubconfig
    )


def _set_anywhere(variable):
    """Files outside the roles' own defaults that set `variable` (inventories, group_vars,
    playbooks, the shared molecule config)."""
    hits = []
    for path in REPO.rglob("*.yml"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in (".venv", ".git", ".test-logs") or "molecule" in rel.parts[2:3]:
            continue  # role scenarios may pass a value to a preflight-only run
        if rel.parts[:1] == ("roles",) and rel.parts[2] in ("defaults", "meta"):
            continue
        if re.search(rf"^\s*{variable}:", path.read_text(), re.MULTILINE):
            hits.append(str(rel))
    return hits


def test_one_jupyterhub_version_for_hub_and_images():
    """The hub pins JupyterHub; the student image's jupyterhub-singleuser follows that pin (the
    hub role's default file when the hub role is not in the play), and nothing sets it apart."""
    hub = _defaults(REPO / "roles/hub")
    images = _defaults(REPO / "roles/images")
    assert re.fullmatch(r"\d+\.\d+\.\d+", hub["hub_jupyterhub_version"])
    assert hub["hub_jupyterhub_version"].startswith("5."), "6.x breaks NativeAuthenticator 1.3.0"
    expr = images["images_jupyterhub_version"]
    assert "hub_jupyterhub_version | default(" in expr and "/../hub/defaults/main.yml" in expr, expr
    assert not re.search(r"\d+\.\d+\.\d+", expr), f"a second version literal: {expr}"
    assert _set_anywhere("images_jupyterhub_version") == []


def test_filters_are_used():
    """Every filter a role's plugin exposes is used by some role task, template or default."""
    texts = "\n".join(
        p.read_text()
        for p in REPO.glob("roles/**/*")
        if p.is_file() and p.suffix in (".yml", ".j2") and "molecule" not in p.parts
    )
    for plugin in REPO.glob("roles/*/filter_plugins/*.py"):
        if plugin.is_symlink():
            continue
        names = re.findall(r'^\s+"([a-z_]+)":', plugin.read_text(), re.MULTILINE)
        assert names, plugin
        unused = [n for n in names if not re.search(rf"\b{n}\b", texts)]
        assert not unused, f"{plugin.relative_to(REPO)}: unused filters {unused}"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_no_assert_repeats_argument_specs_choices(role):
    """argument_specs refuses a value outside `choices` before any task runs, so an assert that
    checks the same choices can never fire (validation lives in one place)."""
    choice_vars = [name for name, opt in _spec_options(role).items() if "choices" in opt]
    repeats = []
    for tasks in (role / "tasks").glob("*.yml"):
        for task in yaml.safe_load(tasks.read_text()) or []:
            that = (task.get("ansible.builtin.assert") or task.get("assert") or {}).get("that")
            text = " ".join(that) if isinstance(that, list) else str(that or "")
            looped = {
                str(i.get("name")) for i in task.get("loop") or [] if isinstance(i, dict) and "choices" in i
            }
            repeats += [
                f"{tasks.name}: {task.get('name')} ({v})"
                for v in choice_vars
                if that and (re.search(rf"\b{v}\s+in\s+\[", text) or v in looped)
            ]
    assert not repeats, repeats


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_preflight_runs_with_every_tag_of_its_role(role):
    """Whatever tag subset an operator runs (--tags hub, --tags configure, --tags openclaw), each
    role that runs a task runs its preflight first: the preflight carries every tag the role's
    tasks use (docs/design.md, "Role contracts"). A role's new tag must be added there too."""
    import re

    used: set[str] = set()
    for f in (role / "tasks").glob("*.yml"):
        for m in re.finditer(r"tags: \[([^\]]*)\]", f.read_text()):
            used |= {t.strip() for t in m.group(1).split(",") if t.strip()}
    used.discard("always")
    main = (role / "tasks" / "main.yml").read_text()
    preflight = [
        {t.strip() for t in m.group(1).split(",")}
        for m in re.finditer(r"tags: \[([^\]]*)\]", main)
        if "preflight" in m.group(1)
    ]
    assert preflight, f"{role.name}: no task tagged preflight in tasks/main.yml"
    for tags in preflight:
        assert tags >= used, f"{role.name}: preflight lacks tags {sorted(used - tags)}"


def test_cluster_spawner_trait_defaults_equal_the_hub_role_defaults():
    """Cluster mode's settings (hub role) and ClusterSpawner's own defaults agree."""
    tree = ast.parse((REPO / "src/ml_workshop/cluster.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ClusterSpawner")
    traits = {}
    for node in cls.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            for arg in [kw.value for kw in node.value.keywords if kw.arg == "default_value"] + list(
                node.value.args
            ):
                try:
                    traits[node.targets[0].id] = ast.literal_eval(arg)
                    break
                except ValueError:
                    continue
    hub = _defaults(REPO / "roles/hub")
    assert traits["jupyter_port_range"] == tuple(hub["hub_cluster_jupyter_port_range"])
    assert traits["work_shared"] == hub["hub_cluster_work_shared"]
