"""The visitor page in real headless Chromium against a real gateway over fake backends.

Upload, camera and drag-and-drop paths with real museum-dev photos; the no-match, bad-photo and degraded panels;
screenshots of each state and the time from photo to answer on screen go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.services.gateway.web.browser import (
    find,
    open_page,
    photo_to_result_ms,
    screenshot,
    texts,
    wait_for_images,
    wait_for_state,
)
from tests.services.gateway.web.conftest import (
    NON_ART,
    PHOTO,
    ROOM_OBJECT,
    ROOM_OBJECT_DESCRIPTION,
    ROOM_OBJECT_LINK,
    TWO_PAINTINGS,
)
from tests.services.gateway.web.fakes import FakeBackends

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def timings(artifacts: Path) -> Iterator[dict[str, dict[str, float]]]:
    """Photo-to-result times per path, written to ``timings.json`` and logged (reported, never asserted)."""
    measured: dict[str, dict[str, float]] = {}
    yield measured
    (artifacts / "timings.json").write_text(json.dumps(measured, indent=2) + "\n")
    for name, row in measured.items():
        log.warning("photo to result on screen, %s: %.0f ms in the page, %.0f ms seen by the test", name, *row.values())


def upload(browser: WebDriver, photo: Path, *, until: str, timings: dict | None = None, name: str = "") -> None:
    """Choose ``photo`` in the file input and wait for the page to reach ``until``; record the time taken."""
    started = time.perf_counter()
    find(browser, "#file").send_keys(str(photo))
    wait_for_state(browser, until)
    seen_ms = (time.perf_counter() - started) * 1000
    if timings is not None:
        timings[name] = {"page_ms": round(photo_to_result_ms(browser), 1), "test_ms": round(seen_ms, 1)}


def card_titles(browser: WebDriver) -> list[str]:
    return texts(browser, ".card-title")


def test_uploading_a_museum_photo_shows_its_title_artist_and_picture(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path, timings: dict
) -> None:
    open_page(browser, gateway_url)
    screenshot(browser, artifacts / "start.png")
    upload(browser, museum_dev / "pictures" / PHOTO, until="result", timings=timings, name="upload")

    assert card_titles(browser) == ["La familia de l'artista"]
    assert texts(browser, ".card-artist") == ["Alfred Figueras"]
    assert texts(browser, ".confidence") == ["Very sure"]
    assert texts(browser, ".result-title") == ["We found it"]
    assert find(browser, ".card-image").get_attribute("src").endswith("/objects/mcv_bbdd_00081/image")
    wait_for_images(browser)
    assert browser.switch_to.active_element == find(browser, ".result-title"), "focus moves to the answer"
    screenshot(browser, artifacts / "result.png")


def test_uploading_a_photo_without_art_shows_not_in_this_collection(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path, timings: dict
) -> None:
    open_page(browser, gateway_url)
    upload(browser, museum_dev / "pictures" / NON_ART, until="nomatch", timings=timings, name="no match")

    assert texts(browser, ".result-title") == ["Not in this collection"]
    assert card_titles(browser) == []
    assert "Step closer" in find(browser, ".tips").text
    screenshot(browser, artifacts / "no-match.png")

    find(browser, ".again").click()
    wait_for_state(browser, "idle")
    assert browser.switch_to.active_element == find(browser, "#file"), "try again returns to choosing a photo"


def test_the_camera_shutter_identifies_the_filmed_painting(
    browser: WebDriver, gateway_url: str, artifacts: Path, timings: dict
) -> None:
    open_page(browser, gateway_url, query="?scan=off")  # the live scan would answer before the shutter is pressed
    find(browser, "#camera-start").click()
    wait_for_state(browser, "camera")
    ready = "const v = document.getElementById('video'); return v.readyState >= 2 && v.videoWidth > 0"
    wait_for_state(browser, "camera")
    WebDriverWait(browser, 10).until(lambda b: b.execute_script(ready) and find(b, "#shutter").is_enabled())
    assert browser.switch_to.active_element == find(browser, "#shutter")
    screenshot(browser, artifacts / "camera.png")

    started = time.perf_counter()
    find(browser, "#shutter").click()
    wait_for_state(browser, "result")
    timings["camera"] = {
        "page_ms": round(photo_to_result_ms(browser), 1),
        "test_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    assert card_titles(browser) == ["Tots els peixos de la Mediterrania"]
    assert browser.execute_script("return document.getElementById('video').srcObject") is None, "camera stopped"
    wait_for_images(browser)
    screenshot(browser, artifacts / "camera-result.png")


def test_a_photo_of_two_paintings_lists_both_best_first(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path
) -> None:
    open_page(browser, gateway_url)
    upload(browser, museum_dev / "pictures" / TWO_PAINTINGS, until="result")

    assert texts(browser, ".result-title") == ["We found 2 artworks in your photo"]
    assert card_titles(browser) == ["La familia de l'artista", "Jardi d'Essai"]
    assert all(word in {"Very sure", "Fairly sure", "Possibly"} for word in texts(browser, ".confidence"))
    wait_for_images(browser)
    screenshot(browser, artifacts / "two-artworks.png")


def test_the_room_description_and_link_come_from_the_catalogue(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path
) -> None:
    open_page(browser, gateway_url)
    upload(browser, museum_dev / "objects" / f"{ROOM_OBJECT}.jpg", until="result")

    assert card_titles(browser) == ["Giove ed Europa"]
    room = find(browser, ".fact-room")
    WebDriverWait(browser, 5).until(lambda _: room.is_displayed(), "the room never appeared")
    assert room.text.split() == ["Room", "19"]
    assert texts(browser, ".card-description") == [ROOM_OBJECT_DESCRIPTION]
    link = find(browser, ".card-link")
    assert link.text == "Read more" and link.get_attribute("href") == ROOM_OBJECT_LINK
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    wait_for_images(browser)
    screenshot(browser, artifacts / "room.png")


def test_a_blank_photo_gets_a_hint_to_take_it_again(
    browser: WebDriver, gateway_url: str, tmp_path: Path, artifacts: Path
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (640, 480), (128, 128, 128)).save(blank)
    open_page(browser, gateway_url)
    upload(browser, blank, until="error")

    assert texts(browser, ".result-title") == ["We couldn't read that photo"]
    assert "take the photo again" in find(browser, ".problem-hint").text
    assert "blank" in find(browser, ".problem-detail").text, "the server's message is shown in small print"
    screenshot(browser, artifacts / "bad-photo.png")


def test_a_file_that_is_not_an_image_never_leaves_the_phone(
    browser: WebDriver, gateway_url: str, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    open_page(browser, gateway_url)
    upload(browser, notes, until="error")

    assert texts(browser, ".result-title") == ["That file isn't a photo we can open"]
    sent = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert not any(name.endswith("/identify") for name in sent)


def test_when_verification_is_down_the_answer_is_flagged_as_less_certain(
    browser: WebDriver, gateway_url: str, museum_dev: Path, backends: FakeBackends, artifacts: Path
) -> None:
    backends.geometric_down = True
    try:
        open_page(browser, gateway_url)
        upload(browser, museum_dev / "pictures" / PHOTO, until="result")
    finally:
        backends.geometric_down = False

    assert card_titles(browser) == ["La familia de l'artista"]
    assert find(browser, ".degraded").is_displayed()
    screenshot(browser, artifacts / "degraded.png")


def test_a_dropped_photo_is_looked_up(browser: WebDriver, gateway_url: str, museum_dev: Path) -> None:
    data = base64.b64encode((museum_dev / "pictures" / PHOTO).read_bytes()).decode()
    open_page(browser, gateway_url)
    highlighted = browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'photo.jpg', { type: 'image/jpeg' }));
        const fire = (type) => document.body.dispatchEvent(
            new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        fire('dragenter');
        const shown = document.body.classList.contains('dragging');
        fire('drop');
        return shown;
        """,
        data,
    )
    assert highlighted, "dragging a file over the page highlights the drop target"
    wait_for_state(browser, "result")
    assert card_titles(browser) == ["La familia de l'artista"]


