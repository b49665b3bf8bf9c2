import pytest

from ml_workshop.accounts import parse_user_list


def test_csv_class_list():
    rows = parse_user_list("username,password\nAlice,secret123\nbob,pw456789\n", "csv")
    assert rows == [
        {"username": "alice", "password": "secret123"},
        {"username": "bob", "password": "pw456789"},
    ]


def test_yaml_class_list():
    pytest.importorskip("yaml")
    rows = parse_user_list("- {username: carol, password: abcdefgh}\n", "yaml")
    assert rows == [{"username": "carol", "password": "abcdefgh"}]


@pytest.mark.parametrize(
    "text,msg",
    [
        ("username,password\na,x\nA,y\n", "duplicate"),
        ("username,password\n,x\n", "missing username"),
        ("username,password\nz,\n", "missing password"),
    ],
)
def test_bad_class_lists(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_user_list(text, "csv")
