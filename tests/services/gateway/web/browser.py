"""Small helpers to drive the visitor page in Chromium: open it, wait for a state, read timings, take screenshots."""

from __future__ import annotations

import base64
import math
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

STATES = ("idle", "camera", "busy", "result", "nomatch", "error")
"""The page's states, as ``<body data-state>`` shows them."""


def state(browser: WebDriver) -> str:
    """The page's current state."""
    return str(browser.execute_script("return document.body.dataset.state"))


def wait_for_state(browser: WebDriver, *wanted: str, timeout: float = 15.0) -> str:
    """Wait until the page is in one of ``wanted`` states; returns it."""
    WebDriverWait(browser, timeout).until(lambda b: state(b) in wanted, f"page never reached {wanted}")
    return state(browser)


def open_page(browser: WebDriver, url: str, *, forget_language: bool = True, query: str = "") -> None:
    """Load the page fresh and wait until it shows in its language; drop the browser log of earlier pages.

    Unless told otherwise, the language a visitor chose on an earlier page is forgotten first (the page remembers it
    in the origin's local storage), so the browser's languages decide. ``query`` (``?scan=off``) is appended to the
    page's address.
    """
    browser.get("about:blank")
    browser.get_log("browser")
    if forget_language:
        browser.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": url, "storageTypes": "local_storage"})
    browser.get(f"{url}/{query}")
    wait_for_state(browser, "idle")
    WebDriverWait(browser, 10).until(
        lambda b: b.execute_script("return document.documentElement.dataset.i18nState") == "ready",
        "the page never showed in a language",
    )


def language(browser: WebDriver) -> str:
    """The page's language, as ``<html lang>`` says."""
    return str(browser.execute_script("return document.documentElement.lang"))


def find(browser: WebDriver, css: str) -> WebElement:
    """The one element matching ``css``."""
    return browser.find_element(By.CSS_SELECTOR, css)


def texts(browser: WebDriver, css: str) -> list[str]:
    """The visible texts of the elements matching ``css``."""
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css)]


def photo_to_result_ms(browser: WebDriver) -> float:
    """The page's own measure from the photo being taken or chosen to the answer painted on screen, ms."""
    script = "const m = performance.getEntriesByName('photo-to-result'); return m.length ? m[0].duration : null"
    WebDriverWait(browser, 5).until(lambda b: b.execute_script(script) is not None, "no photo-to-result measure")
    return float(browser.execute_script(script))


def wait_for_images(browser: WebDriver, css: str = ".card-image") -> None:
    """Wait until every image matching ``css`` has loaded (a broken one is removed by the page)."""
    script = f"return [...document.querySelectorAll('{css}')].every((i) => i.complete && i.naturalWidth > 0)"
    WebDriverWait(browser, 10).until(lambda b: b.execute_script(script), "images did not load")


def screenshot(browser: WebDriver, path: Path) -> Path:
    """A PNG of the whole page (beyond the viewport when the page is longer) at the device's pixel ratio."""
    browser.execute_script("return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    content = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    viewport = browser.execute_script("return [innerWidth, innerHeight]")
    clip = {"x": 0, "y": 0, "width": viewport[0], "height": max(viewport[1], math.ceil(content["height"])), "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
