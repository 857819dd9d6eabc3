"""Instance colours: a function of the ID alone, whatever array the ID comes in."""

import numpy as np

from iggt.export.colours import NO_INSTANCE_COLOUR, instance_colours


def test_each_pixel_gets_the_colour_of_its_id_alone():
    ids = np.random.default_rng(0).integers(0, 40, (3, 5, 7)).astype(np.int32)
    colours = instance_colours(ids)
    assert colours.shape == (3, 5, 7, 3) and colours.dtype == np.uint8
    for index in np.ndindex(ids.shape):
        assert np.array_equal(colours[index], instance_colours(np.array([ids[index]]))[0])
    assert np.array_equal(colours[ids == 0], np.tile(NO_INSTANCE_COLOUR, ((ids == 0).sum(), 1)))
    assert len(np.unique(instance_colours(np.arange(1, 40)), axis=0)) == 39


def test_empty_and_single_ids_keep_their_shape():
    assert instance_colours(np.zeros(0, np.int64)).shape == (0, 3)
    assert instance_colours(np.array(3)).shape == (3,)


def test_an_id_has_one_colour_whether_coloured_by_table_or_by_distinct_ids():
    small = np.array([0, 1, 5, 65535])
    with_large = np.array([0, 1, 5, 65535, 70000, -3])  # outside the table's range: the distinct-ID path
    assert np.array_equal(instance_colours(small), instance_colours(with_large)[:4])
    assert np.array_equal(instance_colours(with_large[4:]), instance_colours(with_large)[4:])
