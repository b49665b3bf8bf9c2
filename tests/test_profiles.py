"""Profiles (ml_workshop.profiles): the checks of hub_profiles, the choice at start, the start
page's form, and the spawner's use of them (NPU rule, stable per-student profile ports, labels,
environment), without Docker."""

import asyncio
from types import SimpleNamespace

import pytest
import yaml

from ml_workshop import container, messages, profiles
from ml_workshop.store import StateStore, validate

OPENCLAW_PORT = {
    "name": "openclaw",
    "container_port": 18789,
    "range": [18789, 18791],
    "label": "Your OpenClaw gateway",
    "scheme": "ws",
}
THREE = [
    {"slug": "ml-workshop", "display_name": "ML Workshop", "image": "ml-workshop-user:latest"},
    {"slug": "hcie", "display_name": "HCIE Lab", "image": "ml-workshop-hcie"},
    {
        "slug": "openclaw",
        "display_name": "OpenClaw Showcase",
        "image": "ml-workshop-openclaw:latest",
        "npus": "none",
        "ports": [OPENCLAW_PORT],
        "env": {"MLW_OPENCLAW_GATEWAY": "yes"},
        "default_url": "/lab/tree/openclaw.md",
    },
]


def test_the_hub_roles_default_profiles_are_valid():
    """The shipped hub_profiles (templated values as the role renders them) pass the checks."""
    from pathlib import Path

    raw = yaml.safe_load((Path(__file__).parents[1] / "roles/hub/defaults/main.yml").read_text())
    shipped = raw["hub_profiles"]
    for p in shipped:
        p["image"] = p["image"].split("{{")[0] or "some-image:latest"
        for port in p.get("ports", []):
            port["container_port"] = "18789"  # as the template renders it: a string of digits
    assert profiles.profile_problems(shipped, [22222, 22999], [8000, 8081]) == []
    parsed = profiles.parse(shipped, [22222, 22999])
    assert [p.slug for p in parsed] == ["ml-workshop", "hcie", "openclaw"]
    assert parsed[2].ports[0].container_port == 18789 and not parsed[2].takes_npus


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"default": "ml-workshop-user:latest"}, "not a mapping of names to images"),
        ("ml-workshop-user", "must be a list"),
        ([{"slug": "Bad Slug", "display_name": "x", "image": "i"}], "slug must match"),
        ([THREE[0], dict(THREE[0])], "is used by another profile"),
        ([{"slug": "a", "display_name": "", "image": "i"}], "display_name must be a non-empty string"),
        ([{"slug": "a", "display_name": "A", "image": "i", "npus": "all"}], "npus must be one of"),
        ([{"slug": "a", "display_name": "A", "image": "i", "colour": "red"}], "unknown keys ['colour']"),
        ([{"slug": "a", "display_name": "A", "image": "i", "default_url": "http://evil/"}], "default_url"),
        ([{"slug": "a", "display_name": "A", "image": "i", "env": {"JUPYTERHUB_API_TOKEN": "x"}}], "may set"),
        (
            [{"slug": "a", "display_name": "A", "image": "i", "env": {"ASCEND_VISIBLE_DEVICES": "0-7"}}],
            "may set",
        ),
        ([{"slug": "a", "display_name": "A", "image": "i", "env": {"MLW_SSH_PORT": "1"}}], "may set"),
        (
            [
                {
                    "slug": "a",
                    "display_name": "A",
                    "image": "i",
                    "ports": [dict(OPENCLAW_PORT, container_port=22)],
                }
            ],
            "container_port must be a port",
        ),
        (
            [
                {
                    "slug": "a",
                    "display_name": "A",
                    "image": "i",
                    "ports": [dict(OPENCLAW_PORT, range=[22900, 23100])],
                }
            ],
            "overlaps hub_ssh_port_range 22222-22999",
        ),
        (
            [
                {
                    "slug": "a",
                    "display_name": "A",
                    "image": "i",
                    "ports": [dict(OPENCLAW_PORT, range=[8081, 8081])],
                }
            ],
            "has only ports in use on the host: [8081]",
        ),
        (
            [
                {
                    "slug": "a",
                    "display_name": "A",
                    "image": "i",
                    "ports": [dict(OPENCLAW_PORT, range=[18800, 18700])],
                }
            ],
            "range must be [first, last]",
        ),
        (
            [
                {"slug": "a", "display_name": "A", "image": "i", "ports": [OPENCLAW_PORT]},
                {
                    "slug": "b",
                    "display_name": "B",
                    "image": "j",
                    "ports": [dict(OPENCLAW_PORT, container_port=9000)],
                },
            ],
            "defined differently in another profile",
        ),
        (
            [
                {"slug": "a", "display_name": "A", "image": "i", "ports": [OPENCLAW_PORT]},
                {
                    "slug": "b",
                    "display_name": "B",
                    "image": "j",
                    "ports": [dict(OPENCLAW_PORT, name="other")],
                },
            ],
            "overlaps hub_profiles[0] (a).ports[0].range",
        ),
        (
            [dict(THREE[0], default=True), dict(THREE[1], default=True)],
            "more than one profile has default: true",
        ),
    ],
)
def test_bad_profiles_are_refused_naming_the_variable(raw, needle):
    problems = profiles.profile_problems(raw, [22222, 22999], [8000, 8081])
    assert any(needle in p for p in problems), problems
    assert all("hub_profiles" in p or "hub_" in p for p in problems), problems
    with pytest.raises(ValueError, match="hub_profiles"):
        profiles.parse(raw, [22222, 22999], [8000, 8081])


