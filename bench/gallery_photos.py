r"""Simulated gallery pictures from a collection's own references: dim rooms, glare, gilded frames, far views, action
cameras.

Real pictures taken inside a gallery are few (``../shared/data/estense-dev`` holds 17), so tuning on them alone
would fit single pictures. This script makes as many pictures of the same conditions as wanted from the reference
images themselves, with labels in the evaluation's format, so that ``artwork-matcher evaluate`` measures recall on
them. Each picture hangs one to three references (with a gilded frame) on a dark wall, some cut at the edges and
some a few percent of the frame, then applies what visitors' cameras add: perspective, dim warm light, a glare spot
on the varnish, fisheye distortion (action cameras), motion blur, sensor noise and JPEG. A share of pictures shows
an empty wall (the right answer is "no match"). With ``--captions`` a caption box (a light or dark plate with a name
in it, a quarter to nine tenths of the painting's width) is laid over every painting, drawn from its own random
stream so that the same ``--seed`` gives the same pictures with and without them: their effect is measured alone.

Usage::

    .venv/bin/python bench/gallery_photos.py --collection ../shared/data/museum-dev/objects --prefix estense_ \
        --count 60 --out /tmp/gallery-sim
    artwork-matcher evaluate --data ../shared/data/museum-dev --photos /tmp/gallery-sim/pictures \
        --labels /tmp/gallery-sim/labels.csv --workdir /tmp/eval-work --out /tmp/eval-sim --modes full
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

SIDE = 1024
"""Longest side of a simulated picture, as in the real gallery set."""


def load(path: Path, longest: int) -> np.ndarray:
    """An RGB reference scaled to ``longest`` pixels on its longest side."""
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def wall(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dim, slightly mottled wall."""
    base = rng.uniform(40, 120, 3) * np.array([1.0, 0.9, 0.75])
    grain = rng.normal(0, 12, (8, 12)).astype(np.float32)
    low = cv2.resize(grain, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    lit: np.ndarray = np.clip(base + low, 0, 255).astype(np.float32)
    return lit


def framed(painting: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The painting in a gilded frame whose width is 3-10 % of its shorter side."""
    h, w = painting.shape[:2]
    border = max(2, int(min(h, w) * rng.uniform(0.03, 0.10)))
    gold = np.array([150, 115, 50], np.float32) * rng.uniform(0.6, 1.2)
    frame = np.empty((h + 2 * border, w + 2 * border, 3), np.float32)
    shade = np.linspace(0.6, 1.3, border)[None, :, None]
    frame[:] = gold
    frame[:, :border] *= shade
    frame[:, -border:] *= shade[:, ::-1]
    frame[border:-border, border:-border] = painting
    return np.clip(frame, 0, 255)


CAPTION_WORDS = ("Ramon", "Herreros", "Edvard", "Munch", "Giovanni", "Bellini", "Maria", "Blanchard", "Sala", "XVII")
"""Words of the simulated caption boxes."""


def caption(painting: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A caption box laid over the painting ((H, W, 3) uint8, left as it is): a light or dark plate, 25-90 % of its
    width and 8-18 % of its height, anywhere on it, with one or two names in the contrasting colour."""
    h, w = painting.shape[:2]
    bw, bh = max(8, int(w * rng.uniform(0.25, 0.9))), max(6, int(h * rng.uniform(0.08, 0.18)))
    x, y = int(rng.uniform(0, w - bw)), int(rng.uniform(0, h - bh))
    light = rng.random() < 0.7
    plate, ink = (235.0, 20.0) if light else (25.0, 230.0)
    out = painting.copy()
    out[y : y + bh, x : x + bw] = plate
    text = " ".join(rng.choice(np.array(CAPTION_WORDS), size=int(rng.integers(1, 3))))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_COMPLEX, 1.0, 2)
    size = min(0.8 * bw / tw, 0.6 * bh / th)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_COMPLEX, size, max(1, int(size * 2)))
    origin = (x + (bw - tw) // 2, y + (bh + th) // 2)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_COMPLEX, size, (ink, ink, ink), max(1, int(size * 2)), cv2.LINE_AA)
    return out


def hang(canvas: np.ndarray, item: np.ndarray, x: int, y: int) -> bool:
    """Paste ``item`` with its top-left corner at (x, y), cut by the canvas edges; False when nothing shows."""
    h, w = item.shape[:2]
    ch, cw = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(cw, x + w), min(ch, y + h)
    if x1 - x0 < w * 0.6 or y1 - y0 < h * 0.6:  # at least 60 % of each side stays in the picture
        return False
    canvas[y0:y1, x0:x1] = item[y0 - y : y1 - y, x0 - x : x1 - x]
    return True


def camera(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Perspective, dim warm light, glare, fisheye, motion blur, noise."""
    h, w = image.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = (src + rng.uniform(-0.07, 0.07, (4, 2)) * (w, h)).astype(np.float32)
    out = cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT)
    dim = 255.0 * (out / 255.0) ** rng.uniform(1.0, 1.8) * rng.uniform(0.45, 1.0)  # dim, darker shadows
    tint = np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.65, 0.95)])  # warm tungsten light
    out = np.asarray(dim * tint, np.float32)
    if rng.random() < 0.5:  # a glare spot on the varnish
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        radius = rng.uniform(0.05, 0.18) * w
        out = (
            out
            + np.float32(rng.uniform(80, 200))
            * np.exp(-(((xx - cx) ** 2 + ((yy - cy) * 1.6) ** 2) / (2 * radius**2)))[..., None]
        )
    if rng.random() < 0.35:  # action camera: barrel distortion
        k = rng.uniform(0.15, 0.35)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        nx, ny = (xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)
        factor = 1 + k * (nx**2 + ny**2)
        out = cv2.remap(
            out, w / 2 + nx * factor * w / 2 / (1 + k), h / 2 + ny * factor * h / 2 / (1 + k), cv2.INTER_LINEAR
        )
    if rng.random() < 0.4:  # motion blur
        length = int(rng.integers(3, 9))
        line = np.zeros((length, length), np.float32)
        line[length // 2] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = np.asarray(cv2.warpAffine(line, rotation, (length, length)), np.float32)
        out = cv2.filter2D(out, -1, kernel / max(float(kernel.sum()), 1e-6))
    out = out + rng.normal(0, rng.uniform(3, 10), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def picture(
    references: list[Path], rng: np.random.Generator, captions: np.random.Generator | None = None
) -> tuple[np.ndarray, list[str]]:
    """One simulated picture and the ids of the references it shows (empty: a wall with no painting); with
    ``captions``, a caption box drawn from that stream over every painting."""
    height, width = (768, SIDE) if rng.random() < 0.8 else (SIDE, 768)
    canvas = wall(rng, height, width)
    shown: list[str] = []
    count = int(rng.choice([0, 1, 1, 2, 2, 3], p=[0.12, 0.3, 0.18, 0.2, 0.1, 0.1]))
    slots: list[float] = [float(v) for v in np.linspace(0, width, count + 1)]
    for i, path in enumerate(rng.choice(np.array(references, dtype=object), size=count, replace=False)):
        share = rng.uniform(0.03, 0.35) / max(1, count - 1) ** 0.5  # of the picture's area
        painting = load(path, 1024)
        ph, pw = painting.shape[:2]
        scale = np.sqrt(share * height * width / (ph * pw))
        painting = cv2.resize(
            painting, (max(8, int(pw * scale)), max(8, int(ph * scale))), interpolation=cv2.INTER_AREA
        )
        if captions is not None:
            painting = caption(painting, captions)
        item = framed(painting.astype(np.float32), rng)
        ih, iw = item.shape[:2]
        # within its own slot of the wall (paintings hang side by side), up to 20 % cut at the picture's edges
        low = slots[i] - (0.2 * iw if i == 0 else 0.0)
        high = slots[i + 1] - (0.8 * iw if i == count - 1 else iw)
        x = int(rng.uniform(low, max(low, high)))
        y = int(rng.uniform(-0.2 * ih, max(0, height - 0.8 * ih)))
        if hang(canvas, item, x, y):
            shown.append(Path(str(path)).stem)
    return camera(canvas, rng), shown


def main(argv: list[str] | None = None) -> int:
    """Write ``--count`` simulated pictures and their labels to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", type=Path, required=True, help="reference images (file stem = object id)")
    parser.add_argument("--prefix", default="", help="only references whose id starts with this (e.g. estense_)")
    parser.add_argument("--count", type=int, default=60, help="pictures to make")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for pictures/ and labels.csv")
    parser.add_argument("--captions", action="store_true", help="lay a caption box over every painting")
    args = parser.parse_args(argv)
    suffixes = {".jpg", ".jpeg", ".png", ".webp"}
    references = sorted(
        p for p in args.collection.iterdir() if p.suffix.lower() in suffixes and p.stem.startswith(args.prefix)
    )
    if len(references) < 3:
        parser.error(f"need at least 3 references in {args.collection} starting with {args.prefix!r}")
    rng = np.random.default_rng(args.seed)
    captions = np.random.default_rng([args.seed, 1]) if args.captions else None
    (args.out / "pictures").mkdir(parents=True, exist_ok=True)
    with open(args.out / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["picture_image_path", "painting_image_paths"])
        for n in range(args.count):
            image, shown = picture(references, rng, captions)
            name = f"gallery_sim__{args.seed:03d}_{n:04d}.jpg"
            Image.fromarray(image).save(args.out / "pictures" / name, quality=int(rng.integers(60, 92)))
            writer.writerow([name, ";".join(f"{s}.jpg" for s in shown)])
    print(f"{args.count} pictures in {args.out / 'pictures'}, labels in {args.out / 'labels.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
