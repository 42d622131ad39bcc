"""The painting localiser on synthetic wall photos with known quadrilaterals, and the closer look at one painting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image

from services.common.errors import InvalidFields
from services.geometric.app import create_app
from services.geometric.localise import Quad, box_iou, locate_paintings, order_corners, rectify
from services.geometric.paintings import CloseLookParams, look_closer, query_frame
from services.geometric.references import References
from services.geometric.settings import GeometricSettings
from services.geometric.verify import VerifyParams, extract_features
from services.geometric.wire import corners_from_wire
from tests.services.fakes import b64, encode, textured

WALL = (1024, 640)


def framed(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A seeded textured picture inside a 14 px gilded frame."""
    picture = np.asarray(textured(seed, size), dtype=np.uint8).copy()
    frame = 14
    out = np.empty((size[1] + 2 * frame, size[0] + 2 * frame, 3), np.uint8)
    out[:] = (176, 140, 60)
    out[frame:-frame, frame:-frame] = picture
    return out


def wall(seed: int = 0) -> np.ndarray:
    """A plain wall with a light gradient and sensor noise."""
    rng = np.random.default_rng(seed)
    width, height = WALL
    shade = np.linspace(0.9, 1.05, width)[None, :, None]
    base = np.array([205, 198, 186], np.float64)[None, None, :] * shade
    noisy = np.broadcast_to(base, (height, width, 3)) + rng.normal(0, 3, (height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def hang(photo: np.ndarray, picture: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """``picture`` warped onto ``photo`` so that its corners land on ``corners`` (pixels, clockwise from top-left)."""
    h, w = picture.shape[:2]
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    warp = cv2.getPerspectiveTransform(source, corners.astype(np.float32))
    size = (photo.shape[1], photo.shape[0])
    warped = cv2.warpPerspective(picture, warp, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, size, flags=cv2.INTER_NEAREST)
    out = photo.copy()
    out[mask > 0] = warped[mask > 0]
    return out


LEFT = np.array([[120, 140], [400, 160], [395, 420], [125, 450]], np.float64)
"""A painting seen a little from the side (its right edge farther away)."""
RIGHT = np.array([[610, 220], [760, 215], [765, 330], [612, 334]], np.float64)
"""A small painting (about 2.6 % of the photo)."""


@pytest.fixture(scope="module")
def two_paintings() -> np.ndarray:
    photo = hang(wall(), framed(21), LEFT)
    return hang(photo, framed(22, (240, 180)), RIGHT)


def fractions(corners: np.ndarray) -> np.ndarray:
    return corners / np.array(WALL, np.float64)


def test_finds_each_hung_painting_within_a_few_pixels(two_paintings):
    quads = locate_paintings(two_paintings)

    assert len(quads) == 2
    for quad, expected in zip(quads, (LEFT, RIGHT), strict=True):  # largest first
        error = np.abs(quad.corners * np.array(WALL) - expected).max()
        assert error < 8.0, (quad.corners * np.array(WALL), expected)
        assert 0.8 < quad.score <= 1.0


CORNER_CUT = np.array([[700, 380], [1150, 390], [1140, 760], [705, 750]], np.float64)
"""A painting the photo cuts at its bottom-right corner: about two thirds of it is in the picture."""
SIDE_CUT = np.array([[-160, 120], [260, 130], [255, 470], [-150, 480]], np.float64)
"""A painting the photo's left edge cuts through."""


@pytest.mark.parametrize("corners", [CORNER_CUT, SIDE_CUT], ids=["corner", "side"])
def test_finds_a_painting_the_photo_cuts(corners):
    photo = hang(wall(4), framed(23), corners)
    visible = np.clip(corners, 0, np.array(WALL) - 1)
    x0, y0 = visible.min(axis=0) / WALL
    x1, y1 = visible.max(axis=0) / WALL

    quads = locate_paintings(photo)

    box = np.array(quads[0].box)  # the largest
    assert np.abs(box - [x0, y0, x1, y1]).max() < 0.02, (box, (x0, y0, x1, y1))
    for other in quads[1:]:  # blobs of the picture's texture, found in the mask as it was before closing
        assert box_iou(other.box, quads[0].box) < 0.5 and other.area < 0.25 * quads[0].area


def test_a_dark_lens_corner_beside_a_cut_painting_does_not_swallow_it():
    corners = np.array([[250, 450], [560, 455], [555, 700], [255, 705]], np.float64)  # cut by the bottom edge
    photo = hang(wall(7), framed(25), corners)
    yy, xx = np.mgrid[: WALL[1], : WALL[0]]
    photo[(xx / 245.0) ** 2 + ((WALL[1] - yy) / 300.0) ** 2 < 1.0] = 8  # a fisheye's black corner, 8 px from the frame

    quads = locate_paintings(photo)

    expected = np.array([250, 450, 560, WALL[1] - 1]) / np.array([*WALL, *WALL])
    assert any(np.abs(np.array(q.box) - expected).max() < 0.02 for q in quads), [q.box for q in quads]


def test_a_line_across_the_photo_is_not_closed_into_a_painting():
    photo = wall(5)
    photo[300:306, :] = 60  # a dado rail from edge to edge
    photo[:, 500:504] = 60  # a door's edge from top to bottom

    assert locate_paintings(photo) == []


def test_no_box_on_a_blank_wall():
    assert locate_paintings(wall(3)) == []


def test_no_box_on_a_grey_image_without_edges():
    assert locate_paintings(np.full((300, 400), 128, np.uint8)) == []


def test_rectification_maps_the_crop_corners_onto_the_painting(two_paintings):
    quad = Quad(fractions(LEFT), 1.0)

    crop, to_photo = rectify(two_paintings, quad, 400)

    height, width = crop.shape[:2]
    assert max(width, height) == 400
    outline = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64).reshape(-1, 1, 2)
    mapped = cv2.perspectiveTransform(outline, to_photo).reshape(-1, 2)
    assert np.abs(mapped - LEFT).max() < 1e-6


def test_rectification_undoes_the_perspective(two_paintings):
    picture = framed(21)
    quad = Quad(fractions(LEFT), 1.0)

    crop, _ = rectify(two_paintings, quad, 400)

    expected = cv2.resize(picture, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_AREA)
    inner = (slice(20, -20), slice(20, -20))  # the warped edges are interpolated against the wall
    difference = np.abs(crop[inner].astype(np.float64) - expected[inner].astype(np.float64)).mean()
    unrelated = np.abs(np.asarray(textured(99, (crop.shape[1], crop.shape[0])))[inner].astype(np.float64) - crop[inner])
    assert difference < 25.0 < unrelated.mean()


def test_corners_are_ordered_clockwise_from_the_top_left():
    shuffled = np.array([[10, 90], [90, 10], [10, 10], [90, 90]], np.float64)

    assert order_corners(shuffled).tolist() == [[10, 10], [90, 10], [90, 90], [10, 90]]


@pytest.mark.parametrize(
    "image", [np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)]
)
def test_refuses_images_breaking_the_contract(image):
    with pytest.raises(ValueError, match="image must be"):
        locate_paintings(image)


def test_client_corners_must_outline_a_convex_quadrilateral():
    assert corners_from_wire([[0.1, 0.1], [0.5, 0.1], [0.5, 0.4], [0.1, 0.4]], field="c").shape == (4, 2)
    for bad in ([[0.1, 0.1], [0.5, 0.4], [0.5, 0.1], [0.1, 0.4]], [[0.2, 0.2]] * 4):
        with pytest.raises(InvalidFields):
            corners_from_wire(bad, field="c")


@pytest.fixture(scope="module")
def far_painting() -> tuple[np.ndarray, np.ndarray]:
    """A wall photo with a rich picture at about 1.3 % of it (seen at an angle) and a bigger, different one."""
    corners = np.array([[700, 330], [805, 336], [802, 415], [698, 410]], np.float64)
    photo = hang(wall(5), framed(31, (240, 180)), corners)
    photo = hang(photo, framed(32), LEFT)
    return photo, corners


def test_a_closer_look_verifies_a_small_painting_and_places_it_in_the_photo(tmp_path, far_painting):
    photo, corners = far_painting
    params = VerifyParams()
    references = References(tmp_path / "features.npz", autosave=False)
    references.put("far", extract_features(np.asarray(textured(31, (240, 180))), params, reference=True))
    references.put("other", extract_features(np.asarray(textured(33, (240, 180))), params, reference=True))

    look = look_closer(references, photo, fractions(corners), ["other"], shortlist=4, look=CloseLookParams())

    results = dict(look.results)
    assert look.votes[0].object_id == "far"
    assert results["far"] is not None and results["far"].verified
    assert results["other"] is not None and not results["other"].verified
    width, height, _ = query_frame(WALL[0], WALL[1], params)
    box = np.array(results["far"].query_box)
    # the reference has no frame: its outline is the frame's inside, 14 px in
    inner = fractions(np.array([[714, 344], [791, 401]], np.float64)).ravel()
    assert np.abs(box - inner).max() < 0.02, (box, inner)
    # the query frame is the photo at the service's query size
    assert results["far"].homography is not None and (width, height) == (params.max_side, params.max_side * 5 // 8)


@pytest.fixture
def service(tmp_path):
    settings = GeometricSettings(snapshot_dir=tmp_path, reload_interval_s=0, max_keypoints=2000)
    with TestClient(create_app(settings)) as client:
        for object_id, seed in (("far", 31), ("other", 33)):
            image = b64(encode(textured(seed, (240, 180)), "PNG"))
            assert client.put(f"/references/{object_id}", json={"image": image}).status_code == 200
        yield client


def test_extract_locates_the_paintings_when_asked(service, far_painting):
    photo = b64(encode(Image.fromarray(far_painting[0]), "PNG"))

    plain = service.post("/extract", json={"image": photo}).json()
    located = service.post("/extract", json={"image": photo, "paintings": True}).json()

    assert plain["paintings"] == []
    boxes = [p["box"] for p in located["paintings"]]
    assert len(boxes) == 2 and boxes[0][0] < 0.2 < 0.6 < boxes[1][0]  # LEFT (larger) first, then the far one
    assert all(len(p["corners"]) == 4 and 0 < p["score"] <= 1 for p in located["paintings"])


def test_match_paintings_verifies_each_painting_and_answers_in_the_photo(service, far_painting):
    photo, corners = far_painting
    body = {
        "image": b64(encode(Image.fromarray(photo), "PNG")),
        "paintings": [{"corners": fractions(corners).tolist(), "reference_ids": ["other"]}],
        "shortlist": 2,
    }

    response = service.post("/match/paintings", json=body)

    assert response.status_code == 200, response.text
    [painting] = response.json()["paintings"]
    assert painting["shortlist"][0]["reference_id"] == "far" and painting["keypoints"] > 100
    results = {r["reference_id"]: r for r in painting["results"]}
    assert results["far"]["verified"] and results["far"]["painting"] == 0
    assert not results["other"]["verified"]
    assert abs(results["far"]["query_box"][0] - 714 / WALL[0]) < 0.02


@pytest.mark.parametrize(
    "paintings",
    [
        [{"corners": [[0.1, 0.1], [0.5, 0.4], [0.5, 0.1], [0.1, 0.4]]}],  # a bow tie
        [{"corners": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.4]]}],  # three corners
        [{"corners": [[0.1, 0.1], [9.0, 0.1], [0.5, 0.4], [0.1, 0.4]]}],  # far outside the photo
        [],
    ],
)
def test_match_paintings_refuses_corners_that_outline_no_painting(service, paintings):
    image = b64(encode(Image.fromarray(wall()), "PNG"))

    response = service.post("/match/paintings", json={"image": image, "paintings": paintings})

    assert response.status_code in (400, 422) and response.json()["error"] in ("validation_error", "invalid_fields")
