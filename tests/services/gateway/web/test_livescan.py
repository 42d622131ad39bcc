"""Live scan on the visitor page: with the camera open, a steady picture is recognised without a shutter press, and
nothing is sent while the phone moves. Headless Chromium with a fake camera filming a real museum-dev photo."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.services.gateway.web.browser import find, open_page, photo_to_result_ms, screenshot, state, wait_for_state
from tests.services.gateway.web.conftest import CAMERA_PHOTO, launch_chromium, write_y4m

log = logging.getLogger(__name__)

LIVE_RESULT_BAR_MS = 1500
"""The issue's bar: the filmed artwork is on screen this soon after the camera shows frames, without a shutter press."""


def camera_ready(browser: WebDriver) -> bool:
    """Whether the preview is playing frames."""
    return bool(
        browser.execute_script("const v = document.getElementById('video'); return v.readyState >= 2 && v.videoWidth")
    )


def frames_sent(browser: WebDriver) -> int:
    """Frames the live scan has sent so far."""
    return int(browser.execute_script("return window.liveScan ? window.liveScan.sent : 0"))


@pytest.fixture(scope="module")
def moving_browser(museum_dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Chromium whose fake camera films the same photo sliding sideways, a tenth of its width a frame."""
    folder = tmp_path_factory.mktemp("moving-camera")
    with Image.open(museum_dev / "pictures" / CAMERA_PHOTO) as photo:
        video = write_y4m(photo.reduce(2), folder / "moving.y4m", frames=10, shift=0.1)
    driver = launch_chromium(video, folder / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def test_a_steady_picture_is_recognised_without_the_shutter_in_under_one_and_a_half_seconds(
    browser: WebDriver, gateway_url: str, artifacts: Path
) -> None:
    open_page(browser, gateway_url)
    started = time.perf_counter()
    find(browser, "#camera-start").click()
    WebDriverWait(browser, 10).until(lambda b: state(b) == "result" or camera_ready(b))
    wait_for_state(browser, "result", timeout=10)
    seen_ms = (time.perf_counter() - started) * 1000
    page_ms = photo_to_result_ms(browser)  # camera showing frames → answer painted, measured by the page

    (artifacts / "live-scan.json").write_text(json.dumps({"page_ms": round(page_ms), "test_ms": round(seen_ms)}))
    said = f"live scan: camera ready to artwork on screen {page_ms:.0f} ms, button press to screen {seen_ms:.0f} ms"
    log.warning(said)
    print(said)
    assert [e.text for e in browser.find_elements("css selector", ".card-title")] == [
        "Tots els peixos de la Mediterrania"
    ]
    assert page_ms < LIVE_RESULT_BAR_MS
    assert 1 <= frames_sent(browser) <= 3, "a steady, known picture is answered by its first frames"
    assert browser.execute_script("return document.getElementById('video').srcObject") is None, "camera stopped"
    assert browser.execute_script("return window.liveScan.running") is False, "the scan stopped with the answer"
    screenshot(browser, artifacts / "live-scan-result.png")


def test_nothing_is_sent_while_the_phone_moves_and_closing_the_camera_stops_the_scan(
    moving_browser: WebDriver, gateway_url: str, artifacts: Path
) -> None:
    browser = moving_browser
    open_page(browser, gateway_url)
    find(browser, "#camera-start").click()
    WebDriverWait(browser, 10).until(camera_ready)
    WebDriverWait(browser, 5).until(lambda b: find(b, "#scan-status").text == "Hold the phone still on the painting.")
    time.sleep(2.0)  # eight samples or more, each of a picture that moved

    assert frames_sent(browser) == 0
    assert state(browser) == "camera"
    assert find(browser, "#scan-status").is_displayed()
    screenshot(browser, artifacts / "live-scan-moving.png")
    find(browser, "#camera-stop").click()
    wait_for_state(browser, "idle")
    assert browser.execute_script("return window.liveScan.running") is False
    assert not find(browser, "#scan-status").is_displayed()


def test_with_scan_off_the_camera_waits_for_the_shutter(browser: WebDriver, gateway_url: str) -> None:
    open_page(browser, gateway_url, query="?scan=off")
    browser.execute_script("window.liveScan = undefined")
    find(browser, "#camera-start").click()
    WebDriverWait(browser, 10).until(camera_ready)
    time.sleep(1.0)

    assert state(browser) == "camera"
    assert browser.execute_script("return window.liveScan === undefined")
    assert not find(browser, "#scan-status").is_displayed()
    find(browser, "#camera-stop").click()
    wait_for_state(browser, "idle")
