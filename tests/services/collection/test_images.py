"""The snapshot's reference images: one file per object, suffix rules in one place, object ids checked once."""

from __future__ import annotations

import re

import msgspec
import pytest

from services.collection.images import (
    IMAGE_SUFFIXES,
    REFERENCE_MAX_SIDE,
    ImageStore,
    check_object_id,
    is_object_id,
    reference_image,
)
from services.common.errors import InvalidFields
from services.common.schemas import OBJECT_ID_PATTERN, ObjectMetadata
from tests.services.fakes import encode, textured

IDS = ["a", "Mona-Lisa_1503.v2", "9", "x" * 128, "", ".", "..", "-a", ".hidden", "a/b", "a\\b", "a b", "x" * 129, "é"]


@pytest.mark.parametrize("object_id", IDS)
def test_every_check_of_an_object_id_agrees_with_the_one_pattern(object_id):
    by_pattern = re.fullmatch(OBJECT_ID_PATTERN, object_id) is not None
    try:
        msgspec.convert({"object_id": object_id}, ObjectMetadata)
        on_the_wire = True
    except msgspec.ValidationError:
        on_the_wire = False

    assert is_object_id(object_id) == by_pattern == on_the_wire


@pytest.mark.parametrize("object_id", ["", "..", "a/b", "x" * 129])
def test_a_bad_object_id_is_a_validation_error_naming_the_field(object_id):
    with pytest.raises(InvalidFields) as caught:
        check_object_id(object_id)
    assert caught.value.code == "validation_error" and caught.value.details == {"field": "object_id"}


def test_an_upload_is_stored_under_its_sniffed_type_and_replaces_other_formats(tmp_path):
    store = ImageStore(tmp_path / "images")
    png, jpeg = encode(textured(1), "PNG"), encode(textured(2))

    assert store.save("mona", png) == "mona.png"
    assert store.save("mona", jpeg) == "mona.jpg"

    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["mona.jpg"]
    assert store.read("mona") == jpeg and store.find("mona") == tmp_path / "images" / "mona.jpg"


def test_a_source_file_is_copied_under_its_lower_case_suffix_and_leaves_no_other_copy(tmp_path):
    store = ImageStore(tmp_path / "images")
    (tmp_path / "old.png").write_bytes(encode(textured(3), "PNG"))
    (tmp_path / "new.JPEG").write_bytes(encode(textured(4)))
    store.copy_from("mona", tmp_path / "old.png")

    name = store.copy_from("mona", tmp_path / "new.JPEG")

    assert name == "mona.jpeg"
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["mona.jpeg"]
    assert store.read("mona") == (tmp_path / "new.JPEG").read_bytes()


def test_a_source_file_without_an_image_suffix_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InvalidFields, match="not an image suffix"):
        ImageStore(tmp_path / "images").copy_from("notes", tmp_path / "notes.txt")


def test_delete_removes_every_format_and_a_missing_image_reads_as_none(tmp_path):
    store = ImageStore(tmp_path)
    for suffix in IMAGE_SUFFIXES:
        (tmp_path / f"mona{suffix}").write_bytes(b"x")
    (tmp_path / "monalisa.jpg").write_bytes(b"other object")

    store.delete("mona")

    assert [p.name for p in tmp_path.iterdir()] == ["monalisa.jpg"]
    assert store.read("mona") is None and store.find("mona") is None


def test_a_reference_is_downscaled_to_the_reference_size_and_never_upscaled():
    big, small = textured(5, (3000, 1500)), textured(6, (300, 200))

    assert reference_image(big).size == (REFERENCE_MAX_SIDE, REFERENCE_MAX_SIDE // 2)
    assert reference_image(small).size == (300, 200)
