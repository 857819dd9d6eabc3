"""save_npz writes archives np.load and zipfile read back exactly, smaller than raw, with no pickles,
the same bytes on any number of threads."""

import zipfile
import zlib

import numpy as np
import pytest

from iggt.structures.npz_archive import COMPRESS_LEVEL, save_npz
from iggt.structures.parallel_deflate import CHUNK_BYTES, crc32_combine


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


def smooth_field(shape, seed=0):
    """float32 values that vary slowly plus noise: deflate shrinks them a little, as network outputs."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 3, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    return np.sin(ramp) + rng.normal(0, 1e-3, shape).astype(np.float32)


def large_arrays():
    """Members of several deflate chunks each (CHUNK_BYTES), strided and empty ones among them."""
    field = smooth_field((3 * CHUNK_BYTES // 4 + 1001,))  # 3 chunks and a partial one
    labels = np.repeat(np.arange(7, dtype=np.int32), 200_000).reshape(7, 400, 500)
    return {
        "field": field,
        "strided": smooth_field((600, 2000), seed=1)[:, ::2],  # not contiguous: copied a few rows at a time
        "labels": labels,
        "nan": np.array([np.nan, -np.inf, 0.0, -0.0], np.float32),
        "empty": np.zeros((0, 4), np.int64),
    }


def test_large_members_come_back_bit_exact_with_valid_crcs(tmp_path):
    arrays = large_arrays()
    save_npz(tmp_path / "a.npz", arrays, threads=3)
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert archive.testzip() is None  # every member's CRC-32 matches its bytes
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        assert archive.getinfo("field.npy").compress_size < arrays["field"].nbytes
    with np.load(tmp_path / "a.npz") as loaded:
        for key, value in arrays.items():
            assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
            assert loaded[key].tobytes() == np.ascontiguousarray(value).tobytes(), key


def test_the_bytes_do_not_depend_on_the_thread_count(tmp_path):
    arrays = large_arrays()
    for threads in (1, 2, 5):
        save_npz(tmp_path / f"{threads}.npz", arrays, threads=threads)
    serial = (tmp_path / "1.npz").read_bytes()
    assert (tmp_path / "2.npz").read_bytes() == serial
    assert (tmp_path / "5.npz").read_bytes() == serial


def test_deflating_on_threads_costs_almost_no_bytes_against_one_stream(tmp_path):
    field = large_arrays()["field"]
    save_npz(tmp_path / "a.npz", {"field": field}, threads=2)
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        chunked = archive.getinfo("field.npy").compress_size
    one_stream = len(zlib.compress(field.tobytes(), COMPRESS_LEVEL))
    assert chunked < one_stream * 1.001


def test_floats_can_be_stored_as_they_are_and_the_rest_stays_deflated(tmp_path):
    arrays = large_arrays()
    save_npz(tmp_path / "s.npz", arrays, threads=2, deflate_floats=False)
    with zipfile.ZipFile(tmp_path / "s.npz") as archive:
        assert archive.testzip() is None
        methods = {info.filename: info.compress_type for info in archive.infolist()}
    assert methods == {
        "field.npy": zipfile.ZIP_STORED, "strided.npy": zipfile.ZIP_STORED, "nan.npy": zipfile.ZIP_STORED,
        "labels.npy": zipfile.ZIP_DEFLATED, "empty.npy": zipfile.ZIP_DEFLATED,
    }  # fmt: skip
    with np.load(tmp_path / "s.npz") as loaded:
        for key, value in arrays.items():
            assert loaded[key].tobytes() == np.ascontiguousarray(value).tobytes(), key


def test_crc32_combine_matches_the_crc_of_the_joined_bytes():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    for cut in (0, 1, 7, 4096, 65_537, len(data)):
        first, second = data[:cut], data[cut:]
        assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(data), cut


def test_an_object_array_among_others_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="allow_pickle"):
        save_npz(tmp_path / "o.npz", {"fine": np.zeros(3), "objects": np.array([None], dtype=object)})
    assert not (tmp_path / "o.npz").exists()
