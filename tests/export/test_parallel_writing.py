"""Writing on several threads changes no file: the same bytes as one thread, every array back bit-exact."""

import zipfile
from dataclasses import fields

import numpy as np
import pytest
from export_scene import make_scene

from iggt.errors import ConfigError, InputError
from iggt.export import ExportOptions, export_all, export_npz
from iggt.export.reconstruction import write_original_resolution, write_summary
from iggt.export.selection import finite_rows
from iggt.export.view_files import map_views
from iggt.structures import Instances, Predictions


def files_of(folder):
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_every_format_is_the_same_bytes_on_one_thread_and_on_many(tmp_path):
    predictions, instances = make_scene()
    labels, depth = list(instances.labels), list(predictions.depth)

    def export(name, threads):
        extra = {"original_resolution": lambda folder: write_original_resolution(labels, depth, folder, threads)}
        options = ExportOptions(threads=threads)
        export_all(predictions, instances, tmp_path / name, options=options, extra_writers=extra)
        return files_of(tmp_path / name)

    serial, threaded = export("serial", 1), export("threaded", 4)
    assert len(serial) > 20 and serial.keys() == threaded.keys()
    assert [name for name in serial if serial[name] != threaded[name]] == []


@pytest.mark.parametrize("deflate_floats", [True, False])
def test_npz_gives_back_every_array_bit_for_bit(tmp_path, deflate_floats):
    predictions, instances = make_scene()
    options = ExportOptions(threads=3, deflate_npz_floats=deflate_floats)
    predictions_path, instances_path = export_npz(predictions, instances, tmp_path, options)
    for path in (predictions_path, instances_path):
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
    loaded_predictions, loaded_instances = Predictions.load(predictions_path), Instances.load(instances_path)
    for original, loaded in ((predictions, loaded_predictions), (instances, loaded_instances)):
        for field in fields(original):
            want, got = getattr(original, field.name), getattr(loaded, field.name)
            assert got.dtype == want.dtype and got.shape == want.shape, field.name
            assert got.tobytes() == want.tobytes(), field.name  # NaN payloads and signed zeros too


def test_views_come_back_in_order_and_the_first_failure_by_view_is_raised():
    assert map_views(lambda view: view * view, 7, threads=3) == [0, 1, 4, 9, 16, 25, 36]

    def failing(view):
        if view in (2, 5):
            raise RuntimeError(f"view {view} failed")
        return view

    with pytest.raises(RuntimeError, match="view 2 failed"):
        map_views(failing, 8, threads=3)


def test_thread_count_below_one_is_refused():
    with pytest.raises(ConfigError, match="ExportOptions.threads=0"):
        ExportOptions(threads=0)


def test_original_resolution_needs_one_depth_map_per_label_map(tmp_path):
    labels = [np.zeros((2, 2), np.int32)] * 2
    with pytest.raises(InputError, match="2 instance-ID maps but 1 depth maps"):
        write_original_resolution(labels, [np.zeros((2, 2))], tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert write_summary({"a": 1}, tmp_path)[0].name == "reconstruction.json"


def test_finite_rows_is_all_of_each_row_finite():
    points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    points[[3, 10, 20, 33], [0, 1, 2, 1]] = [np.nan, np.inf, -np.inf, np.nan]
    assert np.array_equal(finite_rows(points), np.isfinite(points).all(1))
