"""Preprocessing to the network's resolution and the exact map back to original pixels."""

import weakref

import numpy as np
import pytest
import torch

from iggt.errors import InputError
from iggt.inference.preprocess import (
    MappedViews,
    ResizeRecord,
    map_to_original,
    network_size,
    preprocess_images,
    preprocess_views,
    resize_record,
)


def blob_image(height, width, center, sigma=3.0):
    """(H, W, 3) black image with a Gaussian blob centred at pixel coordinate ``center`` (u, v)."""
    rows, cols = np.mgrid[0:height, 0:width]
    blob = np.exp(-((cols - center[0]) ** 2 + (rows - center[1]) ** 2) / (2 * sigma**2))
    return np.repeat(blob[..., None], 3, -1).astype(np.float32)


def centroid(image_chw):
    """Intensity-weighted (u, v) of channel 0 of a (3, H, W) tensor."""
    weights = image_chw[0].double().numpy()
    rows, cols = np.mgrid[0 : weights.shape[0], 0 : weights.shape[1]]
    return np.array([(weights * cols).sum(), (weights * rows).sum()]) / weights.sum()


def intrinsic_for(height, width, focal):
    return np.array([[focal, 0, width / 2 - 3.2], [0, focal * 1.1, height / 2 + 1.7], [0, 0, 1]])


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("original_size", [(97, 131), (300, 200), (40, 60)])
def test_a_3d_point_lands_on_the_same_pixel_in_both_resolutions(mode, original_size):
    """The blob drawn at a 3D point's original projection is found at its network projection."""
    height, width = original_size
    intrinsic = intrinsic_for(height, width, focal=1.2 * width)
    point = np.array([0.07, -0.05, 1.0])
    projected = intrinsic @ point
    uv_original = projected[:2] / projected[2]
    images, (record,) = preprocess_images([blob_image(height, width, uv_original)], 56, 14, mode, "black")
    network_intrinsic = record.intrinsic_to_network(intrinsic)
    projected_network = network_intrinsic @ point
    uv_network = projected_network[:2] / projected_network[2]
    # Resampling moves a symmetric blob's centroid only by discretisation error; a half-pixel
    # convention slip would move it by 0.5 * |scale - 1| pixels (0.03 to 0.4 here).
    np.testing.assert_allclose(centroid(images[0]), uv_network, atol=0.02)
    np.testing.assert_allclose(record.to_original(uv_network), uv_original, atol=1e-9)
    np.testing.assert_allclose(record.intrinsic_to_original(network_intrinsic), intrinsic, atol=1e-9)


def project(points, intrinsic):
    pixels = points @ intrinsic.T
    return pixels[:, :2] / pixels[:, 2:]


@pytest.mark.parametrize("mode", ["crop", "pad"])
def test_intrinsics_map_both_ways_exactly(mode):
    rng = np.random.default_rng(0)
    record = resize_record((480, 640), network_size((480, 640), 518, 14, mode), mode)
    points = rng.uniform([-1, -1, 2], [1, 1, 5], (100, 3))
    original = intrinsic_for(480, 640, 500.0)
    np.testing.assert_allclose(
        project(points, record.intrinsic_to_network(original)),
        record.to_network(project(points, original)),
        atol=1e-9,
    )
    network = intrinsic_for(*record.network_size, 400.0)
    np.testing.assert_allclose(
        project(points, record.intrinsic_to_original(network)),
        record.to_original(project(points, network)),
        atol=1e-9,
    )


def test_crop_size_follows_the_first_view_and_keeps_the_width():
    assert network_size((480, 640), 518, 14, "crop") == (378, 518)  # 388.5 rows -> 27 patches
    assert network_size((1080, 1920), 518, 14, "crop") == (280, 518)
    assert network_size((640, 480), 518, 14, "crop") == (518, 518)  # portrait: height capped
    assert network_size((640, 480), 518, 14, "pad") == (518, 518)
    with pytest.raises(InputError, match="--mode pad"):
        network_size((10, 2000), 518, 14, "crop")


def test_pad_keeps_every_pixel_and_fills_with_the_pad_colour():
    image = np.full((30, 60, 3), 0.25, np.float32)
    tensor, (record,) = preprocess_images([image], 56, 14, "pad", pad_color="white")
    assert tuple(tensor.shape) == (1, 3, 56, 56)
    assert (record.left, record.top, record.scale_x) == (0, 14, 56 / 60)
    assert tensor[0, :, :14].eq(1).all() and tensor[0, :, 42:].eq(1).all()
    np.testing.assert_allclose(tensor[0, :, 14:42].numpy(), 0.25, atol=1e-6)
    black, _ = preprocess_images([image], 56, 14, "pad", pad_color="black")
    assert black[0, :, :14].eq(0).all()


def test_views_of_other_sizes_share_the_first_views_network_size():
    images = [
        np.zeros((48, 64, 3), np.float32),
        np.zeros((64, 48, 3), np.float32),
        np.zeros((20, 20, 3), np.float32),
    ]
    tensor, records = preprocess_images(images, 56, 14, "crop")
    assert tuple(tensor.shape) == (3, 3, 42, 56)
    assert all(r.network_size == (42, 56) for r in records)
    # The portrait view is scaled to cover 56 columns and centre-cropped vertically.
    assert records[1].scale_x == pytest.approx(56 / 48) and records[1].top < 0


