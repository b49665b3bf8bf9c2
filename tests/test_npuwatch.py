"""ml_workshop.npuwatch and npu.parse_npu_smi_chips: the organisers' NPU page and metrics."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from ml_workshop import npu, npuwatch

# 910B2 as printed by npu-smi 25.0.rc1 (public issue reports): HBM used without a space before "/".
SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 25.0.rc1.1               Version: 25.0.rc1.1                                           |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B2               | OK            | 95.5        43                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3414 / 65536         |
+===========================+===============+====================================================+
| 1     910B2               | Warning       | 95.7        44                0    / 0             |
| 0                         | 0000:01:00.0  | 37          0    / 0          61258/ 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 1       0                 | 12345         | python3                  | 57000                   |
+===========================+===============+====================================================+
"""

# A card with two chips (Chip and Phy-ID columns; the second chip's power is "-").
SMI_TWO_CHIPS = """\
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip  Phy-ID              | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 4     Ascend910           | OK            | 170.7       49                0    / 0             |
| 0     8                   | 0000:8D:00.0  | 10          0    / 0          51255/ 65536         |
+------------------------------------------------------------------------------------------------+
| 4     Ascend910           | OK            | -           51                0    / 0             |
| 1     9                   | 0000:8F:00.0  | 30          0    / 0          45292/ 65536         |
+===========================+===============+====================================================+
"""

# 310P: no HBM column, power NA.
SMI_310P = """\
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)                       |
+===========================+===============+====================================================+
| 0     310P3               | OK            | NA          42                0    / 0             |
| 0     0                   | 0000:01:00.0  | 0           1486 / 44280                           |
+===========================+===============+====================================================+
"""


def test_chips_of_a_910b_table():
    chips = npu.parse_npu_smi_chips(SMI_910B)
    assert [(c["npu"], c["chip"], c["health"]) for c in chips] == [(0, 0, "OK"), (1, 0, "Warning")]
    c = chips[1]
    assert (c["power_w"], c["temp_c"], c["aicore_percent"]) == (95.7, 44.0, 37.0)
    assert (c["hbm_used_mb"], c["hbm_total_mb"]) == (61258, 65536)
    assert (c["memory_used_mb"], c["memory_total_mb"]) == (0, 0)
    assert c["bus_id"] == "0000:01:00.0" and c["name"] == "910B2"


def test_chips_of_a_two_chip_card_and_a_310p():
    a3 = npu.parse_npu_smi_chips(SMI_TWO_CHIPS)
    assert [(c["npu"], c["chip"], c["phy_id"], c["power_w"]) for c in a3] == [
        (4, 0, 8, 170.7),
        (4, 1, 9, None),
    ]
    p = npu.parse_npu_smi_chips(SMI_310P)
    assert len(p) == 1 and p[0]["power_w"] is None and p[0]["hbm_total_mb"] is None
    assert (p[0]["memory_used_mb"], p[0]["memory_total_mb"]) == (1486, 44280)


def test_chips_of_nothing():
    assert npu.parse_npu_smi_chips("") == []
    assert npu.parse_npu_smi_chips("dcmi module initialize failed. ret is -8005") == []


def container(
    name,
    *,
    user=None,
    npus="",
    devices=(),
    env=(),
    profile="",
    running=True,
    started="2026-11-29T10:00:00.123Z",
):
    labels = {}
    if user:
        labels = {"ml-workshop.user": user, "ml-workshop.npus": npus, "ml-workshop.profile": profile}
    return {
        "Name": "/" + name,
        "State": {"Running": running, "StartedAt": started},
        "Config": {"Labels": labels, "Env": list(env)},
        "HostConfig": {"Devices": [{"PathOnHost": d, "PathInContainer": d} for d in devices]},
    }


def test_who_holds_what_from_labels_devices_and_the_runtime_variable():
    student = container(
        "ml-workshop-user-alice", user="alice", npus="1", devices=["/dev/davinci1", "/dev/davinci_manager"]
    )
    service = container("ml-workshop-hcie", devices=["/dev/davinci6", "/dev/davinci7"])
    by_hand = container("bench", env=["PATH=/bin", "ASCEND_VISIBLE_DEVICES=2-3"])
    everything = container("greedy", env=["ASCEND_VISIBLE_DEVICES=all"])  # not a list of ids: nothing
    assert npuwatch.container_npus(student) == [1]
    assert npuwatch.container_npus(service) == [6, 7]
    assert npuwatch.container_npus(by_hand) == [2, 3]
    assert npuwatch.container_npus(everything) == []
    assert npuwatch.holder(student) == {
        "kind": "student",
        "name": "alice",
        "container": "ml-workshop-user-alice",
        "profile": "",
        "since": "2026-11-29T10:00:00Z",
    }
    assert npuwatch.holder(service)["kind"] == "service"
    assert npuwatch.holder(by_hand)["kind"] == "container"


