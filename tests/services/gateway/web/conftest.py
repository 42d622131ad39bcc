"""The visitor page under test: a real gateway on loopback over fake backends, and headless Chromium to drive it.

Chromium is Debian's (``chromium`` and ``chromium-driver``, installed by ``.ci/run``); a missing browser fails the
tests rather than skipping them. Screenshots and timings go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import pytest
import uvicorn
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from services.decision.rule import DecisionParams
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.services.gateway.web.fakes import FakeBackends, read_catalogue

ARTIFACTS = Path(__file__).resolve().parents[4] / "test-artifacts" / "web"

PHOTO = "y2019_qsd2_w1__00000.jpg"
"""A wall photo of one painting (La familia de l'artista, Alfred Figueras): the upload path."""
CAMERA_PHOTO = "y2019_qsd2_w1__00019.jpg"
"""A wall photo of one painting (Tots els peixos de la Mediterrania): what the fake camera films."""
TWO_PAINTINGS = "y2019_qsd1_w4__00000.jpg"
"""A wall photo of two paintings side by side."""
NON_ART = "nonart__bikes1.jpg"
"""Bicycles in a street: no artwork."""
ROOM_OBJECT = "estense_000"
"""A Galleria Estense painting whose catalogue entry has a room; its reference image is uploaded as a photo."""
ROOM_OBJECT_DESCRIPTION = "Jupiter, as a white bull, carries Europa across the sea."
"""The description the test gives ``ROOM_OBJECT``'s catalogue entry."""
ROOM_OBJECT_LINK = "https://example.org/collection/estense_000"
"""The link the test gives ``ROOM_OBJECT``'s catalogue entry."""

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)
VIEWPORT = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
"""A phone's viewport (CSS pixels); screenshots are taken at twice that."""


def labelled(museum_dev: Path, picture: str) -> list[str]:
    """The object ids ``labels.csv`` says the picture shows."""
    for line in (museum_dev / "labels.csv").read_text().splitlines()[1:]:
        name, _, objects = line.partition(",")
        if name == picture:
            return [Path(p).stem for p in objects.split(";") if p]
    raise KeyError(picture)


@pytest.fixture(scope="session")
def backends(museum_dev: Path) -> FakeBackends:
    """Fakes that know the test photos by sight."""
    catalogue = read_catalogue(museum_dev)
    catalogue[ROOM_OBJECT] = msgspec.structs.replace(
        catalogue[ROOM_OBJECT], description=ROOM_OBJECT_DESCRIPTION, link=ROOM_OBJECT_LINK
    )
    fakes = FakeBackends(catalogue)
    for picture in (PHOTO, CAMERA_PHOTO, TWO_PAINTINGS):
        fakes.know(museum_dev / "pictures" / picture, labelled(museum_dev, picture))
    fakes.know(museum_dev / "objects" / f"{ROOM_OBJECT}.jpg", [ROOM_OBJECT])
    return fakes


@pytest.fixture(scope="session")
def gateway_url(backends: FakeBackends, museum_dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real gateway (uvicorn, loopback, a free port) over the fakes; reference images read in place."""
    settings = GatewaySettings(
        snapshot_dir=tmp_path_factory.mktemp("snapshot"), images_dir=museum_dev / "objects", retries=0
    )
    app = create_app(settings, params=DecisionParams(), **backends.clients())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the gateway did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def write_y4m(image: Image.Image, path: Path, frames: int = 3, *, shift: float = 0.0) -> Path:
    """Write ``image`` as a raw YUV4MPEG2 4:2:0 video (full-range JPEG YCbCr) that Chromium's fake camera plays.

    With ``shift``, frame ``i`` is the image rolled sideways by ``i * shift`` of its width: a phone that moves.
    """
    image = image.convert("RGB")
    width, height = image.width // 2 * 2, image.height // 2 * 2
    still = np.asarray(image.crop((0, 0, width, height)))
    half = (width // 2, height // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            frame = Image.fromarray(np.roll(still, round(i * shift * width), axis=1))
            y, cb, cr = frame.convert("YCbCr").split()
            out.write(
                b"FRAME\n"
                + np.asarray(y).tobytes()
                + np.asarray(cb.resize(half, Image.Resampling.BOX)).tobytes()
                + np.asarray(cr.resize(half, Image.Resampling.BOX)).tobytes()
            )
    return path


@pytest.fixture(scope="session")
def camera_video(museum_dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake camera's video: a still of a real wall photo, made at test time."""
    with Image.open(museum_dev / "pictures" / CAMERA_PHOTO) as photo:
        return write_y4m(photo, tmp_path_factory.mktemp("camera") / "camera.y4m")


def launch_chromium(camera_video: Path, profile: Path, languages: str = "en-US,en") -> webdriver.Chrome:
    """Headless Chromium with a phone-sized viewport, a fake rear camera playing ``camera_video``, and the visitor's
    ``languages`` (best first, as a browser's language settings list them: ``--lang`` and ``intl.accept_languages``).
    """
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.fail(
            "the browser tests need Debian's Chromium and its WebDriver: "
            "apt-get install -y chromium chromium-driver (.ci/run installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--use-file-for-fake-video-capture={camera_video}")
    options.add_argument(f"--window-size={VIEWPORT['width']},{VIEWPORT['height']}")
    options.add_argument(f"--lang={languages.split(',')[0]}")
    options.add_experimental_option("prefs", {"intl.accept_languages": languages})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", VIEWPORT)
        driver.set_script_timeout(30)
    except Exception:
        driver.quit()
        raise
    return driver


@pytest.fixture(scope="session")
def browser(camera_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium set to English, with a phone-sized viewport and a fake rear camera filming ``CAMERA_PHOTO``."""
    driver = launch_chromium(camera_video, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots and timings go (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
