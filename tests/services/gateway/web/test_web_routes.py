"""The page's routes over HTTP: security headers, static files, caching, and the page weight budget."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.gateway.web import WEB_DIR

BUDGET_BYTES = 100_000
"""Page weight budget without images: HTML, scripts and style sheets."""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = GatewaySettings(snapshot_dir=tmp_path_factory.mktemp("snapshot"))
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (p.split() for p in policy.split(";") if p.strip())
    return {name: values for name, *values in parts}


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css", "/curate", "/static/curate.js"])
def test_page_and_static_files_carry_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    csp = _directives(response.headers["content-security-policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"], "no inline or remote scripts"
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "blob:", "data:"]
    assert csp["media-src"] == ["'self'", "blob:", "mediastream:"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "camera=(self)" in response.headers["permissions-policy"]
    assert "microphone=()" in response.headers["permissions-policy"]


def test_files_are_served_with_their_media_types(client: TestClient) -> None:
    assert client.get("/").headers["content-type"].startswith("text/html")
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/icon.svg").headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize("name", ["missing.js", "..%2Fweb.py", "%2E%2E%2Fapp.py", ".hidden.js", "index.html", "app.JS"])
def test_unknown_or_unsafe_static_names_are_404_in_the_error_shape(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_unchanged_file_is_not_sent_again(client: TestClient) -> None:
    first = client.get("/static/app.js")
    again = client.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("page", ["index.html", "curate.html"])
def test_the_page_has_no_inline_script_style_or_handler_and_nothing_from_another_origin(page: str) -> None:
    html = (WEB_DIR / page).read_text()

    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "everything comes from this server"
    for script in WEB_DIR.glob("*.js"):
        assert not re.search(r"(https?:)?//[a-z]", re.sub(r"^\s*//.*$", "", script.read_text(), flags=re.M))


def _referenced(client: TestClient, page: str = "/") -> dict[str, int]:
    """Bytes of the page and of every script and style sheet it loads, following module imports."""
    sizes = {page: len(client.get(page).content)}
    html = client.get(page).text
    queue = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"(/static/[^\"]+\.(?:js|css))\"", html)
    while queue:
        path = queue.pop()
        if path in sizes:
            continue
        response = client.get(path)
        assert response.status_code == 200, path
        sizes[path] = len(response.content)
        queue += [f"/static/{name}" for name in re.findall(r"from '\./([a-z0-9_-]+\.js)'", response.text)]
    return sizes


def _languages(client: TestClient) -> dict[str, int]:
    """Bytes of each language's words (``lang-<code>.js``, imported on demand by i18n.js), by path."""
    script = client.get("/static/i18n.js").text
    block = re.search(r"export const LANGUAGES = \{(.*?)\};", script, flags=re.S)
    assert block
    codes = re.findall(r"^\s*'?([a-z]{2,3}(?:-[A-Za-z0-9]+)*)'?:", block.group(1), flags=re.M)
    sizes = {}
    for code in codes:
        response = client.get(f"/static/lang-{code}.js")
        assert response.status_code == 200, code
        sizes[f"/static/lang-{code}.js"] = len(response.content)
    return sizes


def test_page_scripts_and_styles_weigh_under_100_kb(client: TestClient) -> None:
    sizes = _referenced(client)
    languages = _languages(client)
    # A visitor loads the page, English (its source language, imported statically) and at most one other language.
    heaviest = max(size for path, size in languages.items() if path not in sizes)

    assert {"/", "/static/app.js", "/static/style.css", "/static/photo.js", "/static/render.js"} <= set(sizes)
    assert "/static/lang-en.js" in sizes
    assert sum(sizes.values()) + heaviest < BUDGET_BYTES, sizes
    shipped = {f"/static/{p.name}" for p in WEB_DIR.iterdir() if p.suffix in (".js", ".css")}
    curator = _referenced(client, "/curate")
    assert {"/static/curate.js", "/static/curate.css"} <= set(curator)
    assert not {"/static/curate.js", "/static/curate.css"} & set(sizes), "visitors never load the curator's files"
    reachable = set(sizes) | set(curator) | set(languages)
    assert shipped <= reachable, "every shipped script and style sheet is reachable from a page"


def test_web_files_ship_in_the_package() -> None:
    assert (Path(WEB_DIR) / "index.html").is_file()
    assert {p.suffix for p in WEB_DIR.iterdir()} <= {".html", ".js", ".css", ".svg"}, "pyproject's package data"
