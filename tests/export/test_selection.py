"""select_points reads a few views at a time: the same points as one pass over the capture."""

import numpy as np
import pytest
from export_scene import make_scene

import iggt.export.selection as selection
from iggt.export.options import ExportOptions
from iggt.export.selection import select_points, to_uint8
from iggt.instances.points import scene_points


def whole_capture(predictions, instances, options, max_points):
    """The selection over all pixels at once: the confidence quantile of every finite pixel, then
    a seeded subset of the confident ones' flat indices."""
    points, confidence = scene_points(predictions, options.point_source)
    points, confidence = points.reshape(-1, 3), confidence.reshape(-1)
    finite = np.isfinite(points).all(1) & np.isfinite(confidence)
    index = np.flatnonzero(finite & (confidence >= np.quantile(confidence[finite], options.confidence_quantile)))
    if max_points is not None and len(index) > max_points:
        index = np.sort(np.random.default_rng(options.seed).choice(index, size=max_points, replace=False))
    return index, points[index], to_uint8(predictions.images.reshape(-1, 3)[index])


@pytest.mark.parametrize("chunk_pixels", [1, 700, 1 << 22])
@pytest.mark.parametrize("max_points", [None, 50])
@pytest.mark.parametrize("source", ["world_points", "depth"])
def test_chunked_selection_equals_the_whole_capture(monkeypatch, chunk_pixels, max_points, source):
    monkeypatch.setattr(selection, "CHUNK_PIXELS", chunk_pixels)
    predictions, instances = make_scene()
    predictions.world_points[1, 2, 3] = np.nan  # a non-finite point is never exported
    options = ExportOptions(point_source=source, confidence_quantile=0.3)
    got = select_points(predictions, instances, options, max_points)
    index, xyz, rgb = whole_capture(predictions, instances, options, max_points)
    np.testing.assert_array_equal(got.index, index)
    np.testing.assert_allclose(got.xyz, xyz, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got.rgb, rgb)
    np.testing.assert_array_equal(got.instance_id, instances.labels.reshape(-1)[index])
    _, height, width = predictions.depth.shape
    np.testing.assert_array_equal(got.view * height * width + got.row * width + got.column, index)


def test_a_long_captures_cut_is_the_quantile_of_an_even_subset(monkeypatch):
    """Above QUANTILE_SAMPLE finite pixels the cut comes from every k-th one: the confident share
    stays the asked one within the subset's sampling error."""
    monkeypatch.setattr(selection, "QUANTILE_SAMPLE", 97)
    monkeypatch.setattr(selection, "CHUNK_PIXELS", 300)
    predictions, instances = make_scene()
    got = select_points(predictions, instances, ExportOptions(confidence_quantile=0.5), None)
    assert abs(len(got.index) / predictions.depth.size - 0.5) < 0.1
