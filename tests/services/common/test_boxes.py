"""Whether two boxes in a photo outline the same painting, and whether a verified box explains a located one."""

from __future__ import annotations

from services.common.boxes import area, explained_by, intersection, same_painting, within

PAINTING = [0.2, 0.2, 0.4, 0.5]


def test_a_reference_without_its_frame_is_the_same_painting_as_a_box_around_a_heavy_frame():
    framed = [0.15, 0.15, 0.45, 0.55]  # the canvas is half the framed box's area

    assert same_painting(PAINTING, framed) and same_painting(framed, PAINTING)


def test_a_box_around_the_whole_wall_is_not_the_painting_on_it():
    assert not same_painting(PAINTING, [0.0, 0.0, 1.0, 1.0])


def test_neighbours_and_slight_overlaps_are_other_paintings():
    assert not same_painting(PAINTING, [0.45, 0.2, 0.65, 0.5])
    assert not same_painting(PAINTING, [0.35, 0.2, 0.55, 0.5])  # a quarter of it shared


def test_degenerate_boxes_are_no_painting():
    assert area([0.3, 0.3, 0.2, 0.2]) == 0.0 and intersection(PAINTING, [0.5, 0.5, 0.6, 0.6]) == 0.0
    assert not same_painting([0.3, 0.3, 0.3, 0.4], [0.3, 0.3, 0.3, 0.4])


def test_a_small_box_inside_a_recognised_painting_is_explained_as_a_part_of_it():
    figure = [0.25, 0.3, 0.3, 0.36]  # a twentieth of the painting, inside it

    assert not same_painting(figure, PAINTING)
    assert within(figure, PAINTING) and explained_by(figure, PAINTING)
    assert not within(PAINTING, figure) and not explained_by(PAINTING, figure)


def test_a_neighbour_overlapping_a_recognised_painting_a_little_is_not_explained():
    neighbour = [0.35, 0.3, 0.45, 0.4]  # half of it inside the painting's box, a sixth of its size

    assert not within(neighbour, PAINTING) and not explained_by(neighbour, PAINTING)
    assert not within([0.3, 0.3, 0.3, 0.4], PAINTING)  # an empty box is within nothing