def test_shared_npus_list_every_student_and_stopped_containers_hold_nothing():
    held = npuwatch.holders(
        [
            container("ml-workshop-user-bob", user="bob", npus="0,1"),
            container("ml-workshop-user-alice", user="alice", npus="0,1"),
            container("ml-workshop-hcie", devices=["/dev/davinci1"]),
            container("ml-workshop-user-carol", user="carol", npus="0", running=False),
        ]
    )
    assert [h["name"] for h in held[0]] == ["alice", "bob"]
    assert [h["name"] for h in held[1]] == ["alice", "bob", "ml-workshop-hcie"]  # students first


def snap(**kw):
    args = dict(
        server="npu1",
        policy="exclusive",
        student_ids=[0, 1, 2],
        smi_text=SMI_910B,
        smi_error="",
        inspects=[container("ml-workshop-user-alice", user="alice", npus="1", profile="hcie")],
        taken_at=1.0,
    )
    args.update(kw)
    return npuwatch.snapshot(**args)


def test_snapshot_lists_listed_configured_and_held_npus():
    s = snap(inspects=[container("bench", devices=["/dev/davinci5"])])
    assert [n["npu"] for n in s["npus"]] == [0, 1, 2, 5]
    by = {n["npu"]: n for n in s["npus"]}
    assert by[0]["healthy"] and not by[1]["healthy"] and by[1]["health"] == "Warning"
    assert not by[2]["listed"] and not by[2]["healthy"]  # hub_npu_ids names it, npu-smi does not
    assert not by[5]["for_students"] and by[5]["holders"][0]["name"] == "bench"
    assert s["npu_smi_ok"]


def test_rows_read_like_the_page():
    rows = {r["npu"]: r for r in npuwatch.rows(snap())}
    assert rows[1]["aicore_percent"] == 37.0 and rows[1]["hbm_used_mb"] == 61258
    assert rows[1]["holders"][0]["name"] == "alice" and rows[1]["holders"][0]["profile"] == "hcie"
    assert rows[2]["health"] == "not listed by npu-smi"
    down = {r["npu"]: r for r in npuwatch.rows(snap(smi_text=None, smi_error="no npu-smi"))}
    assert down[1]["health"] == "unknown" and down[1]["aicore_percent"] is None
    two = npuwatch.rows(snap(smi_text=SMI_TWO_CHIPS, student_ids=[4], inspects=[]))
    assert (
        two[0]["hbm_used_mb"] == 51255 + 45292
        and two[0]["aicore_percent"] == 20.0
        and two[0]["power_w"] == 170.7
    )


def families(s):
    return {name: samples for name, _, samples in npuwatch.metric_families(s)}


def test_metric_families():
    f = families(snap())
    assert f["ml_workshop_npu_smi_up"] == [({}, 1.0)]
    assert ({"npu": "1", "chip": "0", "name": "910B2"}, 0.0) in f["ml_workshop_npu_healthy"]
    assert ({"npu": "1", "chip": "0", "name": "910B2"}, 61258.0 * 1024 * 1024) in f[
        "ml_workshop_npu_hbm_used_bytes"
    ]
    assert ({"npu": "1", "chip": "0", "name": "910B2"}, 37.0) in f[
        "ml_workshop_npu_aicore_utilization_percent"
    ]
    assert f["ml_workshop_npu_allocated"] == [({"npu": "1", "holder": "alice", "kind": "student"}, 1.0)]
    assert f["ml_workshop_user_npus"] == [({"user": "alice"}, 1.0)]
    assert ({"npu": "2"}, 1.0) in f["ml_workshop_npu_for_students"]


def test_metric_families_before_the_first_look_and_without_npu_smi():
    assert families(None) == {"ml_workshop_npu_smi_up": [({}, 0.0)]}
    f = families(snap(smi_text=None, smi_error="gone"))
    assert f["ml_workshop_npu_smi_up"] == [({}, 0.0)]
    assert "ml_workshop_npu_healthy" not in f  # no chip numbers without npu-smi
    assert f["ml_workshop_user_npus"] == [({"user": "alice"}, 1.0)]  # holders still known


