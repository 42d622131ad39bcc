"""The card of a near-duplicate partner, in real headless Chromium: the page's own ``showFound`` fed a scripted
``/identify`` answer (two references of the same picture the photo cannot tell apart, then another artwork)."""

from __future__ import annotations

from selenium.webdriver.remote.webdriver import WebDriver

from tests.services.gateway.web.browser import open_page, texts

SHOW = """
  const [answer, done] = arguments;
  import('/static/render.js').then(({ showFound }) => {
    const region = document.createElement('section');
    region.id = 'scripted';
    document.body.append(region);
    showFound(region, answer, null);
    done();
  });
"""


def card(object_id: str, name: str, **flags) -> dict:
    return {
        "object_id": object_id,
        "name": name,
        "artist": "Painter",
        "year": "1890",
        "confidence": 0.95,
        "similarity_score": 0.9,
        "geometric_score": 0.8,
        "verification_method": "geometric",
        "image_url": f"/objects/{object_id}/image",
        "query_box": None,
        "near_duplicate_of": None,
        "near_duplicates": [],
        **flags,
    }


def test_the_partner_card_says_it_is_a_near_identical_version_and_is_not_counted(
    browser: WebDriver, gateway_url: str
) -> None:
    matches = [
        card("twin-a", "Harbour", near_duplicates=["twin-b"]),
        card("twin-b", "Harbour (copy)", near_duplicate_of="twin-a"),
        card("other", "Orchard"),
    ]
    open_page(browser, gateway_url)

    browser.execute_async_script(SHOW, {"match": matches[0], "matches": matches, "degraded": False})

    assert texts(browser, "#scripted .card-title") == ["Harbour", "Harbour (copy)", "Orchard"]
    assert texts(browser, "#scripted .card-near-duplicate") == [
        "",
        "A near-identical version of “Harbour”: your photo may show either.",
        "",
    ]
    assert texts(browser, "#scripted .result-title") == ["We found 2 artworks in your photo"]
