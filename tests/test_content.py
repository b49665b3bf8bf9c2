from ml_workshop import content

GOOD = {"url": "https://mirror.example.cn/iris.csv", "sha256": "a" * 64, "dest": "datasets/iris.csv"}


def test_good_downloads_pass():
    assert content.download_problems([]) == []
    assert content.download_problems([GOOD, dict(GOOD, dest="models/qwen/config.json")]) == []


def test_bad_downloads_are_named():
    probs = content.download_problems(
        [
            dict(GOOD, url="ftp://x/y", dest="a/1"),
            dict(GOOD, sha256="abc", dest="a/2"),
            dict(GOOD, dest="../etc/passwd"),
            dict(GOOD, dest="/srv/x"),
            dict(GOOD, dest="datasets//x"),
            dict(GOOD, extra=1, dest="a/6"),
            "datasets/iris.csv",
            GOOD,
            GOOD,
        ]
    )
    text = "\n".join(probs)
    assert "entry 1: url" in text
    assert "entry 2: sha256" in text
    assert "entry 3: dest" in text and "entry 4: dest" in text and "entry 5: dest" in text
    assert "entry 6 has unknown keys ['extra']" in text
    assert "entry 7 must be a mapping" in text
    assert "entry 9: dest 'datasets/iris.csv' is also entry 8's" in text
    assert content.download_problems({"url": "x"})[0].startswith(
        "hub_workshop_content_downloads must be a list"
    )


def test_url_with_spaces_or_without_host_is_refused():
    assert content.download_problems([dict(GOOD, url="https://x/a b")])
    assert content.download_problems([dict(GOOD, url="https:///a")])


def test_subdirs():
    assert content.subdir_problems(["lessons", "datasets", "models", "datasets/big"]) == []
    assert (
        content.subdir_problems(["../x", "", "a/./b"])
        and len(content.subdir_problems(["../x", "", "a/./b"])) == 3
    )
    assert content.subdir_problems("lessons")


def test_content_dirs_parents_first():
    dirs = content.content_dirs(
        "/srv/ml-workshop/workshop-content/",
        ["lessons", "datasets", "models"],
        [GOOD, dict(GOOD, dest="models/qwen/weights/model.bin"), dict(GOOD, dest="top.txt")],
    )
    paths = [d["path"] for d in dirs]
    base = "/srv/ml-workshop/workshop-content"
    assert paths == [
        base,
        f"{base}/datasets",
        f"{base}/lessons",
        f"{base}/models",
        f"{base}/models/qwen",
        f"{base}/models/qwen/weights",
    ]
    assert {d["mode"] for d in dirs} == {"0755"}


def test_content_dirs_owner():
    dirs = content.content_dirs("/c", ["lessons"], [], 1000, "1000")
    assert dirs == [
        {"path": "/c", "mode": "0755", "owner": "1000", "group": "1000"},
        {"path": "/c/lessons", "mode": "0755", "owner": "1000", "group": "1000"},
    ]
    assert content.content_dirs("/c", [], [])[0]["owner"] == "root"
