import pytest

from ml_workshop import alloc


def test_shared_gives_every_listed_npu():
    assert alloc.allocate_npus("shared", [3, 1, 0], "a", {"b": [0]}) == [0, 1, 3]


def test_exclusive_second_user_gets_different_npus():
    cur = {}
    cur["a"] = alloc.allocate_npus("exclusive", [0, 1, 2, 3], "a", cur, per_user=2)
    cur["b"] = alloc.allocate_npus("exclusive", [0, 1, 2, 3], "b", cur, per_user=2)
    assert cur == {"a": [0, 1], "b": [2, 3]}


def test_exclusive_none_free_is_refused_with_message():
    cur = {"a": [0, 1], "b": [2, 3]}
    with pytest.raises(alloc.AllocationError, match="No free NPU"):
        alloc.allocate_npus("exclusive", [0, 1, 2, 3], "c", cur, per_user=1)


def test_exclusive_release_makes_npus_free_again():
    cur = {"a": [0], "b": [1]}
    del cur["a"]
    assert alloc.allocate_npus("exclusive", [0, 1], "c", cur) == [0]


def test_exclusive_is_stable_for_a_user_holding_npus():
    cur = {"a": [2], "b": [0]}
    assert alloc.allocate_npus("exclusive", [0, 1, 2], "a", cur) == [2]


def test_exclusive_ignores_ids_no_longer_on_the_host():
    cur = {"a": [7]}
    assert alloc.allocate_npus("exclusive", [0, 1], "a", cur) == [0]


def test_static_map():
    m = {"a": [1, 2], "b": [9]}
    assert alloc.allocate_npus("static", [0, 1, 2], "a", {}, static_map=m) == [1, 2]
    assert alloc.allocate_npus("static", [0, 1, 2], "b", {}, static_map=m) == []
    assert alloc.allocate_npus("static", [0, 1, 2], "zz", {}, static_map=m) == []


def test_unknown_policy():
    with pytest.raises(alloc.AllocationError):
        alloc.allocate_npus("random", [0], "a", {})


@pytest.mark.parametrize(
    "args,needle",
    [
        (([0, 0, 1], "shared"), "more than once"),
        (([0, 1], "fair"), "hub_npu_policy"),
        (([0, 1], "exclusive", 3), "hub_npu_per_user"),
        (([0, 1], "exclusive", 0), "hub_npu_per_user"),
        (([0, 1], "static", 1, {"a": [5]}), "hub_npu_static_map"),
        ((["x"], "shared"), "hub_npu_ids"),
    ],
)
def test_validate_npu_settings_names_the_variable(args, needle):
    errors = alloc.validate_npu_settings(*args)
    assert errors and needle in " ".join(errors)


def test_validate_accepts_good_settings():
    assert alloc.validate_npu_settings([0, 1, 2, 3], "exclusive", 2) == []
    assert alloc.validate_npu_settings([0, 1], "static", 1, {"a": [0], "b": [1]}) == []


def test_ports_are_stable_and_skip_reserved():
    cur = {}
    cur["a"] = alloc.allocate_port("a", cur, 22222, 22230, reserved=[22223])
    cur["b"] = alloc.allocate_port("b", cur, 22222, 22230, reserved=[22223])
    assert cur == {"a": 22222, "b": 22224}
    assert alloc.allocate_port("a", cur, 22222, 22230) == 22222


def test_port_range_exhausted():
    with pytest.raises(alloc.AllocationError, match="hub_ssh_port_range"):
        alloc.allocate_port("c", {"a": 22222, "b": 22223}, 22222, 22223)


def test_id_list_round_trip_never_all():
    assert alloc.parse_id_list("0-2,5") == [0, 1, 2, 5]
    assert alloc.format_id_list([5, 0, 1]) == "0,1,5"
    assert alloc.format_id_list([]) == ""
    with pytest.raises(ValueError):
        alloc.parse_id_list("3-1")


def test_validate_takes_digit_strings_as_integers():
    """What an inventory may give; the hub's settings file converts them with `| int`."""
    assert alloc.validate_npu_settings(["0", "1"], "exclusive", "2") == []
    assert alloc.validate_npu_settings(["0", 1], "static", "1", {"a": ["1"]}) == []
    assert "more than once" in " ".join(alloc.validate_npu_settings(["0", 0], "shared"))
    assert "hub_npu_static_map" in " ".join(alloc.validate_npu_settings([0], "static", 1, {"a": ["x", 3]}))
