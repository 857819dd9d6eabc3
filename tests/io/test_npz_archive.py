"""save_npz writes archives np.load reads back exactly, smaller than raw, with no pickles."""

import numpy as np
import pytest

from iggt.structures.npz_archive import save_npz


def test_arrays_of_every_kind_come_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "floats": rng.random((3, 5, 7), dtype=np.float32),
        "ints": rng.integers(-5, 5, (4, 4)).astype(np.int64),
        "mask": rng.random(9) > 0.5,
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3), np.float32),
        "fortran": np.asfortranarray(rng.random((4, 6))),
    }
    save_npz(tmp_path / "a.npz", arrays)
    with np.load(tmp_path / "a.npz") as loaded:
        assert sorted(loaded.files) == sorted(arrays)
        for key, value in arrays.items():
            assert loaded[key].dtype == value.dtype and np.array_equal(loaded[key], value), key


def test_the_archive_is_deflated(tmp_path):
    zeros = np.zeros((256, 256), np.float32)
    save_npz(tmp_path / "z.npz", {"zeros": zeros})
    assert (tmp_path / "z.npz").stat().st_size < zeros.nbytes / 50


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(ValueError, match="allow_pickle"):
        save_npz(tmp_path / "o.npz", {"objects": np.array([{"a": 1}], dtype=object)})