@pytest.mark.parametrize("mode", ["crop", "pad"])
def test_maps_return_to_the_original_resolution(mode):
    images = [np.zeros((45, 70, 3), np.float32), np.zeros((70, 45, 3), np.float32)]
    tensor, records = preprocess_images(images, 56, 14, mode)
    net_height, net_width = tensor.shape[-2:]
    columns = np.broadcast_to(np.arange(net_width, dtype=np.float32), (2, net_height, net_width))
    back = map_to_original(columns, records, fill=-1.0)
    for view, record in zip(back, records, strict=True):
        height, width = record.original_size
        assert view.shape == (height, width)
        rows, cols = np.mgrid[0:height, 0:width]
        expected_u = record.to_network(np.stack([cols, rows], -1))[..., 0]
        seen = view != -1
        # Bilinear sampling reproduces a linear ramp exactly away from the clamped border.
        interior = seen & (expected_u >= 0) & (expected_u <= net_width - 1)
        np.testing.assert_allclose(view[interior], expected_u[interior], atol=1e-4)
        if mode == "pad":
            assert seen.all()
    assert (back[1] == -1).any() == (mode == "crop")  # the portrait view loses rows only when cropped


def test_each_view_is_mapped_by_its_own_record_when_views_share_sampling_grids():
    # two views alike but for the crop offset, then the first again: the grids made once per
    # record must not be mixed up (every view compared with itself mapped alone)
    same_size = [ResizeRecord((30, 40), (14, 28), 0.7, 0.7, 0, -3), ResizeRecord((30, 40), (14, 28), 0.7, 0.7, 0, -7)]
    records = [same_size[0], same_size[1], same_size[0]]
    maps = np.random.default_rng(0).random((3, 14, 28), dtype=np.float32)
    together = map_to_original(maps, records)
    alone = [map_to_original(maps[i : i + 1], [records[i]])[0] for i in range(3)]
    for view in range(3):
        np.testing.assert_array_equal(together[view], alone[view])
    # the offsets differ, so the same map comes back differently under the two records
    crossed = map_to_original(maps[:1], [records[1]])[0]
    assert not np.array_equal(crossed, together[0])
    lazily = MappedViews(maps, records)
    np.testing.assert_array_equal(np.stack([lazily[2], lazily[1], lazily[0]]), np.stack(together[::-1]))


def test_ids_come_back_by_nearest_neighbour():
    labels = np.zeros((1, 14, 28), np.int32)
    labels[0, :, 14:] = 7
    labels[0, 3, 3] = 2**24 - 1
    (record,) = [resize_record((28, 56), (14, 28), "crop")]
    (back,) = map_to_original(labels, [record], nearest=True)
    assert back.dtype == np.int32 and back.shape == (28, 56)
    assert set(np.unique(back).tolist()) == {0, 7, 2**24 - 1}
    assert (back[:, 28:] == 7).all() and (back[:, :28] != 7).all()
    assert (back[6:8, 6:8] == 2**24 - 1).all()


@pytest.mark.parametrize("mode", ["crop", "pad"])
def test_views_read_one_at_a_time_give_the_tensor_of_the_list_and_free_each_view(mode, tmp_path):
    """preprocess_views over a generator equals preprocess_images over the list, fills the tensor
    ``allocate`` made (here a memory-mapped file), and holds no earlier view while reading the next."""
    rng = np.random.default_rng(3)
    images = [rng.random(size, dtype=np.float32) for size in [(60, 80, 3), (45, 70, 3), (80, 60, 3)]]
    expected, expected_records = preprocess_images(images, 56, 14, mode)
    alive = []

    def one_at_a_time():
        for image in images:
            copy = image.copy()
            alive.append(weakref.ref(copy))
            yield copy

    def allocate(shape):
        mapped = np.lib.format.open_memmap(tmp_path / "input.npy", mode="w+", dtype=np.float32, shape=shape)
        return torch.from_numpy(mapped)

    def checked():
        for image in one_at_a_time():
            assert all(reference() is None for reference in alive[:-1])
            yield image
            del image

    tensor, records = preprocess_views(checked(), 3, 56, 14, mode, allocate=allocate)
    assert records == expected_records
    torch.testing.assert_close(tensor, expected, rtol=0, atol=0)
    np.testing.assert_array_equal(np.load(tmp_path / "input.npy"), expected.numpy())


def test_a_stream_shorter_or_longer_than_announced_or_with_a_tiny_view_is_one_line():
    views = [np.zeros((28, 28, 3), np.float32)] * 3
    with pytest.raises(InputError, match=r"^2 of the 3 images announced were read"):
        preprocess_views(iter(views[:2]), 3, 28, 14)
    with pytest.raises(InputError, match=r"^more than the 2 images announced"):
        preprocess_views(iter(views), 2, 28, 14)
    tiny = [views[0], np.zeros((10, 28, 3), np.float32)]
    with pytest.raises(InputError, match=r"^image b.png is 28x10 pixels; the network needs at least 14 px"):
        preprocess_views(iter(tiny), 2, 28, 14, names=["a.png", "b.png"])