def test_photos_are_downscaled_to_1024_px_jpeg_before_upload(browser: WebDriver, gateway_url: str) -> None:
    open_page(browser, gateway_url)
    sizes = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const { fromFile } = await import('/static/photo.js');
        const sized = async (width, height) => {
          const canvas = new OffscreenCanvas(width, height);
          canvas.getContext('2d').fillRect(0, 0, width / 2, height / 2);
          const file = new File([await canvas.convertToBlob({ type: 'image/png' })], 'big.png', { type: 'image/png' });
          const jpeg = await fromFile(file);
          const bitmap = await createImageBitmap(jpeg);
          return [jpeg.type, bitmap.width, bitmap.height];
        };
        done([await sized(3000, 2000), await sized(1500, 4000), await sized(640, 480)]);
        """
    )
    assert sizes == [["image/jpeg", 1024, 683], ["image/jpeg", 384, 1024], ["image/jpeg", 640, 480]]


def test_confidence_is_said_in_words(browser: WebDriver, gateway_url: str) -> None:
    open_page(browser, gateway_url)
    words = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const { confidenceInWords } = await import('/static/render.js');
        done([0.99, 0.9, 0.89, 0.7, 0.69, 0.1].map((c) => confidenceInWords(c).words));
        """
    )
    assert words == ["Very sure", "Very sure", "Fairly sure", "Fairly sure", "Possibly", "Possibly"]


