"""The visitor page's translations, read as files: every language has every message, in the same shape.

Each ``lang-<code>.js`` in ``services/gateway/web/`` is ``export default`` followed by a JSON object of messages
(comments above it); ``i18n.js`` lists the languages offered. These tests need no browser.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from services.common import errors
from services.gateway.web import WEB_DIR

SOURCE = "en"
REQUIRED = {"en", "es", "ca", "fr", "de"}
"""The languages the page must offer at least."""
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}


def read_messages(path: Path) -> dict[str, Any]:
    """The messages of one language file: the JSON object after ``export default``."""
    text = path.read_text(encoding="utf-8")
    _, marker, body = text.partition("export default")
    assert marker, f"{path.name}: no 'export default'"
    body = body.strip().removesuffix(";")
    try:
        messages = json.loads(body)
    except json.JSONDecodeError as error:
        pytest.fail(f"{path.name}: the messages are not a JSON object: {error}")
    assert isinstance(messages, dict), path.name
    return messages


@cache
def offered() -> dict[str, str]:
    """``LANGUAGES`` of i18n.js: code → the language's name in itself."""
    source = (WEB_DIR / "i18n.js").read_text(encoding="utf-8")
    block = re.search(r"export const LANGUAGES = \{(.*?)\};", source, flags=re.S)
    assert block, "i18n.js declares LANGUAGES"
    return dict(re.findall(r"^\s*'?([a-z]{2,3}(?:-[A-Za-z0-9]+)*)'?: '([^']+)',", block.group(1), flags=re.M))


@cache
def all_messages() -> dict[str, dict[str, Any]]:
    """Every language's messages by code."""
    return {code: read_messages(WEB_DIR / f"lang-{code}.js") for code in offered()}


def forms(message: Any) -> dict[str, str]:
    """A message as its forms: ``{"": text}`` for a plain one, the plural forms of a plural one."""
    return {"": message} if isinstance(message, str) else message


def test_the_page_offers_english_spanish_catalan_french_and_german_each_with_its_own_file() -> None:
    languages = offered()

    assert set(languages) >= REQUIRED
    assert {p.name for p in WEB_DIR.glob("lang-*.js")} == {f"lang-{code}.js" for code in languages}
    assert languages["ca"] == "Català" and languages["de"] == "Deutsch", "each language is named in itself"


@pytest.mark.parametrize("code", sorted(REQUIRED - {SOURCE}))
def test_every_message_exists_in_every_language_and_nothing_else(code: str) -> None:
    source, translated = all_messages()[SOURCE], all_messages()[code]

    assert sorted(set(source) - set(translated)) == [], f"missing in lang-{code}.js"
    assert sorted(set(translated) - set(source)) == [], f"lang-{code}.js has keys English does not"


@pytest.mark.parametrize("code", sorted(REQUIRED))
def test_every_message_is_text_or_plural_forms_with_the_same_placeholders_as_english(code: str) -> None:
    source = all_messages()[SOURCE]
    for key, message in all_messages()[code].items():
        shapes = forms(message)
        assert all(isinstance(text, str) and text.strip() for text in shapes.values()), f"{code} {key}: empty"
        if isinstance(source.get(key), dict):
            assert isinstance(message, dict) and "other" in message, f"{code} {key}: needs plural forms"
            assert set(message) <= PLURAL_FORMS, f"{code} {key}: unknown plural form"
        else:
            assert isinstance(message, str), f"{code} {key}: plural forms where English has one text"
        wanted = {name for text in forms(source[key]).values() for name in PLACEHOLDER.findall(text)}
        for form, text in shapes.items():
            found = set(PLACEHOLDER.findall(text))
            # A plural form for exactly one may say it in words ("We found it"); the others name every value.
            assert found == wanted or (form == "one" and found == wanted - {"count"}), f"{code} {key} {form}"


