"""The curator page in headless Chromium against the real stack (four service processes, the real model):
sign in, see the collection report's flags, add an artwork → a visitor's photo of it is identified → edit it →
delete it after a confirmation → the same photo is "no match". Screenshots of each step go to
``test-artifacts/web/curate-*.png``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from services.collection.doctor import examine_snapshot
from services.collection.report_file import (
    ArtworkFinding,
    Flag,
    PairFinding,
    read_report,
    write_report,
)
from tests.integration.conftest import small_snapshot  # noqa: F401  (the real-model snapshot fixture)
from tests.services.gateway.web.browser import find, open_page, screenshot, texts, wait_for_state
from tests.support import API_KEY, HELD_OUT, free_port, read_labels
from tools.cli.local_stack import SERVICES, LocalStack

TITLE = "Held-out painting"
RENAMED = "Renamed painting"
DESCRIPTION = "Added by the curator page's test."
LINK = "https://example.org/held-out"


@pytest.fixture(scope="module")
def curated_stack(small_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:  # noqa: F811
    """A private copy of the small real snapshot with its collection report, served by the four services."""
    snapshot = tmp_path_factory.mktemp("curated") / "snapshot"
    shutil.copytree(small_snapshot, snapshot)
    write_report(snapshot, examine_snapshot(snapshot))
    local = LocalStack(
        snapshot,
        ports={name: free_port() for name in SERVICES},
        env={"GATEWAY_API_KEY": API_KEY, "SEARCH_RELOAD_INTERVAL_S": "1", "GEOMETRIC_RELOAD_INTERVAL_S": "1"},
        log_dir=tmp_path_factory.mktemp("curated-logs"),
    )
    with local.running(timeout_s=180):
        yield local


@pytest.fixture(scope="module")
def held_out_photo(museum_dev: Path) -> Path:
    """A visitor's wall photo of :data:`HELD_OUT`, the artwork the snapshot lacks."""
    labels = read_labels(museum_dev)
    name = next(p for p, ids in sorted(labels.items()) if ids == [HELD_OUT] and "qsd2_w1" in p)
    return museum_dev / "pictures" / name


def open_curator_page(browser: WebDriver, gateway: str) -> None:
    """Load ``/curate`` fresh and wait until it shows in its language."""
    browser.get(f"{gateway}/curate")
    WebDriverWait(browser, 10).until(
        lambda b: b.execute_script("return document.documentElement.dataset.i18nState") == "ready",
        "the curator page never showed in a language",
    )


def sign_in(browser: WebDriver, key: str) -> None:
    """Type ``key`` into the sign-in form and submit it."""
    field = find(browser, "#api-key")
    field.clear()
    field.send_keys(key)
    find(browser, "#sign-in button[type=submit]").click()


def wait_for(browser: WebDriver, script: str, message: str, timeout: float = 30.0) -> None:
    """Wait until ``script`` (a JavaScript expression) is true in the page."""
    WebDriverWait(browser, timeout).until(lambda b: b.execute_script(f"return Boolean({script})"), message)


def click(browser: WebDriver, css: str) -> None:
    """Scroll the element matching ``css`` into the middle of its scrolling box (a long dialog) and click it."""
    element = find(browser, css)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def item(object_id: str) -> str:
    """The CSS selector of one artwork of the list."""
    return f".artwork[data-object-id='{object_id}']"


def status(browser: WebDriver) -> str:
    """The page's status line."""
    return str(find(browser, "#status").text)


def identify_on_visitor_page(browser: WebDriver, gateway: str, photo: Path) -> str:
    """Upload ``photo`` on the visitor page; returns the state it ends in (``result`` or ``nomatch``)."""
    open_page(browser, gateway)
    find(browser, "#file").send_keys(str(photo))
    return wait_for_state(browser, "result", "nomatch", "error", timeout=60)


def signed_in(browser: WebDriver, gateway: str) -> None:
    """Open the curator page and sign in with the right key; waits for the catalogue."""
    open_curator_page(browser, gateway)
    sign_in(browser, API_KEY)
    wait_for(browser, "document.querySelectorAll('.artwork').length > 0", "the catalogue never showed")


