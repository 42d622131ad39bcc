"""Reading a folder of reference images and its catalogue CSV."""

from __future__ import annotations

import pytest

from services.collection.sources import read_catalogue, scan_images


def touch(directory, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"image bytes")


def test_scan_finds_image_files_of_any_letter_case_sorted_by_id(tmp_path):
    touch(tmp_path, "b.JPG", "a.jpeg", "c.PNG", "d.WebP", "notes.txt", "e.gif", "f.bmp", "README")
    (tmp_path / "g.jpg").mkdir()  # a folder named like an image is not one

    images, problems = scan_images(tmp_path)

    assert [(i.object_id, i.path.name) for i in images] == [
        ("a", "a.jpeg"),
        ("b", "b.JPG"),
        ("c", "c.PNG"),
        ("d", "d.WebP"),
    ]
    assert problems == []


@pytest.mark.parametrize("name", ["has space.jpg", "-dash.jpg", "_under.png", "tab\there.jpg", "line\n.jpg"])
def test_scan_skips_and_reports_stems_that_are_not_object_ids(tmp_path, name):
    touch(tmp_path, name, "good.jpg")

    images, problems = scan_images(tmp_path)

    assert [i.object_id for i in images] == ["good"]
    assert len(problems) == 1 and problems[0].startswith(name) and "not a valid object id" in problems[0]


def test_scan_keeps_the_first_of_duplicate_stems_and_reports_the_rest(tmp_path):
    touch(tmp_path, "dup.jpg", "dup.png", "dup.webp", "solo.jpg")

    images, problems = scan_images(tmp_path)

    assert [(i.object_id, i.path.name) for i in images] == [("dup", "dup.jpg"), ("solo", "solo.jpg")]
    assert problems == [
        "dup.png: object id 'dup' already taken by dup.jpg; skipped",
        "dup.webp: object id 'dup' already taken by dup.jpg; skipped",
    ]


def test_scan_accepts_dots_underscores_and_dashes_inside_ids(tmp_path):
    touch(tmp_path, "mcv_bbdd_00163.jpg", "v1.2-final.png")

    images, _ = scan_images(tmp_path)

    assert [i.object_id for i in images] == ["mcv_bbdd_00163", "v1.2-final"]


def test_scan_of_a_missing_folder_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        scan_images(tmp_path / "absent")


def test_read_catalogue_maps_known_columns_and_keeps_the_others_as_extra(tmp_path):
    path = tmp_path / "objects.csv"
    path.write_text(
        "\ufeffobject_id,title,artist,date,room,medium,notes\n"
        "a, Water Lilies ,Claude Monet,1906,12,oil on canvas,\n"
        "b,Untitled,,,,,on loan\n"
        ",orphan row,,,,,\n",
        encoding="utf-8",
    )

    rows = read_catalogue(path)

    assert sorted(rows) == ["a", "b"]
    a = rows["a"]
    assert (a.title, a.artist, a.date, a.room) == ("Water Lilies", "Claude Monet", "1906", "12")
    assert a.extra == {"medium": "oil on canvas"}
    assert rows["b"].extra == {"notes": "on loan"} and rows["b"].artist == ""


def test_read_catalogue_with_only_an_id_column(tmp_path):
    path = tmp_path / "objects.csv"
    path.write_text("object_id\nx\ny\n")

    rows = read_catalogue(path)

    assert sorted(rows) == ["x", "y"] and rows["x"].title == "" and rows["x"].extra == {}


def test_read_catalogue_without_an_object_id_column_fails_clearly(tmp_path):
    path = tmp_path / "objects.csv"
    path.write_text("id,title\na,b\n")

    with pytest.raises(ValueError, match="'object_id' column"):
        read_catalogue(path)


def test_no_catalogue_is_an_empty_one():
    assert read_catalogue(None) == {}


def test_read_catalogue_reads_the_optional_description_and_link_columns(tmp_path):
    path = tmp_path / "objects.csv"
    path.write_text(
        'object_id,title,description,link\na,Irises,"Painted at Saint-Rémy, 1889.",https://example.org/irises\nb,X,,\n',
        encoding="utf-8",
    )

    rows = read_catalogue(path)

    assert (rows["a"].description, rows["a"].link) == ("Painted at Saint-Rémy, 1889.", "https://example.org/irises")
    assert (rows["b"].description, rows["b"].link, rows["b"].extra) == ("", "", {})


def test_read_catalogue_refuses_a_link_that_is_not_an_http_url_naming_the_line(tmp_path):
    path = tmp_path / "objects.csv"
    path.write_text("object_id,title,link\na,Fine,https://example.org\nb,Bad,javascript:alert(1)\n", encoding="utf-8")

    with pytest.raises(ValueError, match=r"objects.csv, line 3 \(b\).*link"):
        read_catalogue(path)