def test_the_translations_are_not_english_copies() -> None:
    source = all_messages()[SOURCE]
    for code in REQUIRED - {SOURCE}:
        same = [key for key, message in all_messages()[code].items() if message == source[key]]
        # Words like "Photos", "Date" or "Possible" may rightly be spelt the same; whole sentences may not.
        assert all(len(str(source[key]).split()) <= 2 for key in same), f"{code}: untranslated {same}"


PAGES = ("index.html", "curate.html")
"""The pages: the visitor's and the curator's, both in lang-<code>.js's words."""


def _html_keys() -> dict[str, str]:
    """Message key → the English text the pages' HTML carries for it (whitespace collapsed)."""
    html = "\n".join((WEB_DIR / page).read_text(encoding="utf-8") for page in PAGES)
    found: dict[str, str] = {}
    for key, text in re.findall(r'data-i18n="([^"]+)"[^>]*>([^<]*)<', html):
        found[key] = " ".join(text.split())
    for attribute in ("aria-label", "alt", "title"):
        for element in re.findall(rf"<[^>]*data-i18n-{attribute}=[^>]*>", html):
            key = re.search(rf'data-i18n-{attribute}="([^"]+)"', element).group(1)  # type: ignore[union-attr]
            value = re.search(rf'\s{attribute}="([^"]*)"', element)
            found[key] = value.group(1) if value else ""
    return found


def test_the_html_is_written_with_the_english_messages() -> None:
    """The page shows its HTML before the scripts run: it must say what lang-en.js says."""
    source = all_messages()[SOURCE]
    keys = _html_keys()

    assert len(keys) >= 25, "the page's words are keyed"
    for key, text in keys.items():
        assert key in source, f"the HTML names an unknown message {key}"
        assert text == source[key], f"the HTML: {key} says {text!r}, lang-en.js {source[key]!r}"


def _script_keys() -> set[str]:
    """Message keys the scripts name as string literals (a file name such as 'photo.jpg' is not one)."""
    prefixes = {key.split(".")[0] for key in all_messages()[SOURCE]}
    literal = re.compile(r"'((?:" + "|".join(sorted(prefixes)) + r")\.[A-Za-z.]+)'")
    scripts = [p for p in WEB_DIR.glob("*.js") if not p.name.startswith("lang-")]
    named = {key for path in scripts for key in literal.findall(path.read_text())}
    return {key for key in named if not re.search(r"\.(jpe?g|png|webp|js|css|svg)$", key)}


def _problem_kinds() -> set[str]:
    """The kinds of problem problems.js can describe (each has messages problem.<kind>.title and .hint)."""
    return set(re.findall(r"'([a-zA-Z]+)'", (WEB_DIR / "problems.js").read_text()))


def test_every_message_the_scripts_name_exists_and_every_message_is_used() -> None:
    source = set(all_messages()[SOURCE])
    named = _script_keys()
    problems = {f"problem.{kind}.{part}" for kind in _problem_kinds() for part in ("title", "hint")}

    assert named - source == set(), "the scripts name messages lang-en.js lacks"
    assert problems - source == set(), "problems.js has kinds without messages"
    assert source - named - problems - set(_html_keys()) == set(), "messages nothing shows"


def test_every_error_code_of_the_gateway_has_a_message_for_visitors() -> None:
    kinds = [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.ServiceError)]
    codes = {cls.code for cls in kinds}
    script = (WEB_DIR / "problems.js").read_text()
    mapping = re.search(r"export const KIND_BY_CODE = \{(.*?)\};", script, flags=re.S)
    assert mapping, "problems.js declares KIND_BY_CODE"
    mapped = dict(re.findall(r"^\s*(\w+): '(\w+)',", mapping.group(1), flags=re.M))

    assert len(codes) >= 15
    assert sorted(codes - set(mapped)) == [], "error codes the page has no words for"
    for code, kind in mapped.items():
        assert f"problem.{kind}.title" in all_messages()[SOURCE], code
