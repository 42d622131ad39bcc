r"""Make the demo's paintings (``tools/cli/paintings/``) from Debian's ``gcompris-qt-data`` package.

GCompris's "paintings" activity ships famous public-domain paintings cut into jigsaw pieces (WebP with alpha) inside
a Qt resource bundle, ``/usr/share/gcompris-qt/rcc/paintings.rcc``, with one board file per painting giving each
piece's centre as a fraction of a 702 × 515 board. This script reads the bundle (a small reader of Qt's ``.rcc``
format: tree, names, data; zlib-compressed entries), puts each chosen painting's pieces back together, downscales it
to 640 px on its longer side and writes it as a JPEG with the manifest (title, artist, the artist's death year,
source, licences, why it is public domain). Only paintings whose painter died more than 100 years ago are taken,
and only flat works (no sculpture): a faithful photograph of a 2-D public-domain work adds no copyright of its own.

Usage::

    apt-get download gcompris-qt-data && dpkg-deb --fsys-tarfile gcompris-qt-data_*.deb \
        | tar -x ./usr/share/gcompris-qt/rcc/paintings.rcc
    .venv/bin/python bench/demo_paintings.py usr/share/gcompris-qt/rcc/paintings.rcc --out tools/cli/paintings
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

BOARD = (702, 515)
"""The activity's board in pixels; piece centres are fractions of it."""
MAX_SIDE = 640
"""Longest side of a demo painting, pixels."""
_PIECE = r'"pixmapfile"\s*:\s*"(image/[^"]+\.webp)",\s*"x"\s*:\s*"([\d.]+)",\s*"y"\s*:\s*"([\d.]+)"'
"""A piece of a board file: its image and the fractions of the board where its centre goes."""
PACKAGE = "Debian gcompris-qt-data 3.1-2 (/usr/share/gcompris-qt/rcc/paintings.rcc, activity 'paintings')"
PACKAGE_LICENCE = "GPL-3.0-or-later (GCompris; images from the WebMuseum, Nicolas Pioch)"


@dataclass(frozen=True)
class Painting:
    """One painting of the activity and how the demo uses it."""

    object_id: str
    board: int
    title: str
    artist: str
    died: int
    date: str
    role: str  # "collection" or "outsider" (a photo of it must be answered "no match")


PAINTINGS = (
    Painting(
        "renoir_moulin_de_la_galette",
        1,
        "Bal du moulin de la Galette",
        "Pierre-Auguste Renoir",
        1919,
        "1876",
        "collection",
    ),
    Painting(
        "arcimboldo_spring",
        2,
        "Spring",
        "Giuseppe Arcimboldo",
        1593,
        "1573",
        "collection",
    ),
    Painting(
        "arcimboldo_librarian",
        3,
        "The Librarian",
        "Giuseppe Arcimboldo",
        1593,
        "c. 1566",
        "outsider",
    ),
    Painting(
        "hokusai_oiran_kamuro",
        4,
        "Oiran and Kamuro",
        "Katsushika Hokusai",
        1849,
        "",
        "collection",
    ),
    Painting(
        "hokusai_woman_with_fan",
        5,
        "Woman Holding a Fan",
        "Katsushika Hokusai",
        1849,
        "",
        "collection",
    ),
    Painting(
        "hokusai_ejiri",
        6,
        "Ejiri in Suruga Province",
        "Katsushika Hokusai",
        1849,
        "c. 1830–1832",
        "collection",
    ),
    Painting(
        "hokusai_great_wave",
        7,
        "The Great Wave off Kanagawa",
        "Katsushika Hokusai",
        1849,
        "c. 1831",
        "collection",
    ),
    Painting(
        "hiroshige_inokashira_snow",
        8,
        "The Benzaiten Shrine at Inokashira in Snow",
        "Utagawa Hiroshige",
        1858,
        "",
        "collection",
    ),
    Painting(
        "hiroshige_mackerel_prawn",
        9,
        "Horse-mackerel and Prawn",
        "Utagawa Hiroshige",
        1858,
        "c. 1840",
        "outsider",
    ),
    Painting(
        "hokusai_ryogoku_bridge",
        10,
        "Sunset over Ryōgoku Bridge from the Ommaya Embankment",
        "Katsushika Hokusai",
        1849,
        "c. 1830",
        "collection",
    ),
    Painting(
        "hokusai_poppies",
        11,
        "Poppies",
        "Katsushika Hokusai",
        1849,
        "c. 1833",
        "collection",
    ),
    Painting(
        "hokusai_kazusa_sea_route",
        12,
        "The Kazusa Sea Route",
        "Katsushika Hokusai",
        1849,
        "c. 1830",
        "collection",
    ),
    Painting(
        "leonardo_mona_lisa",
        14,
        "Mona Lisa",
        "Leonardo da Vinci",
        1519,
        "1503–1519",
        "collection",
    ),
    Painting(
        "bellini_pala_di_pesaro",
        15,
        "Pesaro Altarpiece (detail)",
        "Giovanni Bellini",
        1516,
        "c. 1475–1485",
        "collection",
    ),
    Painting(
        "durer_lion",
        16,
        "Lion",
        "Albrecht Dürer",
        1528,
        "1494",
        "outsider",
    ),
    Painting(
        "bruegel_harvesters",
        17,
        "The Harvesters",
        "Pieter Bruegel the Elder",
        1569,
        "1565",
        "collection",
    ),
    Painting(
        "renoir_girls_at_the_piano",
        18,
        "Girls at the Piano",
        "Pierre-Auguste Renoir",
        1919,
        "1892",
        "outsider",
    ),
    Painting(
        "bazille_ramparts",
        20,
        "The Ramparts at Aigues-Mortes",
        "Frédéric Bazille",
        1870,
        "1867",
        "collection",
    ),
    Painting(
        "van_gogh_auvers",
        22,
        "Village Street in Auvers",
        "Vincent van Gogh",
        1890,
        "1890",
        "collection",
    ),
)
"""The demo's paintings: Kandinsky (died 1944), Cassatt (1926) and Michelangelo's Pietà (a sculpture) are left out."""