def test_parse_puts_the_default_first_and_no_profiles_means_one():
    parsed = profiles.parse([THREE[0], dict(THREE[1], default=True), THREE[2]])
    assert [p.slug for p in parsed] == ["hcie", "ml-workshop", "openclaw"]
    assert profiles.parse([]) == []
    (only,) = profiles.single("img:1")
    assert only.image == "img:1" and only.takes_npus


def test_choose_gives_the_default_without_a_choice_and_refuses_what_is_not_offered():
    parsed = profiles.parse(THREE)
    assert profiles.choose(parsed, None).slug == "ml-workshop"
    assert profiles.choose(parsed, "").slug == "ml-workshop"
    assert profiles.choose(parsed, "openclaw").slug == "openclaw"
    for bad in ("gpu-lab", "ml-workshop-user:latest", ["hcie"], {"slug": "hcie"}, 3):
        with pytest.raises(profiles.ProfileRefused) as e:
            profiles.choose(parsed, bad)
        assert e.value.reason == messages.PROFILE_UNKNOWN
        words = messages.explain(e.value.reason, **e.value.params).plain
        assert "ML Workshop, HCIE Lab, OpenClaw Showcase" in words


def test_options_form_escapes_and_greys_out_missing_images():
    hostile = dict(THREE[1], display_name="<script>alert(1)</script>", description='"><img src=x>')
    parsed = profiles.parse([THREE[0], hostile, THREE[2]])
    form = profiles.options_form(parsed, ["ml-workshop-user:latest", "ml-workshop-hcie:latest"])
    assert "<script>" not in form and "<img" not in form and "&lt;script&gt;" in form
    assert 'value="ml-workshop" checked' in form
    assert 'value="hcie">' in form  # "name" and "name:latest" are one image
    assert 'value="openclaw" disabled' in form and "ml-workshop-openclaw:latest" in form
    # the student's last choice is preselected when it can be picked
    form = profiles.options_form(parsed, ["ml-workshop-user", "ml-workshop-hcie"], chosen="hcie")
    assert 'value="hcie" checked' in form
    assert profiles.options_form(parsed[:1], []) == ""  # one profile: no form, JupyterHub starts at once


def test_options_from_form_keeps_only_the_profile():
    got = profiles.options_from_form({"profile": [" hcie "], "image": ["x"], "npu_ids": ["0-7"]})
    assert got == {"profile": "hcie"}
    assert profiles.options_from_form({}) == {}
    assert len(profiles.options_from_form({"profile": ["a" * 500]})["profile"]) == 64


def test_store_keeps_profile_ports_and_refuses_a_port_held_twice():
    ok = {"npus": {}, "ssh_ports": {"a": 22222}, "ports": {"openclaw": {"a": 18789, "b": 18790}}}
    assert validate(ok)["ports"] == {"openclaw": {"a": 18789, "b": 18790}}
    from ml_workshop.store import StateDamaged

    with pytest.raises(StateDamaged, match="held twice"):
        validate({"npus": {}, "ssh_ports": {"a": 18789}, "ports": {"openclaw": {"b": 18789}}})
    with pytest.raises(StateDamaged, match="ports must be"):
        validate({"npus": {}, "ssh_ports": {}, "ports": {"openclaw": [1]}})


def test_labels_carry_profile_ports_and_rebuild_the_state():
    lab = container.label_values("alice", [], 22222, profile="openclaw", ports={"openclaw": 18789})
    assert lab[container.LABEL_PROFILE] == "openclaw"
    found = [
        {"Labels": lab},
        {"Labels": container.label_values("bob", [1], 22223, profile="ml-workshop")},
        # a forged duplicate: the port is not given twice
        {"Labels": container.label_values("eve", [], 22224, ports={"openclaw": 18789})},
    ]
    st = container.state_from_labels(found)
    assert st["ports"] == {"openclaw": {"alice": 18789}}
    assert st["npus"] == {"bob": [1]}


