"""``artwork-matcher identify``: the request it sends and the lines it prints."""

from __future__ import annotations

import io
import json

import httpx
import msgspec
import pytest

from services.common.schemas import IdentifyResponse
from tools.cli import identify
from tools.cli.identify import describe, identify_file


def match(object_id: str, name: str, artist: str, confidence: float) -> dict:
    return {
        "object_id": object_id,
        "name": name,
        "artist": artist,
        "year": "",
        "confidence": confidence,
        "similarity_score": 0.8,
        "geometric_score": 0.7,
        "verification_method": "geometric",
        "image_url": f"/objects/{object_id}/image",
    }


def answer(*matches: dict, degraded: bool = False, message: str | None = None, total_ms: float = 123.4) -> dict:
    return {
        "success": True,
        "match": matches[0] if matches else None,
        "matches": list(matches),
        "alternatives": None,
        "message": message,
        "timing": {"embedding_ms": 50.0, "search_ms": 2.0, "geometric_ms": 60.0, "total_ms": total_ms},
        "debug": {"regions": 3, "candidates": [], "threshold": 0.5},
        "geometric_skipped": degraded,
        "geometric_skip_reason": None,
        "degraded": degraded,
        "degradation_reason": "geometric down" if degraded else None,
    }


def typed(body: dict) -> IdentifyResponse:
    return msgspec.convert(body, IdentifyResponse)


def test_describes_every_match_with_title_artist_id_and_confidence():
    text = describe(
        typed(
            answer(
                match("mona", "Mona Lisa", "Leonardo", 0.934),
                match("x-7", "", "", 0.5),
                total_ms=1234.6,
            )
        )
    )

    assert text == "Mona Lisa — Leonardo [mona] (93%); x-7 [x-7] (50%) · 1235 ms"


def test_describes_no_match_with_the_servers_message():
    text = describe(typed(answer(message="the collection is empty", total_ms=9.4)))

    assert text == "no match (the collection is empty) · 9 ms"


def test_flags_a_degraded_answer():
    assert describe(typed(answer(match("a", "A", "B", 1.0), degraded=True))).endswith(" [degraded: embedding only]")
    assert describe(typed(answer(degraded=True))).endswith("[degraded: embedding only]")


def test_identify_file_posts_a_multipart_photo_with_string_options(tmp_path):
    photo = tmp_path / "wall.jpg"
    photo.write_bytes(b"\xff\xd8\xff fake jpeg")
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer())

    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        body = identify_file(client, "http://gw/", photo, k=5, include_alternatives=True, threshold=None)

    assert body == typed(answer())
    [request] = seen
    assert str(request.url) == "http://gw/identify"
    content = request.read().decode("latin-1")
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert 'name="image"; filename="wall.jpg"' in content and "Content-Type: image/jpeg" in content
    assert 'name="k"\r\n\r\n5\r\n' in content
    assert 'name="include_alternatives"\r\n\r\ntrue\r\n' in content
    assert 'name="threshold"' not in content


def test_identify_file_raises_the_servers_error(tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(b"x")
    body = {"error": "unsupported_media_type", "message": "send JPEG", "details": {}}

    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(415, json=body))) as client,
        pytest.raises(RuntimeError, match="415 unsupported_media_type: send JPEG"),
    ):
        identify_file(client, "http://gw", photo)


def test_run_prints_one_line_per_photo_and_fails_when_any_photo_failed(tmp_path, monkeypatch):
    good, bad, missing = tmp_path / "good.jpg", tmp_path / "bad.jpg", tmp_path / "missing.jpg"
    good.write_bytes(b"g")
    bad.write_bytes(b"b")

    def gateway(request: httpx.Request) -> httpx.Response:
        if b'filename="bad.jpg"' in request.read():
            return httpx.Response(400, json={"error": "invalid_image", "message": "corrupt", "details": {}})
        return httpx.Response(200, json=answer(match("mona", "Mona Lisa", "Leonardo", 0.9)))

    real_client = httpx.Client
    monkeypatch.setattr(
        identify.httpx, "Client", lambda **kw: real_client(transport=httpx.MockTransport(gateway), **kw)
    )
    out = io.StringIO()

    code = identify.run("http://gw", [good, bad, missing], out)

    lines = out.getvalue().splitlines()
    assert code == 1
    assert lines[0] == f"{good}: Mona Lisa — Leonardo [mona] (90%) · 123 ms"
    assert lines[1] == f"{bad}: error: 400 invalid_image: corrupt"
    assert lines[2].startswith(f"{missing}: error:")

    out = io.StringIO()
    assert identify.run("http://gw", [good], out, as_json=True) == 0
    printed = json.loads(out.getvalue())
    assert printed["photo"] == str(good) and printed["match"]["object_id"] == "mona"


def test_an_answer_that_breaks_the_contract_is_a_clear_error(tmp_path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"x")
    broken = {**answer(), "debug": {"regions": 1, "candidates": [{"object_id": "a"}], "threshold": 0.5}}

    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=broken))) as client,
        pytest.raises(ValueError, match=r"does not follow the /identify contract.*similarity"),
    ):
        identify_file(client, "http://gw", photo)


def test_an_error_that_is_not_json_is_reported_with_its_status(tmp_path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"x")

    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(502, text="<html>bad gateway"))) as client,
        pytest.raises(RuntimeError, match=r"^502 <html>bad gateway"),
    ):
        identify_file(client, "http://gw", photo)