def read_rcc(data: bytes) -> dict[str, bytes]:
    """Every file of a Qt resource bundle (``.rcc``, format versions 1–3) by its path."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle (no 'qres' magic)")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    entry_size = 14 if version == 1 else 22
    files: dict[str, bytes] = {}

    def name_at(offset: int) -> str:
        length = struct.unpack(">H", data[names + offset : names + offset + 2])[0]
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        at = tree + index * entry_size
        name_offset, flags = struct.unpack(">IH", data[at : at + 6])
        path = f"{prefix}/{name_at(name_offset)}" if index else ""
        if flags & 2:  # a directory: child count, first child
            count, first = struct.unpack(">II", data[at + 6 : at + 14])
            for child in range(count):
                walk(first + child, path)
            return
        offset = struct.unpack(">I", data[at + 10 : at + 14])[0]
        size = struct.unpack(">I", data[payload + offset : payload + offset + 4])[0]
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 4:
            raise ValueError(f"{path}: zstd-compressed entries are not supported")
        files[path.lstrip("/")] = zlib.decompress(blob[4:]) if flags & 1 else blob

    walk(0, "")
    return files


def assemble(files: dict[str, bytes], board: int) -> Image.Image:
    """The painting of board ``board``: its pieces composited at their centres, cropped, on white, RGB."""
    root = "gcompris/src/activities/paintings/resource"
    text = files[f"{root}/board/board{board}_0.qml"].decode("utf-8")
    pieces = re.findall(
        r'"pixmapfile"\s*:\s*"(image/[^"]+\.webp)",\s*"x"\s*:\s*"([\d.]+)",\s*"y"\s*:\s*"([\d.]+)"', text
    )
    if not pieces:
        raise ValueError(f"board {board} has no pieces")
    width, height = BOARD
    canvas = Image.new("RGBA", (2 * width, 2 * height), (0, 0, 0, 0))
    for name, x, y in pieces:
        piece = Image.open(io.BytesIO(files[f"{root}/{name}"])).convert("RGBA")
        left = round(float(x) * width - piece.width / 2) + width // 2
        top = round(float(y) * height - piece.height / 2) + height // 2
        canvas.alpha_composite(piece, (left, top))
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"board {board} assembles to nothing")
    painting = canvas.crop(box)
    flat = Image.new("RGB", painting.size, (255, 255, 255))
    flat.paste(painting, mask=painting.getchannel("A"))
    flat.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return flat


def write_demo(files: dict[str, bytes], out: Path, *, quality: int = 84) -> int:
    """Write each painting as ``<object_id>.jpg`` and ``manifest.csv`` into ``out``; returns the bytes written."""
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    rows = []
    for painting in PAINTINGS:
        path = out / f"{painting.object_id}.jpg"
        assemble(files, painting.board).save(path, "JPEG", quality=quality, optimize=True, progressive=True)
        total += path.stat().st_size
        rows.append(
            {
                "object_id": painting.object_id,
                "title": painting.title,
                "artist": painting.artist,
                "date": painting.date,
                "role": painting.role,
                "artist_died": painting.died,
                "source": f"{PACKAGE}, board {painting.board} (pieces reassembled, {MAX_SIDE} px, JPEG q{quality})",
                "source_licence": PACKAGE_LICENCE,
                "public_domain": (
                    f"the painting: its artist died in {painting.died}, more than 100 years ago; the image: a faithful "
                    "reproduction of a 2-D public-domain work, with no copyright of its own (EU Directive 2019/790 "
                    "art. 14; Bridgeman v. Corel in the US)"
                ),
            }
        )
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return total


def main() -> None:
    """Read the bundle named on the command line and write the demo's paintings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rcc", type=Path, help="paintings.rcc from the gcompris-qt-data package")
    parser.add_argument("--out", type=Path, default=Path("tools/cli/paintings"))
    args = parser.parse_args()
    total = write_demo(read_rcc(args.rcc.read_bytes()), args.out)
    print(f"{len(PAINTINGS)} paintings, {total / 1e6:.2f} MB, in {args.out}")


if __name__ == "__main__":
    main()
