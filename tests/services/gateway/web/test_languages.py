"""The visitor page in the visitor's language, in real headless Chromium against a real gateway over fake backends.

The page follows the browser's languages, the switch changes the language (and the choice is remembered), and the
answers and error panels come in the chosen language. Screenshots go to ``test-artifacts/web/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.services.gateway.web.browser import (
    find,
    language,
    open_page,
    screenshot,
    texts,
    wait_for_images,
    wait_for_state,
)
from tests.services.gateway.web.conftest import NON_ART, PHOTO, TWO_PAINTINGS, launch_chromium

CATALAN_VISITOR = "ca-ES,ca,es,en"
"""A Catalan browser's language settings, best first."""
BASQUE_VISITOR = "eu,de-AT,en"
"""A visitor whose first language the page does not offer; Austrian German comes next."""


@pytest.fixture
def visitor_browser(
    request: pytest.FixtureRequest, camera_video: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebDriver]:
    """A fresh Chromium whose language settings are ``request.param``."""
    driver = launch_chromium(camera_video, tmp_path_factory.mktemp("chromium-profile"), languages=request.param)
    try:
        yield driver
    finally:
        driver.quit()


def choose_language(browser: WebDriver, code: str) -> None:
    """Pick ``code`` in the page's language switch and wait until the page shows in it."""
    Select(find(browser, "#language")).select_by_value(code)
    WebDriverWait(browser, 5).until(lambda b: language(b) == code, f"the page never switched to {code}")


def upload(browser: WebDriver, photo: Path, until: str) -> None:
    """Choose ``photo`` in the file input and wait for the page to reach state ``until``."""
    find(browser, "#file").send_keys(str(photo))
    wait_for_state(browser, until)


