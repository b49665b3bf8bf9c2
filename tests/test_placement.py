"""Cluster mode's placement (src/ml_workshop/placement.py): which node and NPU ids a student's
server gets, and the refusals, for every policy."""

import pytest

from ml_workshop import messages
from ml_workshop.alloc import AllocationError
from ml_workshop.placement import Node, Placement, Running, free_npus, place, validate_cluster_settings

# the cluster: two NPU servers with 8 and 4 NPUs
A = Node("npu-a", tuple(range(8)))
B = Node("npu-b", tuple(range(4)))
NODES = [A, B]


def refused(reason, *args, **kwargs):
    with pytest.raises(AllocationError) as e:
        place(*args, **kwargs)
    assert e.value.reason == reason, (e.value.reason, str(e.value))
    assert set(e.value.params) == set(messages.PARAMS[reason])
    messages.explain(reason, **e.value.params)  # the student's words can be made from them
    return e.value


def test_exclusive_twelve_students_fill_both_nodes_and_the_thirteenth_is_refused():
    running: dict[str, Running] = {}
    for n in range(12):
        p = place("exclusive", f"s{n}", NODES, running, {})
        running[f"s{n}"] = Running(p.node, tuple(p.npus))
    on = {
        node.name: sorted(i for r in running.values() if r.node == node.name for i in r.npus)
        for node in NODES
    }
    assert on == {"npu-a": list(range(8)), "npu-b": list(range(4))}  # every NPU once
    # new students go to the node with the most free NPUs: both nodes are used from the start
    firsts = [running[f"s{n}"].node for n in range(6)]
    assert "npu-b" in firsts and "npu-a" in firsts
    e = refused(messages.NPU_FULL_CLUSTER, "exclusive", "s12", NODES, running, {})
    assert e.params == {"nodes": 2, "total": 12, "needed": 1, "free": 0}
    assert "any of the 2 servers" in str(e)


def test_a_running_server_stays_where_it_is():
    running = {"ann": Running("npu-b", (2,))}
    assert place("exclusive", "ann", NODES, running, {"ann": "npu-b"}) == Placement("npu-b", [2])
    assert place("shared", "ann", NODES, running, {}) == Placement("npu-b", [2])


def test_exclusive_keeps_a_student_on_the_node_with_her_work():
    running = {"x": Running("npu-b", (0,))}
    # npu-a has more free NPUs, but ann's work is on npu-b, which has room
    assert place("exclusive", "ann", NODES, running, {"ann": "npu-b"}) == Placement("npu-b", [1])


def test_exclusive_home_full_is_refused_naming_the_node_unless_the_work_is_shared():
    running = {f"u{i}": Running("npu-b", (i,)) for i in range(4)}
    e = refused(messages.HOME_NODE_FULL, "exclusive", "ann", NODES, running, {"ann": "npu-b"})
    assert e.params == {"node": "npu-b", "needed": 1, "free": 0}
    # with a shared work directory the student can run anywhere: the node with most free NPUs
    p = place("exclusive", "ann", NODES, running, {"ann": "npu-b"}, work_shared=True)
    assert p == Placement("npu-a", [0], moved=True)


@pytest.mark.parametrize("availability, ready", [("drain", True), ("pause", True), ("active", False)])
def test_a_drained_or_down_home_is_refused_and_new_students_go_elsewhere(availability, ready):
    nodes = [A, Node("npu-b", B.npu_ids, availability=availability, ready=ready)]
    e = refused(messages.HOME_NODE_UNAVAILABLE, "exclusive", "ann", nodes, {}, {"ann": "npu-b"})
    assert e.params == {"node": "npu-b"}
    for n in range(3):  # no new placement on the drained node
        assert place("exclusive", f"new{n}", nodes, {}, {}).node == "npu-a"


def test_a_home_node_that_left_the_cluster_is_refused():
    e = refused(messages.HOME_NODE_UNAVAILABLE, "shared", "ann", [A], {}, {"ann": "npu-b"})
    assert "gone" in str(e)


def test_no_node_takes_new_servers():
    nodes = [Node("npu-a", (0,), availability="drain"), Node("npu-b", (0,), ready=False)]
    e = refused(messages.NO_NODE, "exclusive", "ann", nodes, {}, {})
    assert "npu-a drain" in str(e) and "npu-b down" in str(e)


