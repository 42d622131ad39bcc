"""The visitor web page: ``GET /`` and its static files, served with a strict Content-Security-Policy.

The page is plain HTML, CSS and JavaScript modules from ``web/`` beside this file: no build step, nothing loaded
from another origin (a museum's offline network must be enough), no inline scripts or styles.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any

import anyio
from litestar import Request, Response, get
from litestar.params import PathParameter

from services.common import errors

WEB_DIR = Path(__file__).resolve().parent / "web"
"""Where the page's files live (shipped as package data)."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Same-origin everything; camera frames and previews as blob:/mediastream:; no inline code."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
"""Headers of every response of the page's routes."""

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_STATIC_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}\.(js|css|svg)$")


async def _serve(request: Request[Any, Any, Any], path: Path) -> Response[bytes]:
    """The file with a strong ETag; 304 when the browser already holds this version."""
    body = await anyio.Path(path).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=_MEDIA_TYPES[path.suffix], headers=headers)


@get(
    "/",
    operation_id="webPage",
    summary="The visitor page: photograph a painting, read about it",
    include_in_schema=False,
    response_headers=SECURITY_HEADERS,
)
async def web_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The visitor page, with its security headers (304 when the browser's copy is current)."""
    return await _serve(request, WEB_DIR / "index.html")


@get(
    "/curate",
    operation_id="curatorPage",
    summary="The curator page: sign in with the admin key, manage the collection, read its report",
    include_in_schema=False,
    response_headers=SECURITY_HEADERS,
)
async def curator_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The curator page; its scripts call the admin routes with the key the curator types in (kept in memory)."""
    return await _serve(request, WEB_DIR / "curate.html")


@get(
    "/static/{name:str}",
    operation_id="webStatic",
    summary="A script, style sheet or icon of the visitor page",
    include_in_schema=False,
    response_headers=SECURITY_HEADERS,
)
async def web_static(name: Annotated[str, PathParameter()], request: Request[Any, Any, Any]) -> Response[bytes]:
    """One of the visitor page's scripts, style sheets or icons from the page's own folder; 404 for any other name."""
    path = WEB_DIR / name
    # The name pattern rules out path separators and dot files; the file must also exist in WEB_DIR itself.
    if not _STATIC_NAME.match(name) or not path.is_file():
        raise errors.NotFound(f"no static file {name!r}", details={"name": name})
    return await _serve(request, path)


WEB_ROUTES = [web_page, curator_page, web_static]
"""Route handlers the gateway mounts."""