def console_problems(browser: WebDriver) -> list[dict]:
    """Console errors and warnings (a Content-Security-Policy violation is one) since the last look."""
    return [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


@pytest.mark.parametrize("visitor_browser", [CATALAN_VISITOR], indirect=True)
def test_the_page_speaks_the_browsers_first_language(
    visitor_browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path
) -> None:
    browser = visitor_browser
    open_page(browser, gateway_url)

    assert browser.execute_script("return navigator.languages") == ["ca-ES", "ca", "es", "en"]
    assert language(browser) == "ca"
    assert browser.title == "Quin quadre és aquest?"
    assert texts(browser, "h1") == ["Quin quadre és aquest?"]
    assert find(browser, "#file").accessible_name == "Tria una foto"
    assert find(browser, "#camera-start").text == "Fes servir la càmera"
    assert find(browser, "#language").accessible_name == "Idioma"
    assert Select(find(browser, "#language")).first_selected_option.text == "Català"
    screenshot(browser, artifacts / "start-ca.png")

    upload(browser, museum_dev / "pictures" / NON_ART, until="nomatch")
    assert texts(browser, ".result-title") == ["No forma part d'aquesta col·lecció"]
    assert find(browser, ".again").text == "Torna-ho a provar"
    assert console_problems(browser) == []


@pytest.mark.parametrize("visitor_browser", [BASQUE_VISITOR], indirect=True)
def test_a_language_not_offered_gives_way_to_the_next_one_the_visitor_reads(
    visitor_browser: WebDriver, gateway_url: str
) -> None:
    open_page(visitor_browser, gateway_url)

    assert language(visitor_browser) == "de", "Basque is not offered; de-AT is served as German"
    assert texts(visitor_browser, "h1") == ["Welches Gemälde ist das?"]


def test_the_language_is_picked_from_the_browsers_list(browser: WebDriver, gateway_url: str) -> None:
    open_page(browser, gateway_url)
    picked = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const { pickLanguage } = await import('/static/i18n.js');
        done([['fr-CA', 'en'], ['pt-BR', 'es-419'], ['CA'], ['de-CH-1996'], ['ja', 'zh'], [], undefined]
          .map((list) => pickLanguage(list)));
        """
    )
    assert picked == ["fr", "es", "ca", "de", "en", "en", "en"]


def test_the_switch_changes_every_word_and_the_choice_is_remembered(
    browser: WebDriver, gateway_url: str, artifacts: Path
) -> None:
    open_page(browser, gateway_url)
    assert language(browser) == "en"
    names = [option.text for option in Select(find(browser, "#language")).options]
    assert names[:5] == ["English", "Español", "Català", "Français", "Deutsch"]

    choose_language(browser, "es")
    assert browser.title == "¿Qué cuadro es este?"
    assert texts(browser, ".lede") == ["Apunta con el móvil a un cuadro y hazle una foto. Te diremos cuál es."]
    assert find(browser, "#file").accessible_name == "Elegir una foto"
    assert find(browser, "#shutter").get_attribute("aria-label") == "Hacer la foto"
    assert find(browser, "#video").get_attribute("aria-label") == "Vista de la cámara"
    assert find(browser, "#result").get_attribute("aria-label") == "Resultado"
    assert find(browser, "#language").accessible_name == "Idioma"
    stored = browser.execute_script("return Object.fromEntries(Object.entries(localStorage))")
    assert stored == {"artwork-matcher.language": "es"}, "only the language code is stored"
    screenshot(browser, artifacts / "start-es.png")

    open_page(browser, gateway_url, forget_language=False)
    assert language(browser) == "es", "the choice outlives the visit"
    assert texts(browser, "h1") == ["¿Qué cuadro es este?"]
    assert console_problems(browser) == []


def test_an_answer_reads_in_the_chosen_language(
    browser: WebDriver, gateway_url: str, museum_dev: Path, artifacts: Path
) -> None:
    open_page(browser, gateway_url)
    choose_language(browser, "es")
    upload(browser, museum_dev / "pictures" / PHOTO, until="result")

    assert texts(browser, ".result-title") == ["¡Lo hemos encontrado!"]
    assert texts(browser, ".confidence") == ["Muy probable"]
    assert find(browser, ".confidence").get_attribute("title").startswith("Confianza: ")
    alt = find(browser, ".card-image").get_attribute("alt")
    assert alt == "Imagen de «La familia de l'artista» de la colección del museo"
    wait_for_images(browser)
    screenshot(browser, artifacts / "result-es.png")

    choose_language(browser, "de")
    assert texts(browser, ".result-title") == ["Gefunden!"], "the answer on screen follows the switch"
    assert texts(browser, ".confidence") == ["Sehr sicher"]
    assert find(browser, ".again").text == "Weiteres Gemälde suchen"

    find(browser, ".again").click()
    wait_for_state(browser, "idle")
    upload(browser, museum_dev / "pictures" / TWO_PAINTINGS, until="result")
    assert texts(browser, ".result-title") == ["Wir haben 2 Kunstwerke auf Ihrem Foto gefunden"]


def test_an_error_panel_shows_in_the_chosen_language(
    browser: WebDriver, gateway_url: str, tmp_path: Path, artifacts: Path
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (640, 480), (128, 128, 128)).save(blank)
    open_page(browser, gateway_url)
    choose_language(browser, "de")
    upload(browser, blank, until="error")

    assert texts(browser, ".result-title") == ["Wir konnten dieses Foto nicht lesen"]
    assert texts(browser, ".problem-hint") == ["Bitte nehmen Sie das Foto erneut auf oder wählen Sie ein anderes."]
    detail = find(browser, ".problem-detail")
    assert "blank" in detail.text and detail.get_attribute("lang") == "en", "the server's words, marked as English"
    assert find(browser, ".again").text == "Erneut versuchen"
    screenshot(browser, artifacts / "bad-photo-de.png")

    choose_language(browser, "fr")
    assert texts(browser, ".result-title") == ["Nous n'avons pas pu lire cette photo"]
    assert texts(browser, ".problem-hint") == ["Reprenez la photo ou choisissez-en une autre."]


def test_a_file_that_is_not_an_image_is_explained_in_the_chosen_language(
    browser: WebDriver, gateway_url: str, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    open_page(browser, gateway_url)
    choose_language(browser, "ca")
    upload(browser, notes, until="error")

    assert texts(browser, ".result-title") == ["Aquest fitxer no és una foto que puguem obrir"]
    assert texts(browser, ".problem-detail") == ["notes.txt no és una imatge."]


GATEWAY_PROBLEMS = """
  const done = arguments[arguments.length - 1];
  const [code, status, retryAfter] = arguments;
  const { setLanguage, t } = await import('/static/i18n.js');
  const { ApiError } = await import('/static/api.js');
  const { describeProblem } = await import('/static/problems.js');
  const said = {};
  for (const language of ['en', 'es', 'ca', 'fr', 'de']) {
    await setLanguage(language);
    const problem = describeProblem(new ApiError(status, { error: code, message: 'm' }, retryAfter));
    said[language] = [t(problem.title, problem.args), t(problem.hint, problem.args)];
  }
  await setLanguage('en');
  done(said);
"""


@pytest.mark.parametrize(
    ("code", "status", "retry_after", "french"),
    [
        ("rate_limited", 429, "1", ["Beaucoup de visiteurs en ce moment", "Patientez 1 seconde, puis réessayez."]),
        ("rate_limited", 429, "30", ["Beaucoup de visiteurs en ce moment", "Patientez 30 secondes, puis réessayez."]),
        ("backend_timeout", 504, None, ["Le service de reconnaissance met trop de temps à répondre", None]),
        ("image_too_large", 413, None, ["Cette photo est trop volumineuse", "Choisissez une photo plus petite."]),
        ("not_ready", 503, None, ["Le service de reconnaissance est en train de démarrer", None]),
    ],
)
def test_the_gateways_error_codes_are_told_in_every_language(
    browser: WebDriver, gateway_url: str, code: str, status: int, retry_after: str | None, french: list
) -> None:
    open_page(browser, gateway_url)
    said = browser.execute_async_script(GATEWAY_PROBLEMS, code, status, retry_after)

    assert said["fr"][0] == french[0]
    if french[1]:
        assert said["fr"][1] == french[1]
    titles = {language: title for language, (title, _) in said.items()}
    assert len(set(titles.values())) == 5, f"each language has its own words: {titles}"
    assert not any(text.startswith("problem.") for pair in said.values() for text in pair), "no bare message keys"