def test_a_curator_adds_edits_and_deletes_an_artwork_that_visitors_then_find_and_no_longer_find(
    browser: WebDriver, curated_stack: LocalStack, held_out_photo: Path, museum_dev: Path, artifacts: Path
) -> None:
    gateway = curated_stack.url("gateway")

    # Sign in: a wrong key is refused; the right one opens the catalogue with the report's flags.
    open_curator_page(browser, gateway)
    screenshot(browser, artifacts / "curate-sign-in.png")
    sign_in(browser, "not-the-key")
    wait_for(browser, "!document.getElementById('sign-in-error').hidden", "a wrong key was not refused")
    assert find(browser, "#sign-in-error").text == "That admin key is not right."
    sign_in(browser, API_KEY)
    wait_for(browser, "document.querySelectorAll('.artwork').length === 20", "the 20 artworks never showed")
    assert browser.execute_script("return document.body.dataset.state") == "signed-in"
    assert API_KEY not in browser.current_url
    stored = browser.execute_script("return JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])")
    assert API_KEY not in stored, "the key is kept in memory only"
    assert find(browser, "#report-summary").text.startswith("Report of ")
    flagged = browser.find_elements(By.CSS_SELECTOR, ".artwork .flags .chip")
    assert flagged, "the report's flags are shown on the artworks"
    screenshot(browser, artifacts / "curate-list.png")

    # Add the held-out artwork with its photo, description and link.
    click(browser, "#add")
    find(browser, "#object-id").send_keys(HELD_OUT)
    find(browser, "#image").send_keys(str(museum_dev / "objects" / f"{HELD_OUT}.jpg"))
    find(browser, "#title").send_keys(TITLE)
    find(browser, "#artist").send_keys("Test Artist")
    find(browser, "#description").send_keys(DESCRIPTION)
    find(browser, "#link").send_keys(LINK)
    screenshot(browser, artifacts / "curate-add.png")
    click(browser, "#editor-save")
    wait_for(browser, f'document.querySelector("{item(HELD_OUT)}")', "the added artwork never appeared", 90)
    assert status(browser) == f"Added “{TITLE}”."
    assert texts(browser, f"{item(HELD_OUT)} .artwork-title") == [TITLE]
    screenshot(browser, artifacts / "curate-added.png")

    # A visitor's photo of it is identified, with the curator's description and link.
    assert identify_on_visitor_page(browser, gateway, held_out_photo) == "result"
    assert texts(browser, ".card-title")[0] == TITLE
    wait_for(browser, "!document.querySelector('.card-description').hidden", "the description never showed")
    assert texts(browser, ".card-description")[0] == DESCRIPTION
    screenshot(browser, artifacts / "curate-identified.png")

    # Back on the curator page the key is gone (it lived in the page's memory); edit the artwork's title.
    open_curator_page(browser, gateway)
    assert browser.execute_script("return document.body.dataset.state") == "signed-out"
    sign_in(browser, API_KEY)
    wait_for(browser, f'document.querySelector("{item(HELD_OUT)}")', "the catalogue never showed")
    find(browser, "#search").send_keys(HELD_OUT)
    wait_for(browser, "document.querySelectorAll('.artwork').length === 1", "the search did not narrow the list")
    click(browser, f"{item(HELD_OUT)} .edit")
    assert find(browser, "#title").get_attribute("value") == TITLE
    assert find(browser, "#link").get_attribute("value") == LINK
    find(browser, "#title").clear()
    find(browser, "#title").send_keys(RENAMED)
    click(browser, "#editor-save")
    wait_for(browser, f"document.getElementById('status').textContent === 'Saved “{RENAMED}”.'", "never saved", 90)
    assert texts(browser, f"{item(HELD_OUT)} .artwork-title") == [RENAMED]
    screenshot(browser, artifacts / "curate-edited.png")
    # Replace its image (the same picture again): the whole artwork is sent and the thumbnail is fetched anew.
    click(browser, f"{item(HELD_OUT)} .edit")
    find(browser, "#image").send_keys(str(museum_dev / "objects" / f"{HELD_OUT}.jpg"))
    click(browser, "#editor-save")
    wait_for(browser, f"document.querySelector(\"{item(HELD_OUT)} .thumb\").src.endsWith('?v=1')", "no new image", 90)
    assert status(browser) == f"Saved “{RENAMED}”."
    assert identify_on_visitor_page(browser, gateway, held_out_photo) == "result"
    assert texts(browser, ".card-title")[0] == RENAMED

    # Delete it after the confirmation; the same photo is then "not in this collection".
    signed_in(browser, gateway)
    find(browser, "#search").send_keys(HELD_OUT)
    wait_for(browser, "document.querySelectorAll('.artwork').length === 1", "the search did not narrow the list")
    click(browser, f"{item(HELD_OUT)} .delete")
    wait_for(browser, "document.getElementById('confirm').open", "no confirmation was asked")
    assert HELD_OUT in find(browser, "#confirm-text").text
    screenshot(browser, artifacts / "curate-confirm.png")
    click(browser, "#confirm-cancel")
    assert browser.find_elements(By.CSS_SELECTOR, item(HELD_OUT)), "cancelling keeps the artwork"
    click(browser, f"{item(HELD_OUT)} .delete")
    click(browser, "#confirm-delete")
    wait_for(browser, f'!document.querySelector("{item(HELD_OUT)}")', "the artwork was never removed", 60)
    assert status(browser) == f"Deleted “{RENAMED}”."
    screenshot(browser, artifacts / "curate-deleted.png")
    assert identify_on_visitor_page(browser, gateway, held_out_photo) == "nomatch"
    screenshot(browser, artifacts / "curate-no-match.png")


