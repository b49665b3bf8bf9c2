"""The hub pages' words (ml_workshop.i18n): every language has every key with the same
placeholders, a missing word falls back to English, and hub_language is checked."""

import pytest

from ml_workshop import i18n, messages, names


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_language_has_every_word_with_its_placeholders(language):
    words = i18n.PAGES[language]
    assert set(words) == set(i18n.EN), language
    for key, text in words.items():
        assert text.strip(), (language, key)
        assert i18n.placeholders(text) == i18n.placeholders(i18n.EN[key]), (language, key)
    assert language in messages.CATALOGS and language in i18n.HTML_LANG


def test_page_text_falls_back_to_english():
    assert i18n.page_text("zh_CN")["login_submit"] == "登录"
    assert i18n.page_text("fr_FR") == dict(i18n.EN)


@pytest.mark.parametrize(
    ("value", "ok"), [("en", True), ("zh_CN", True), ("zh-CN", False), ("", False), (None, False)]
)
def test_language_problem_names_the_variable(value, ok):
    problem = i18n.language_problem(value)
    assert (problem == "") is ok
    if not ok:
        assert "hub_language must be one of en, zh_CN" in problem


def test_the_sign_up_rule_in_chinese():
    assert "小写字母" in names.describe(names.DEFAULT_PATTERN, "zh_CN")
    assert names.describe(names.DEFAULT_PATTERN, "xx") == names.describe()
    assert names.describe("^[a-z]+$", "zh_CN") == "必须匹配正则表达式 ^[a-z]+$"