def test_connection_details_show_the_profile_ports():
    state = {"ssh_ports": {"alice": 22222}, "ports": {"openclaw": {"alice": 18790}, "gone": {"alice": 1}}}
    d = container.connection_details(
        "alice", state, "ws.example", port_labels={"openclaw": ("Gateway", "ws")}
    )
    assert d["ports"] == [
        {"name": "openclaw", "label": "Gateway", "port": 18790, "address": "ws://ws.example:18790"}
    ]


# --- the spawner with profiles (no Docker) ------------------------------------------------------

pytest.importorskip("dockerspawner")


def make(tmp_path, name, running=(), images=("ml-workshop-user:latest", "ml-workshop-hcie:latest"), **kw):
    from ml_workshop.spawner import WorkshopSpawner

    user = SimpleNamespace(name=name, url=f"/user/{name}/", id=1, escaped_name=name, admin=False)
    kw.setdefault("npu_policy", "exclusive")
    kw.setdefault("profiles", THREE)
    sp = WorkshopSpawner(
        user=user,
        npu_ids=[0, 1],
        npu_access={"npu_device_pattern": "/dev/davinci{id}", "devices": [], "mounts": []},
        state_file=str(tmp_path / "state.json"),
        work_root=str(tmp_path / "work"),
        ssh_port_range=(22222, 22299),
        **kw,
    )

    async def fake_docker(method, *args, **kwargs):
        if method == "containers":
            return [{"Labels": {container.LABEL_USER: u}} for u in running]
        if method == "images":
            return [{"RepoTags": [i]} for i in images]
        raise AssertionError(method)

    sp.docker = fake_docker
    return sp


def test_openclaw_profile_takes_no_npu_and_a_stable_gateway_port(tmp_path):
    parsed = profiles.parse(THREE)
    a = make(tmp_path, "alice")
    ids, ssh = asyncio.run(a._allocate(parsed[2]))
    assert ids == [] and a.profile_ports == {"openclaw": 18789}
    a.apply_allocation(ids, ssh, profile=parsed[2])
    assert a.extra_host_config["port_bindings"][18789] == ("0.0.0.0", 18789)
    assert a.extra_create_kwargs["ports"] == {"22/tcp": {}, "18789/tcp": {}}
    # the same host name at every start (OpenClaw's lease recognises its dead owner after a restart)
    assert a.extra_create_kwargs["hostname"] == "ml-workshop-user-alice"
    assert a.environment["MLW_PORT_OPENCLAW"] == "18789"
    assert a.environment["MLW_OPENCLAW_GATEWAY"] == "yes"
    assert a.environment["ASCEND_VISIBLE_DEVICES"] == ""
    assert "devices" not in a.extra_host_config
    lab = a.extra_create_kwargs["labels"]
    assert (
        lab[container.LABEL_PROFILE] == "openclaw"
        and lab[container.LABEL_PORT_PREFIX + "openclaw"] == "18789"
    )
    # bob gets the next port; alice keeps hers at every start, whatever she runs in between
    b = make(tmp_path, "bob", running=["alice"])
    asyncio.run(b._allocate(parsed[2]))
    assert b.profile_ports == {"openclaw": 18790}
    ids, _ = asyncio.run(make(tmp_path, "alice", running=["bob"])._allocate(parsed[0]))
    assert ids == [0]  # ML Workshop: an NPU under the exclusive policy
    again = make(tmp_path, "alice", running=["bob"])
    asyncio.run(again._allocate(parsed[2]))
    assert again.profile_ports == {"openclaw": 18789}
    st = StateStore(str(tmp_path / "state.json")).load()
    assert "alice" not in st["npus"]  # OpenClaw: her NPU went back


def test_ports_in_use_on_the_host_are_skipped(tmp_path):
    """The shared OpenClaw service publishes 18789 (hub_ports_in_use): students start at 18790."""
    assert profiles.profile_problems(THREE, [22222, 22999], [18789]) == []
    sp = make(tmp_path, "alice", ssh_reserved_ports=[18789])
    asyncio.run(sp._allocate(profiles.parse(THREE)[2]))
    assert sp.profile_ports == {"openclaw": 18790}


