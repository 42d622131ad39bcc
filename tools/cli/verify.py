"""``artwork-matcher infra verify``: the smoke test of a running deployment, over HTTP only.

Each check is one row of a pass/fail table: the gateway's health with its backends, one photo identified as the
artwork it shows, the security headers every answer carries, the admin endpoints refusing a request without a key,
and, for an ``https://`` URL, plain HTTP redirected to HTTPS. The built-in photos are photograph-like variants of the
pictures ``artwork-matcher demo`` builds its collection from (see :mod:`tools.cli.demo`); ``--photo FILE --expect
ID`` checks a photo of the deployment's own collection instead. With ``--api-key`` a built-in reference missing from
the collection is added for the check and removed afterwards, so an empty new stack can be checked too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

BUILT_IN = ("hokusai_great_wave", "leonardo_mona_lisa", "van_gogh_auvers")
"""Paintings of the demo collection (:func:`tools.cli.demo.demo_works`); the first is sent unless ``--sample``."""

REQUIRED_HEADERS: dict[str, str] = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "frame-ancestors 'none'",
}
"""Header → value (or, for the CSP, a directive it must contain) that every gateway answer must carry."""

PROBE_ID = "infra-verify-probe"
"""Object id the admin probes name; without a key nothing is ever written under it."""

API_KEY_ENV = "ARTWORK_MATCHER_API_KEY"
"""Environment variable read for ``--api-key`` when the option is not given (keeps the key off command lines)."""


@dataclass(frozen=True)
class Check:
    """One row of the table: what was checked, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Sample:
    """A photo to identify and the object id it must be answered with.

    Args:
        photo: JPEG or PNG bytes of the photo.
        filename: Name sent with the upload (and shown in the row).
        expected: The object id the deployment must answer.
        reference: PNG bytes of the artwork itself, to add when missing (built-in samples only).
        metadata: Catalogue fields sent with ``reference``.
    """

    photo: bytes
    filename: str
    expected: str
    reference: bytes | None = None
    metadata: dict[str, str] | None = None


def built_in_sample(name: str = BUILT_IN[0], seed: int = 7) -> Sample:
    """A photo-like shot of a demo painting (framed on a wall, at an angle, lit, blurred, noisy) and its reference."""
    import numpy as np
    from PIL import Image

    from tools.cli.demo import demo_works, photograph, reference_image

    if name not in BUILT_IN:
        raise ValueError(f"unknown built-in sample {name!r}; choose one of {', '.join(BUILT_IN)}")
    picture = reference_image(name)
    photo, reference = io.BytesIO(), io.BytesIO()
    Image.fromarray(photograph(picture, np.random.default_rng(seed))).save(photo, "JPEG", quality=85)
    Image.fromarray(picture).save(reference, "PNG")
    title, artist, date = demo_works()[name]
    metadata = {"title": title, "artist": artist, "date": date}
    return Sample(photo.getvalue(), f"photo_of_{name}.jpg", name, reference.getvalue(), metadata)


def file_sample(photo: Path, expected: str) -> Sample:
    """A photo of the deployment's own collection and the object id it shows."""
    return Sample(photo.read_bytes(), photo.name, expected)


def check_health(client: httpx.Client) -> Check:
    """``/health?check_backends=true`` answers ``healthy``; the detail names each backend's state."""
    name = "health (gateway and backends)"
    try:
        response = client.get("/health", params={"check_backends": "true"})
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Check(name, False, f"no answer: {exc}")
    checks = body.get("checks") or {}
    states = ", ".join(f"{backend} {str(state).split(':', 1)[0]}" for backend, state in checks.items())
    ok = response.status_code == 200 and body.get("status") == "healthy" and bool(checks)
    return Check(name, ok, f"HTTP {response.status_code} {body.get('status')}: {states or 'no backend checks'}")


def check_security_headers(client: httpx.Client) -> Check:
    """Every header of :data:`REQUIRED_HEADERS` is present with its value on an API answer."""
    name = "security headers"
    try:
        headers = client.get("/health").headers
    except httpx.HTTPError as exc:
        return Check(name, False, f"no answer: {exc}")
    wrong = []
    for header, value in REQUIRED_HEADERS.items():
        got = headers.get(header)
        fits = got is not None and (value in got if header == "content-security-policy" else got == value)
        if not fits:
            wrong.append(f"{header}={got!r} (want {value!r})")
    return Check(name, not wrong, "; ".join(wrong) or ", ".join(REQUIRED_HEADERS))


def check_admin_refuses_without_key(client: httpx.Client) -> Check:
    """POST, PUT and DELETE of ``/objects`` without ``X-API-Key`` are refused (401 or 403) with an error code."""
    probes = [
        ("POST", "/objects", {"object_id": PROBE_ID, "title": "infra verify"}),
        ("PUT", f"/objects/{PROBE_ID}", {"title": "infra verify"}),
        ("DELETE", f"/objects/{PROBE_ID}", None),
    ]
    seen, ok = [], True
    for method, path, fields in probes:
        files = {"image": ("probe.png", b"not an image", "image/png")} if fields is not None else None
        try:
            response = client.request(method, path, data=fields, files=files)
            code = _error_code(response)
        except httpx.HTTPError as exc:
            seen.append(f"{method} {path}: no answer ({exc})")
            ok = False
            continue
        refused = response.status_code in (401, 403) and bool(code)
        ok = ok and refused
        seen.append(f"{method} {response.status_code} {code or '(no error code)'}")
    return Check("admin endpoints refuse requests without a key", ok, "; ".join(seen))


