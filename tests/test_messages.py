"""The students' words for a refused or failed start (src/ml_workshop/messages.py)."""

import re

import pytest

from ml_workshop import messages

SAMPLE = {
    "total": 4,
    "needed": 1,
    "free": 0,
    "image": "ml-workshop-user:latest",
    "profile": "gpu-lab",
    "offered": "ML Workshop, HCIE Lab, OpenClaw Showcase",
    "port": "OpenClaw gateway",
    "name": "_bob",
    "seconds": 60,
    "code": 3,
    "nodes": 2,
    "node": "npu-b",
}
INTERNAL = re.compile(r"/var/lib|/etc/jupyterhub|hub_[a-z_]+|Traceback|docker|HTTP \d{3}")


def test_every_catalog_has_every_reason_with_its_placeholders():
    assert messages.CATALOGS["en"] is messages.EN
    for lang, cat in messages.CATALOGS.items():
        assert set(cat.reasons) == set(messages.REASONS), lang
        for reason, entry in cat.reasons.items():
            used = messages.placeholders(entry.text) | messages.placeholders(entry.next)
            assert used <= set(messages.PARAMS[reason]), (lang, reason, used)
            # the same parameters in every language: a translation must not drop a number
            en = messages.EN.reasons[reason]
            assert used == messages.placeholders(en.text) | messages.placeholders(en.next), (lang, reason)
        assert cat.title and cat.retry and cat.log_heading


@pytest.mark.parametrize("reason", messages.REASONS)
def test_each_reason_says_what_happened_and_what_to_do_in_plain_words(reason):
    params = {k: SAMPLE[k] for k in messages.PARAMS[reason]}
    e = messages.explain(reason, **params)
    assert e.reason == reason
    assert e.text.endswith(".") and e.next.endswith(".")
    assert "{" not in e.plain and "}" not in e.plain
    assert re.search(r"(?i)try again|tell the organisers|ask the organisers", e.next)
    assert not INTERNAL.search(e.plain), e.plain


def test_npu_full_keeps_the_documented_wording():
    e = messages.explain(messages.NPU_FULL, total=8, needed=4, free=0)
    assert e.plain == (
        "No free NPU on this server: all 8 NPUs are in use by other students' servers "
        "(4 needed, 0 free). Please try again later or ask the organisers."
    )


def test_image_missing_names_the_environment_image():
    e = messages.explain(messages.IMAGE_MISSING, image="course-a:2026")
    assert e.text == "The environment image course-a:2026 is not installed on this server."


def test_unknown_reason_and_unknown_language_fall_back():
    e = messages.explain("no-such-reason", language="xx")
    assert e.reason == messages.START_FAILED
    assert messages.catalog("zh-CN") is messages.ZH_CN
    assert messages.catalog("en_GB") is messages.EN
    assert messages.catalog("fr_FR") is messages.EN


@pytest.mark.parametrize("reason", messages.REASONS)
def test_each_reason_in_chinese_says_what_happened_and_what_to_do(reason):
    params = {k: SAMPLE[k] for k in messages.PARAMS[reason]}
    e = messages.explain(reason, language="zh_CN", **params)
    assert e.text.endswith("。") and e.next.endswith("。")
    assert "{" not in e.plain and re.search(r"[\u4e00-\u9fff]", e.plain)
    assert re.search("再试|重试|组织者", e.next)
    assert not INTERNAL.search(e.plain), e.plain


def test_a_missing_parameter_is_a_programming_error():
    with pytest.raises(KeyError):
        messages.explain(messages.NPU_FULL, total=4)


def test_a_new_catalog_is_picked_by_locale_and_language(monkeypatch):
    zh = messages.Catalog(title="T", retry="R", log_heading="L", reasons=dict(messages.EN.reasons))
    monkeypatch.setattr(messages, "CATALOGS", {"en": messages.EN, "zh_CN": zh})
    assert messages.catalog("zh_CN") is zh
    assert messages.catalog("zh-CN") is zh
    assert messages.explain(messages.START_FAILED, language="zh_CN").title == "T"


def test_html_is_escaped_and_marked_with_the_reason():
    e = messages.explain(messages.BAD_NAME, name="<script>x</script>", log=["a < b & c"])
    out = e.html()
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert 'data-reason="bad_name"' in out
    assert '<pre class="mlw-refusal-log">a &lt; b &amp; c</pre>' in out
    assert "a < b & c" in e.plain


TOKEN = "0123456789abcdef" * 4


def test_safe_log_lines_hide_paths_tokens_and_traces():
    log = [
        "[mlw-start] apt proxy: http://10.0.0.2:3142",
        "[mlw-start] SSH root password (generated on the first start): S3cr3tPw",
        f"JUPYTERHUB_API_TOKEN={TOKEN}",
        "loading /etc/jupyterhub/secrets/api_token and /var/lib/jupyterhub/jupyterhub.sqlite",
        f"GET /user/bob/api?token={TOKEN[:20]} 403",
        f"Authorization: token {TOKEN[:24]}",
        f"session {TOKEN}",
        "Traceback (most recent call last):",
        '  File "/opt/venv/lib/python3.11/site-packages/notebook/app.py", line 12, in <module>',
        "    import missing_module",
        "ModuleNotFoundError: No module named 'missing_module'",
        "\x1b[31mred error\x1b[0m",
        "",
        "[mlw-start] ==============================",
        "listening on http://0.0.0.0:8888 and http://127.0.0.1:8888, not 10.1.2.3",
    ]
    out = messages.safe_log_lines(log, limit=20)
    text = "\n".join(out)
    assert "[mlw-start] apt proxy: http://[hidden]:3142" in out
    assert "=====" not in text
    assert "listening on http://0.0.0.0:8888 and http://127.0.0.1:8888, not [hidden]" in out
    assert "password" not in text and "S3cr3tPw" not in text
    assert TOKEN not in text and TOKEN[:20] not in text and TOKEN[:24] not in text
    assert "/etc/jupyterhub" not in text and "/var/lib" not in text
    assert "Traceback" not in text and "File " not in text and "import missing_module" not in text
    assert "ModuleNotFoundError: No module named 'missing_module'" in out
    assert "red error" in out
    assert "JUPYTERHUB_API_TOKEN=[hidden]" in out
    assert "" not in out


def test_safe_log_lines_keep_the_last_lines_shortened():
    out = messages.safe_log_lines([f"line {i}" for i in range(20)] + ["many words " * 50], limit=3, width=50)
    assert out[:2] == ["line 18", "line 19"]
    assert len(out[2]) == 50 and out[2].endswith("…")
    assert messages.safe_log_lines(["a"], limit=0) == []


def test_chained_tracebacks_leave_only_the_exception_lines():
    log = [
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "KeyError: 'a'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "x.py", line 3, in <module>',
        "RuntimeError: config broken",
    ]
    assert messages.safe_log_lines(log) == ["KeyError: 'a'", "RuntimeError: config broken"]