def test_replacing_an_image_on_the_curator_page_keeps_the_artworks_other_catalogue_fields(
    browser: WebDriver, curated_stack: LocalStack, museum_dev: Path
) -> None:
    gateway = curated_stack.url("gateway")
    object_id = "mcv_bbdd_00000"
    before = httpx.get(f"{gateway}/objects/{object_id}").json()
    assert before["extra"], "the catalogue's extra columns (source, license) are stored"

    signed_in(browser, gateway)
    click(browser, f"{item(object_id)} .edit")
    find(browser, "#image").send_keys(str(museum_dev / "objects" / f"{object_id}.jpg"))
    click(browser, "#editor-save")
    wait_for(browser, f"document.querySelector(\"{item(object_id)} .thumb\").src.endsWith('?v=1')", "not saved", 90)

    after = httpx.get(f"{gateway}/objects/{object_id}").json()
    assert after["extra"] == before["extra"] and after["name"] == before["name"]


def test_a_pair_the_report_names_is_shown_on_both_artworks_and_the_flagged_filter_keeps_them(
    browser: WebDriver, curated_stack: LocalStack, artifacts: Path
) -> None:
    real = read_report(curated_stack.snapshot)
    assert real is not None
    pair = PairFinding(Flag.NEAR_DUPLICATE, "mcv_bbdd_00002", "mcv_bbdd_00003", 0.97, 120)
    findings = [
        ArtworkFinding(a, "", [Flag.NEAR_DUPLICATE], {"near_duplicate": f"shows the same picture as {b}"}, [b])
        for a, b in (("mcv_bbdd_00002", "mcv_bbdd_00003"), ("mcv_bbdd_00003", "mcv_bbdd_00002"))
    ]
    counts = {flag.value: 0 for flag in Flag} | {"near_duplicate": 2}
    write_report(curated_stack.snapshot, msgspec.structs.replace(real, counts=counts, artworks=findings, pairs=[pair]))
    try:
        signed_in(browser, curated_stack.url("gateway"))
        chip = find(browser, f"{item('mcv_bbdd_00002')} .flags .chip")
        assert chip.text == "Near-duplicate"
        assert chip.get_attribute("title") == "shows the same picture as mcv_bbdd_00003"
        assert texts(browser, f"{item('mcv_bbdd_00002')} .related") == ["Compare with mcv_bbdd_00003"]
        assert texts(browser, "#report-counts .chip") == ["Near-duplicate: 2"]
        click(browser, "#flagged-only")
        wait_for(browser, "document.querySelectorAll('.artwork').length === 2", "the filter kept other artworks")
        screenshot(browser, artifacts / "curate-flagged.png")
    finally:
        write_report(curated_stack.snapshot, real)