def test_the_image_decides_among_nodes_and_a_home_without_it_is_refused():
    nodes = [
        Node("npu-a", A.npu_ids, images=frozenset({"user:1"})),
        Node("npu-b", B.npu_ids, images=frozenset()),
    ]
    assert place("exclusive", "ann", nodes, {}, {}, image="user:1").node == "npu-a"
    e = refused(
        messages.IMAGE_MISSING_ON_NODE, "exclusive", "bob", nodes, {}, {"bob": "npu-b"}, image="user:1"
    )
    assert e.params == {"image": "user:1", "node": "npu-b"}
    e = refused(messages.IMAGE_MISSING_ON_NODE, "exclusive", "cy", nodes, {}, {}, image="hcie:1")
    assert e.params["node"] == "npu-a, npu-b"


def test_per_user_two_takes_a_node_with_two_free_at_once():
    running = {f"u{i}": Running("npu-a", (i,)) for i in range(7)} | {"v": Running("npu-b", (0,))}
    # npu-a has 1 free, npu-b 3: two at once only on npu-b
    assert place("exclusive", "ann", NODES, running, {}, per_user=2) == Placement("npu-b", [1, 2])
    running["w"] = Running("npu-b", (1, 2))
    e = refused(messages.NPU_FULL_CLUSTER, "exclusive", "ann", NODES, running, {}, per_user=2)
    assert e.params == {"nodes": 2, "total": 12, "needed": 2, "free": 2}


def test_shared_goes_home_else_to_the_least_loaded_node():
    running = {"x": Running("npu-a", tuple(range(8))), "y": Running("npu-a", tuple(range(8)))}
    assert place("shared", "ann", NODES, running, {}) == Placement("npu-b", [0, 1, 2, 3])
    assert place("shared", "bob", NODES, running, {"bob": "npu-a"}) == Placement("npu-a", list(range(8)))
    # a tie in servers: the node with more NPUs
    assert place("shared", "cy", NODES, {}, {}).node == "npu-a"


def test_static_maps_users_to_a_node_and_ids():
    static = {"ann": {"node": "npu-b", "npus": [3]}, "bob": {"node": "npu-a", "npus": ["1", 2]}}
    assert place("static", "ann", NODES, {}, {}, static_map=static) == Placement("npu-b", [3])
    assert place("static", "bob", NODES, {}, {}, static_map=static) == Placement("npu-a", [1, 2])
    # not in the map: no NPUs, where shared would put them
    assert place("static", "cy", NODES, {}, {}, static_map=static) == Placement("npu-a", [])
    # a map that moves a student away from the work is refused until the work moves
    refused(messages.HOME_NODE_UNAVAILABLE, "static", "ann", NODES, {}, {"ann": "npu-a"}, static_map=static)
    drained = [A, Node("npu-b", B.npu_ids, availability="drain")]
    refused(messages.HOME_NODE_UNAVAILABLE, "static", "ann", drained, {}, {}, static_map=static)


def test_free_npus_ignores_the_students_own_server():
    running = {"ann": Running("npu-b", (0,)), "bob": Running("npu-b", (1,))}
    assert free_npus(B, running) == [2, 3]
    assert free_npus(B, running, except_user="ann") == [0, 2, 3]


def test_unknown_policy_and_duplicate_nodes():
    with pytest.raises(AllocationError):
        place("random", "ann", NODES, {}, {})
    with pytest.raises(ValueError):
        place("exclusive", "ann", [A, A], {}, {})


def test_validate_cluster_settings_names_the_variable():
    assert validate_cluster_settings(NODES, "exclusive", 1) == []
    assert validate_cluster_settings(NODES, "exclusive", 6) == []  # npu-a has 8
    errs = validate_cluster_settings(NODES, "exclusive", 9)
    assert errs == ["hub_npu_per_user (9) is larger than the number of NPUs of every node"]
    assert validate_cluster_settings(NODES, "exclusive", 0) == [
        "hub_npu_per_user must be an integer >= 1, not 0"
    ]
    assert "hub_npu_policy" in validate_cluster_settings(NODES, "fair")[0]
    errs = validate_cluster_settings([A, Node("npu-a", (0, 0))], "shared")
    assert "node 'npu-a' is listed twice" in errs and any("more than once" in e for e in errs)
    errs = validate_cluster_settings(
        NODES,
        "static",
        static_map={
            "ann": [1],
            "bob": {"node": "npu-c"},
            "cy": {"node": "npu-b", "npus": [5]},
            "ok": {"node": "npu-a"},
        },
    )
    assert len(errs) == 3 and all("hub_npu_static_map" in e for e in errs), errs
    assert validate_cluster_settings([Node("x", (0,), availability="gone")], "shared") != []
