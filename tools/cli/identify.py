"""``artwork-matcher identify``: send photos to a running gateway and print what it answers."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import httpx
import msgspec

from services.common.schemas import ErrorBody, IdentifyResponse


def identify_file(client: httpx.Client, url: str, photo: Path, **options: Any) -> IdentifyResponse:
    """POST one photo as multipart to ``url``/identify and return the typed answer.

    Raises:
        RuntimeError: the gateway answered an error (``"<status> <code>: <message>"``).
        ValueError: a 200 answer that does not follow the ``IdentifyResponse`` contract.
        OSError, httpx.HTTPError: the photo could not be read or the request failed.
    """
    media = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
    data = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items() if v is not None}
    with open(photo, "rb") as handle:
        response = client.post(f"{url.rstrip('/')}/identify", files={"image": (photo.name, handle, media)}, data=data)
    if response.status_code != 200:
        try:
            error = msgspec.json.decode(response.content, type=ErrorBody)
        except msgspec.MsgspecError:
            raise RuntimeError(f"{response.status_code} {response.text[:200]}") from None
        raise RuntimeError(f"{response.status_code} {error.error}: {error.message}")
    try:
        return msgspec.json.decode(response.content, type=IdentifyResponse)
    except msgspec.MsgspecError as exc:
        raise ValueError(f"the gateway's answer does not follow the /identify contract: {exc}") from exc


def describe(answer: IdentifyResponse) -> str:
    """One line per answer: every match with title, artist, confidence, and the time taken."""
    ms = answer.timing.total_ms
    flag = " [degraded: embedding only]" if answer.degraded else ""
    if not answer.matches:
        return f"no match ({answer.message}) · {ms:.0f} ms{flag}"
    parts = []
    for m in answer.matches:
        title = m.name or m.object_id
        artist = f" — {m.artist}" if m.artist else ""
        parts.append(f"{title}{artist} [{m.object_id}] ({m.confidence:.0%})")
    return f"{'; '.join(parts)} · {ms:.0f} ms{flag}"


def run(
    url: str, photos: Iterable[Path], out: TextIO, *, as_json: bool = False, timeout_s: float = 30.0, **options: Any
) -> int:
    """Identify each photo, printing one line (or one JSON document) each; returns the exit code."""
    failures = 0
    with httpx.Client(timeout=timeout_s) as client:
        for photo in photos:
            try:
                answer = identify_file(client, url, photo, **options)
            except (OSError, RuntimeError, ValueError, httpx.HTTPError) as exc:
                failures += 1
                print(f"{photo}: error: {exc}", file=out)
                continue
            if as_json:
                print(json.dumps({"photo": str(photo), **msgspec.to_builtins(answer)}), file=out)
            else:
                print(f"{photo}: {describe(answer)}", file=out)
    return 1 if failures else 0