def test_profile_ports_full_is_refused_with_the_ports_label(tmp_path):
    parsed = profiles.parse(THREE)
    for i, name in enumerate(["a", "b", "c"]):
        sp = make(tmp_path, name)
        asyncio.run(sp._allocate(parsed[2]))
        assert sp.profile_ports == {"openclaw": 18789 + i}
    from ml_workshop import alloc

    with pytest.raises(alloc.AllocationError) as e:
        asyncio.run(make(tmp_path, "d")._allocate(parsed[2]))
    assert e.value.reason == messages.PROFILE_PORTS_FULL
    assert "Your OpenClaw gateway" in messages.explain(e.value.reason, **e.value.params).plain


def test_start_page_form_lists_the_profiles_and_greys_out_the_missing(tmp_path):
    from ml_workshop.spawner import WorkshopSpawner

    sp = make(tmp_path, "alice")
    form = asyncio.run(sp.get_options_form())
    assert 'value="ml-workshop" checked' in form and 'value="openclaw" disabled' in form
    assert sp.options_from_form({"profile": ["hcie"], "image": ["x"]}) == {"profile": "hcie"}
    one = make(tmp_path, "bob", profiles=[])
    assert asyncio.run(one.get_options_form()) == ""
    assert WorkshopSpawner.profile_form is not None


def test_unknown_profile_is_refused_before_anything_is_allocated(tmp_path):
    from ml_workshop import refusals

    sp = make(tmp_path, "alice")
    sp.user_options = {"profile": "root-shell"}
    sp.hub = None
    with pytest.raises(refusals.StartRefused) as e:
        asyncio.run(sp._start(deadline=1e18))
    assert e.value.mlw_reason == messages.PROFILE_UNKNOWN and e.value.status_code == 400
    assert not (tmp_path / "state.json").exists()
    # forgotten: JupyterHub would otherwise reuse the refused options for the next start
    assert sp.user_options == {}
    committed = []
    sp.orm_spawner = SimpleNamespace(user_options={"profile": "root-shell"}, server=None, name="")
    sp.db = SimpleNamespace(commit=lambda: committed.append(1))
    sp.user_options = {"profile": "root-shell"}
    sp.profile_slug = "hcie"  # her last start's profile (the spawner's state): put back
    with pytest.raises(refusals.StartRefused):
        asyncio.run(sp._start(deadline=1e18))
    assert sp.orm_spawner.user_options == {"profile": "hcie"} == sp.user_options and committed == [1]


def test_a_docker_profile_needs_the_sites_consent():
    docker = [dict(THREE[0], slug="docker", docker=True)]
    problems = profiles.profile_problems(docker)
    assert any("set hub_student_docker: true" in p and "root" in p for p in problems), problems
    assert profiles.profile_problems(docker, student_docker=True) == []
    assert profiles.parse(docker, student_docker=True)[0].docker
    assert any(
        "docker must be true or false" in p for p in profiles.profile_problems([dict(THREE[0], docker="yes")])
    )


def test_docker_engine_container_settings(tmp_path):
    parsed = profiles.parse(
        [*THREE, dict(THREE[0], slug="docker", display_name="Docker", docker=True)], student_docker=True
    )
    sp = make(tmp_path, "olga", profiles=[], student_docker=True)
    sp.apply_allocation([], 22222, profile=parsed[3], extra_ports={})
    hc = sp.extra_host_config
    assert "SYS_ADMIN" in hc["cap_add"] and "SYS_MODULE" not in hc["cap_add"] and hc["privileged"] is False
    assert hc["security_opt"] == ["seccomp=unconfined", "apparmor=unconfined"] and hc["cgroupns"] == "host"
    assert sp.volumes["ml-workshop-docker-olga"] == {"bind": "/var/lib/docker", "mode": "rw"}
    assert sp.volumes["/sys/fs/cgroup"]["mode"] == "rw"
    assert not any("docker.sock" in v for v in sp.volumes)
    assert sp.environment["MLW_DOCKER"] == "yes"
    # the same profile without the site's consent (a hub whose setting was turned off): no engine
    off = make(tmp_path, "olga", profiles=[], student_docker=False)
    off.apply_allocation([], 22222, profile=parsed[3], extra_ports={})
    assert "SYS_ADMIN" not in off.extra_host_config["cap_add"] and "MLW_DOCKER" not in off.environment
    assert off.extra_host_config["security_opt"] == ["no-new-privileges:true"]


def test_the_last_profile_survives_a_stop_in_the_spawner_state(tmp_path):
    """JupyterHub stores get_state() after clear_state() when a server stops and builds new spawner
    objects from it: the last profile must be there for _forget_user_options."""
    sp = make(tmp_path, "olga")
    sp.profile_slug = "openclaw"
    sp.clear_state()
    state = sp.get_state()
    assert state["profile"] == "openclaw" and "npus" not in state
    fresh = make(tmp_path, "olga")
    fresh.load_state(state)
    assert fresh.profile_slug == "openclaw"