def test_the_page_weighs_under_100_kb_without_images_and_logs_no_errors(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path
) -> None:
    open_page(browser, gateway_url)
    upload(browser, museum_dev / "pictures" / PHOTO, until="result")
    wait_for_images(browser)
    weights = browser.execute_script(
        """
        const page = performance.getEntriesByType('navigation')[0];
        const parts = performance.getEntriesByType('resource')
          .filter((e) => e.initiatorType !== 'img' && !e.name.includes('/identify') && !e.name.includes('/objects/'));
        const sizes = parts.map((e) => [e.name, e.encodedBodySize]);
        return Object.fromEntries([[page.name, page.encodedBodySize], ...sizes]);
        """
    )
    (artifacts / "page-weight.json").write_text(json.dumps(weights, indent=2) + "\n")
    assert any(name.endswith("/static/app.js") for name in weights)
    assert any(name.endswith("/static/style.css") for name in weights)
    assert sum(weights.values()) < 100_000, weights
    problems = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert problems == [], "console errors or Content-Security-Policy violations"


CONTROLS = "button, input, select, textarea, a[href], video"
SHOWN = """
  const e = arguments[0];  // a visually hidden file input shows as its label
  return (e.type === 'file' ? e.labels[0] : e).getClientRects().length > 0;
"""

CONTRAST = """
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => v / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0.9) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const ratio = (e) => {
    const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(background(e))].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  return [...document.querySelectorAll('h1, h2, h3, p, li, dt, dd, label, button')]
    .filter((e) => e.getClientRects().length > 0 && e.textContent.trim())
    .map((e) => [e.className || e.tagName, Math.round(ratio(e) * 100) / 100]);
"""


def _check_names_and_contrast(browser: WebDriver) -> None:
    for element in browser.find_elements(By.CSS_SELECTOR, CONTROLS):
        if browser.execute_script(SHOWN, element):
            # Chromium updates its accessibility tree a moment after the DOM changes.
            WebDriverWait(browser, 3).until(
                lambda _, e=element: e.accessible_name.strip(),
                f"no accessible name: {element.get_attribute('outerHTML')}",
            )
    for name, ratio in browser.execute_script(CONTRAST):
        assert ratio >= 4.5, f"{name}: contrast {ratio} is under 4.5:1"


def test_accessibility_smoke_names_live_region_keyboard_focus_and_contrast(
    browser: WebDriver, gateway_url: str
) -> None:
    open_page(browser, gateway_url, query="?scan=off")  # the shutter, not the live scan, answers here
    assert browser.execute_script("return document.documentElement.lang") == "en"
    result = find(browser, "#result")
    assert result.get_attribute("aria-live") == "polite"
    _check_names_and_contrast(browser)
    assert find(browser, "#file").accessible_name == "Choose a photo"

    # Keyboard only: Tab to the language switch, then to the camera button (focus visible on both), Enter starts the
    # camera, Space on the shutter takes the photo.
    find(browser, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "language"
    assert focused.accessible_name == "Language"
    assert focused.value_of_css_property("outline-style") != "none", "focus is visible"
    focused.send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "camera-start"
    assert focused.value_of_css_property("outline-style") != "none", "focus is visible"
    focused.send_keys(Keys.ENTER)
    wait_for_state(browser, "camera")
    WebDriverWait(browser, 10).until(lambda b: find(b, "#shutter").is_enabled())
    _check_names_and_contrast(browser)
    assert find(browser, "#shutter").accessible_name == "Take photo"
    browser.switch_to.active_element.send_keys(Keys.SPACE)
    wait_for_state(browser, "result")
    _check_names_and_contrast(browser)
    for image in browser.find_elements(By.CSS_SELECTOR, ".card-image"):
        assert image.get_attribute("alt").startswith("The museum's picture of")