def check_https_redirect(client: httpx.Client, url: str) -> Check:
    """Plain HTTP to the same host answers a redirect to HTTPS (checked only for ``https://`` URLs)."""
    plain = httpx.URL(url).copy_with(scheme="http", port=None).join("/health")
    name = "http redirects to https"
    try:
        response = client.get(str(plain), follow_redirects=False)
    except httpx.HTTPError as exc:
        return Check(name, False, f"no answer: {exc}")
    location = response.headers.get("location", "")
    ok = response.status_code in (301, 308) and location.startswith("https://")
    return Check(name, ok, f"HTTP {response.status_code} -> {location or '(no location)'}")


def check_identify(client: httpx.Client, sample: Sample, api_key: str | None) -> Check:
    """The photo is answered with the expected object id (adding the built-in reference first if allowed)."""
    name = f"identify {sample.filename}"
    try:
        with _reference_present(client, sample, api_key) as note:
            response = client.post("/identify", files={"image": (sample.filename, sample.photo, _media(sample))})
            body = response.json()
    except (httpx.HTTPError, ValueError, RuntimeError) as exc:
        return Check(name, False, str(exc))
    if response.status_code != 200:
        return Check(name, False, f"HTTP {response.status_code} {body.get('error')}: {body.get('message')}")
    match = body.get("match") or {}
    got = match.get("object_id") or "no match"
    detail = f"want {sample.expected}, got {got}"
    if match:
        detail += f" ({match.get('confidence', 0):.0%}, {match.get('verification_method')})"
    if body.get("degraded"):
        detail += f" [degraded: {body.get('degradation_reason')}]"
    return Check(name, got == sample.expected, detail + note)


@contextlib.contextmanager
def _reference_present(client: httpx.Client, sample: Sample, api_key: str | None) -> Iterator[str]:
    """Yield a note for the row; add the sample's reference for the duration when it is missing and a key is given."""
    missing = client.get(f"/objects/{sample.expected}").status_code == 404
    if not missing or sample.reference is None or not api_key:
        yield "" if not missing else f" ({sample.expected} is not in the collection; --api-key would add it)"
        return
    headers = {"X-API-Key": api_key}
    files = {"image": (f"{sample.expected}.png", sample.reference, "image/png")}
    fields = {"object_id": sample.expected, **(sample.metadata or {})}
    added = client.post("/objects", data=fields, files=files, headers=headers)
    if added.status_code not in (200, 201):
        raise RuntimeError(f"adding reference {sample.expected} failed: HTTP {added.status_code} {_error_code(added)}")
    try:
        yield f"; reference {sample.expected} added for this check and removed"
    finally:
        client.delete(f"/objects/{sample.expected}", headers=headers)


def _media(sample: Sample) -> str:
    return "image/png" if sample.filename.lower().endswith(".png") else "image/jpeg"


def _error_code(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(response.json().get("error") or "")
    return ""


def verify(
    url: str,
    sample: Sample,
    *,
    api_key: str | None = None,
    timeout_s: float = 60.0,
    transport: httpx.BaseTransport | None = None,
) -> list[Check]:
    """Run every check against the gateway at ``url``; returns the rows in table order.

    Args:
        url: The gateway's base URL.
        sample: The photo to identify and its expected object id.
        api_key: Admin key allowing a missing built-in reference to be added for the check (and removed).
        timeout_s: Seconds to wait for each answer.
        transport: An httpx transport (a test seam; the network by default).
    """
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, transport=transport) as client:
        rows = [
            check_health(client),
            check_identify(client, sample, api_key),
            check_security_headers(client),
            check_admin_refuses_without_key(client),
        ]
        if httpx.URL(url).scheme == "https":
            rows.append(check_https_redirect(client, url))
    return rows


def print_table(url: str, rows: Sequence[Check], out: TextIO) -> None:
    """The pass/fail table and a closing line naming every failed row."""
    width = max(len(row.name) for row in rows)
    print(f"infra verify {url}", file=out)
    for row in rows:
        print(f"  {'PASS' if row.ok else 'FAIL'}  {row.name:<{width}}  {row.detail}", file=out)
    failed = [row.name for row in rows if not row.ok]
    if failed:
        print(f"FAILED: {'; '.join(failed)}", file=out)
    else:
        print(f"all {len(rows)} checks passed", file=out)


def add_parser(infra_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``infra verify --url URL [--photo FILE --expect ID] [--sample NAME] [--api-key KEY]``."""
    cmd = infra_sub.add_parser("verify", help="smoke-test a running deployment: health, one photo, headers, admin")
    cmd.add_argument("--url", required=True, help="the gateway's base URL (pulumi stack output url)")
    cmd.add_argument("--photo", type=Path, help="a photo of an artwork in the deployment's collection")
    cmd.add_argument("--expect", help="the object id --photo must be answered with")
    cmd.add_argument("--sample", choices=BUILT_IN, default=BUILT_IN[0], help="built-in photo to send (no --photo)")
    cmd.add_argument(
        "--api-key",
        default=None,
        help=f"admin key: add the built-in reference if missing, and remove it after (default ${API_KEY_ENV})",
    )
    cmd.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each answer")
    cmd.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the checks and print the table; 0 when all pass, 1 when any fails, 2 for unusable arguments."""
    if (args.photo is None) != (args.expect is None):
        print("infra verify: --photo and --expect go together", file=sys.stderr)
        return 2
    try:
        sample = file_sample(args.photo, args.expect) if args.photo else built_in_sample(args.sample)
    except OSError as exc:
        print(f"infra verify: cannot read --photo: {exc}", file=sys.stderr)
        return 2
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    rows = verify(args.url, sample, api_key=api_key, timeout_s=args.timeout)
    print_table(args.url, rows, out or sys.stdout)
    return 0 if all(row.ok for row in rows) else 1