def fake_npu_smi(tmp_path, body: str, rc: int = 0) -> str:
    path = tmp_path / "npu-smi"
    (tmp_path / "table").write_text(body)
    path.write_text(f"#!/bin/sh\ncat {tmp_path / 'table'}\nexit {rc}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_watch_refresh_reads_npu_smi_and_the_containers(tmp_path, monkeypatch):
    w = npuwatch.NpuWatch(
        server="npu1", policy="shared", student_ids=[0, 1], npu_smi=fake_npu_smi(tmp_path, SMI_910B)
    )
    monkeypatch.setattr(
        w, "_inspect_running", lambda: [container("ml-workshop-user-bob", user="bob", npus="0,1")]
    )
    s = asyncio.run(w.refresh())
    assert s["npu_smi_ok"] and [n["holders"][0]["name"] for n in s["npus"]] == ["bob", "bob"]
    assert w.last is s
    again = asyncio.run(w.refresh(max_age=3600))  # young enough: no second look
    assert again is s


def test_watch_without_npu_smi_or_with_a_failing_one(tmp_path, monkeypatch):
    w = npuwatch.NpuWatch(server="npu1", policy="shared", student_ids=[0], npu_smi="")
    monkeypatch.setattr(w, "_inspect_running", lambda: [])
    s = asyncio.run(w.refresh())
    assert not s["npu_smi_ok"] and "no npu-smi" in s["npu_smi_error"]
    w.npu_smi = fake_npu_smi(tmp_path, "dcmi module initialize failed. ret is -8005\n", rc=1)
    s = asyncio.run(w.refresh())
    assert not s["npu_smi_ok"] and "exited 1" in s["npu_smi_error"] and "-8005" in s["npu_smi_error"]

    def engine_down():
        raise ConnectionError("no engine")

    monkeypatch.setattr(w, "_inspect_running", engine_down)
    w.npu_smi = fake_npu_smi(tmp_path, SMI_910B)
    s = asyncio.run(w.refresh())  # the NPUs are still shown, without holders
    assert s["npu_smi_ok"] and all(not n["holders"] for n in s["npus"])


def test_collector_speaks_prometheus(tmp_path, monkeypatch):
    prometheus_client = pytest.importorskip("prometheus_client")
    w = npuwatch.NpuWatch(
        server="npu1", policy="exclusive", student_ids=[0, 1], npu_smi=fake_npu_smi(tmp_path, SMI_910B)
    )
    monkeypatch.setattr(
        w, "_inspect_running", lambda: [container("ml-workshop-user-alice", user="alice", npus="1")]
    )
    registry = prometheus_client.CollectorRegistry()
    registry.register(npuwatch.NpuCollector(w))
    text = prometheus_client.generate_latest(registry).decode()
    assert "ml_workshop_npu_smi_up 0.0" in text  # before the first look
    asyncio.run(w.refresh())
    text = prometheus_client.generate_latest(registry).decode()
    assert 'ml_workshop_user_npus{user="alice"} 1.0' in text
    assert 'ml_workshop_npu_aicore_utilization_percent{chip="0",name="910B2",npu="1"} 37.0' in text
    assert 'ml_workshop_npu_allocated{holder="alice",kind="student",npu="1"} 1.0' in text


def test_the_page_template_renders_every_column(tmp_path):
    jinja2 = pytest.importorskip("jinja2")
    here = os.path.dirname(__file__)
    src = open(os.path.join(here, "..", "roles", "hub", "templates", "pages", "npus.html.j2")).read()
    body = src.split("{% raw %}", 1)[1].rsplit("{% endraw %}", 1)[0]
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"npus.html": body, "page.html": "{% block main %}{% endblock %}"}),
        autoescape=True,
    )
    s = snap(
        inspects=[
            container("ml-workshop-user-alice", user="alice", npus="1", profile="hcie"),
            container("ml-workshop-hcie", devices=["/dev/davinci0"]),
        ]
    )
    html = env.get_template("npus.html").render(snap=s, rows=npuwatch.rows(s), taken="now", base_url="/hub/")
    assert 'data-npu="1"' in html and "61258 / 65536" in html and "37.0 %" in html
    assert 'data-name="alice"' in html and "(hcie)" in html and 'data-kind="service"' in html
    assert '<span class="mlw-free">free</span>' in html  # NPU 2


def test_the_watch_survives_the_configuration_deepcopy_with_its_task_running():
    """traitlets deep-copies JupyterHub's configuration (extra_handlers' arguments) after the
    configuration file ran inside the hub's event loop, where the watch started its task."""
    import copy

    async def main():
        w = npuwatch.NpuWatch(server="npu1", policy="shared", student_ids=[], npu_smi="")
        w._inspect_running = lambda: []  # type: ignore[method-assign]
        w.ensure_started()
        assert w._task is not None
        handlers = [(r"/npus", object, {"watch": w})]
        copied = copy.deepcopy(handlers)
        assert copied[0][2]["watch"] is w
        w._task.cancel()

    asyncio.run(main())
