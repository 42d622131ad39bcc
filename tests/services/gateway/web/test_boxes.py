"""The visitor's photo with a numbered box on each artwork found, in real headless Chromium (phone-sized).

The fake geometric service places the i-th of n shown artworks in the i-th of n equal columns of the photo, from
10 % to 90 % of its height; an artwork in ``FakeBackends.boxless`` verifies without a box.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.services.gateway.web.browser import find, open_page, screenshot, texts, wait_for_images, wait_for_state
from tests.services.gateway.web.conftest import PHOTO, TWO_PAINTINGS, labelled
from tests.services.gateway.web.fakes import FakeBackends

PLACES = """
  const photo = document.querySelector('.photo-frame img').getBoundingClientRect();
  return [...document.querySelectorAll('.photo-box')].map((box) => {
    const r = box.getBoundingClientRect();
    return [(r.left - photo.left) / photo.width, (r.top - photo.top) / photo.height,
            r.width / photo.width, r.height / photo.height];
  });
"""
"""Each box's left, top, width and height as fractions of the photo on screen."""


def show(browser: WebDriver, gateway_url: str, photo: Path) -> None:
    """Look up ``photo`` on a fresh page and wait for the answer and the photo under the boxes."""
    open_page(browser, gateway_url)
    find(browser, "#file").send_keys(str(photo))
    wait_for_state(browser, "result")
    wait_for_images(browser, ".photo-frame img")
    browser.execute_script("return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def places(browser: WebDriver) -> list[list[float]]:
    return [[round(v, 3) for v in place] for place in browser.execute_script(PLACES)]


def pressed(browser: WebDriver) -> list[str | None]:
    return [box.get_attribute("aria-pressed") for box in browser.find_elements(By.CSS_SELECTOR, ".photo-box")]


def selected_cards(browser: WebDriver) -> list[bool]:
    return [
        "selected" in (card.get_attribute("class") or "").split()
        for card in browser.find_elements(By.CSS_SELECTOR, ".card")
    ]


@pytest.fixture
def boxless(backends: FakeBackends) -> Iterator[set[str]]:
    """Artworks that verify without a box for one test."""
    yield backends.boxless
    backends.boxless.clear()


def test_two_artworks_get_two_numbered_boxes_where_the_answer_places_them(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path
) -> None:
    show(browser, gateway_url, museum_dev / "pictures" / TWO_PAINTINGS)

    assert texts(browser, ".card-title") == ["La familia de l'artista", "Jardi d'Essai"]
    boxes = browser.find_elements(By.CSS_SELECTOR, ".photo-box")
    assert [box.text for box in boxes] == ["1", "2"]
    assert [box.accessible_name for box in boxes] == [
        "Artwork 1: “La familia de l'artista”",
        "Artwork 2: “Jardi d'Essai”",
    ]
    assert places(browser) == [[0.0, 0.1, 0.5, 0.8], [0.5, 0.1, 0.5, 0.8]]
    photo_width, viewport_width = browser.execute_script(
        "return [document.querySelector('.photo-frame img').getBoundingClientRect().width, innerWidth]"
    )
    assert 0 < photo_width <= viewport_width, "the photo fits the phone's column"
    assert texts(browser, ".card-number") == ["1", "2"]
    assert find(browser, ".your-photo figcaption").text == "Tap a numbered box to see which artwork it is."
    assert pressed(browser) == ["false", "false"] and selected_cards(browser) == [False, False]

    boxes[1].click()
    assert pressed(browser) == ["false", "true"]
    assert selected_cards(browser) == [False, True]
    WebDriverWait(browser, 3).until(
        lambda _: float(boxes[0].value_of_css_property("opacity")) < 0.5, "the other box is not dimmed"
    )
    assert float(boxes[1].value_of_css_property("opacity")) == 1.0
    screenshot(browser, artifacts / "boxes-second-chosen.png")

    browser.find_elements(By.CSS_SELECTOR, ".card-title")[0].click()
    assert pressed(browser) == ["true", "false"]
    assert selected_cards(browser) == [True, False]

    problems = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert problems == [], "console errors or Content-Security-Policy violations"


def test_an_artwork_that_was_not_located_gets_no_box(
    browser: WebDriver, gateway_url: str, museum_dev: Path, boxless: set[str]
) -> None:
    boxless.add(labelled(museum_dev, TWO_PAINTINGS)[1])
    show(browser, gateway_url, museum_dev / "pictures" / TWO_PAINTINGS)

    assert texts(browser, ".card-title") == ["La familia de l'artista", "Jardi d'Essai"]
    assert texts(browser, ".photo-box") == ["1"]
    assert places(browser) == [[0.0, 0.1, 0.5, 0.8]]
    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    assert [len(card.find_elements(By.CSS_SELECTOR, ".card-number")) for card in cards] == [1, 0]
    assert browser.find_elements(By.CSS_SELECTOR, ".your-photo figcaption") == [], "one box asks for no choice"


def test_one_artwork_gets_its_box_without_a_choice_to_make(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path
) -> None:
    show(browser, gateway_url, museum_dev / "pictures" / PHOTO)

    assert texts(browser, ".card-title") == ["La familia de l'artista"]
    assert places(browser) == [[0.0, 0.1, 1.0, 0.8]]
    assert find(browser, ".photo-box").accessible_name == "Artwork 1: “La familia de l'artista”"
    assert browser.find_elements(By.CSS_SELECTOR, ".your-photo figcaption") == []
    assert pressed(browser) == ["false"] and selected_cards(browser) == [False]
    screenshot(browser, artifacts / "boxes-one.png")


def test_an_answer_without_boxes_shows_no_photo(
    browser: WebDriver, gateway_url: str, museum_dev: Path, backends: FakeBackends
) -> None:
    backends.geometric_down = True  # embedding-only answers are not located
    try:
        open_page(browser, gateway_url)
        find(browser, "#file").send_keys(str(museum_dev / "pictures" / PHOTO))
        wait_for_state(browser, "result")
    finally:
        backends.geometric_down = False

    assert texts(browser, ".card-title") == ["La familia de l'artista"]
    assert not find(browser, ".your-photo").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, ".photo-box") == []


def test_choosing_a_box_jumps_to_its_card_when_the_visitor_asks_for_less_motion(
    browser: WebDriver, gateway_url: str, museum_dev: Path
) -> None:
    reduced = {"media": "", "features": [{"name": "prefers-reduced-motion", "value": "reduce"}]}
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", reduced)
    try:
        show(browser, gateway_url, museum_dev / "pictures" / TWO_PAINTINGS)
        in_view_at_once = browser.execute_script(
            """
            window.scrollTo({ top: 0, behavior: 'instant' });
            document.querySelectorAll('.photo-box')[1].click();
            const card = document.querySelectorAll('.card')[1].getBoundingClientRect();
            return card.top >= 0 && card.bottom <= innerHeight + 1;
            """
        )
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})
    assert in_view_at_once, "the card is scrolled to without an animation"
