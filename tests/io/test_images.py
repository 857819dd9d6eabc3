"""Reading image folders, files, scene folders and videos; every bad input is a one-line InputError."""

import weakref

import numpy as np
import pytest
from PIL import Image

from iggt.errors import InputError
from iggt.io.images import list_image_files, load_images, open_images, read_image
from iggt.io.video import decode_video_frames, evenly_spaced_indices, rate_indices, read_video_frames


def write_png(path, height=12, width=16, value=None, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if value is None else value
    Image.fromarray(pixels).save(path)
    return pixels


def test_folder_is_read_in_natural_order_and_ignores_other_files(tmp_path):
    for index in (10, 2, 1):
        write_png(tmp_path / f"frame{index}.png", seed=index)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    loaded = load_images(tmp_path)
    assert loaded.names == ["frame1.png", "frame2.png", "frame10.png"]
    expected = np.asarray(Image.open(tmp_path / "frame2.png"), dtype=np.float32) / 255
    np.testing.assert_array_equal(loaded.images[1], expected)
    assert loaded.images[0].dtype == np.float32 and loaded.images[0].shape == (12, 16, 3)


def test_scene_folder_reads_its_images_subfolder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "depth").mkdir()
    for index in range(3):
        write_png(tmp_path / "images" / f"{index:03d}.png", seed=index)
    assert [p.name for p in list_image_files(tmp_path)] == ["000.png", "001.png", "002.png"]


def test_several_files_keep_the_given_order(tmp_path):
    paths = [tmp_path / "b.png", tmp_path / "a.png"]
    for seed, path in enumerate(paths):
        write_png(path, seed=seed)
    assert load_images([str(p) for p in paths]).names == ["b.png", "a.png"]


def test_max_frames_subsamples_evenly_and_says_so(tmp_path):
    for index in range(10):
        write_png(tmp_path / f"{index}.png", height=4, width=4, seed=index)
    loaded = load_images(tmp_path, max_frames=4)
    assert loaded.names == ["0.png", "3.png", "6.png", "9.png"]
    assert "kept 4 of 10" in loaded.notes[0]


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[0, 0] = 255  # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display rotated 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif)
    image = read_image(tmp_path / "rotated.png")
    assert image.shape == (20, 10, 3)
    # A clockwise turn moves the stored top-left corner to the top-right.
    assert image[0, -1].min() == 1.0 and image[0, 0].max() == 0.0


def test_alpha_is_composited_onto_white_and_16_bit_grey_keeps_its_range(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest is fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    image = read_image(tmp_path / "alpha.png")
    np.testing.assert_allclose(image[0, 0], [1, 0, 0])
    np.testing.assert_allclose(image[1, 1], [1, 1, 1])
    grey = np.array([[0, 65535], [32768, 1000]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    np.testing.assert_allclose(read_image(tmp_path / "grey16.png")[..., 0], grey / 65535, atol=1e-6)


def test_single_image_is_accepted(tmp_path):
    write_png(tmp_path / "only.png")
    assert load_images(tmp_path / "only.png").num_views == 1


def write_video(path, num_frames, fps=10, size=32):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    writer = imageio.get_writer(str(path), fps=fps, format="FFMPEG", codec="libx264", macro_block_size=16)
    with writer:
        for index in range(num_frames):
            # Each frame's brightness encodes its index so the test can tell frames apart.
            writer.append_data(np.full((size, size, 3), index * 8, np.uint8))


def test_video_frames_are_sampled_evenly_by_count(tmp_path):
    write_video(tmp_path / "clip.mp4", num_frames=25)
    loaded = load_images(tmp_path / "clip.mp4", frames=5)
    assert loaded.names == [f"clip.mp4#frame{i:05d}" for i in (0, 6, 12, 18, 24)]
    brightness = [image.mean() * 255 / 8 for image in loaded.images]
    np.testing.assert_allclose(brightness, [0, 6, 12, 18, 24], atol=0.6)
    assert "sampled 5 of 25" in loaded.notes[0]


def test_video_frames_are_sampled_by_rate(tmp_path):
    write_video(tmp_path / "clip.mp4", num_frames=25, fps=10)
    loaded = load_images(tmp_path / "clip.mp4", fps=4)
    assert [int(n[-5:]) for n in loaded.names] == rate_indices(25, 10.0, 4.0).tolist()
    assert loaded.num_views == 10


def test_max_frames_of_a_video_keeps_evenly_spaced_sampled_frames_as_float_rgb(tmp_path):
    write_video(tmp_path / "clip.mp4", num_frames=25)
    decoded, indices, _ = read_video_frames(tmp_path / "clip.mp4", frames=9)
    loaded = load_images(tmp_path / "clip.mp4", frames=9, max_frames=3)
    assert indices == [0, 3, 6, 9, 12, 15, 18, 21, 24] and decoded[0].dtype == np.uint8
    assert loaded.names == [f"clip.mp4#frame{i:05d}" for i in (0, 12, 24)]
    assert loaded.notes[1] == "kept 3 of 9 sampled frames, evenly spaced (--max-frames 3)"
    for image, frame in zip(loaded.images, [decoded[0], decoded[4], decoded[8]], strict=True):
        assert image.dtype == np.float32 and image.shape == (32, 32, 3)
        np.testing.assert_array_equal(image, frame.astype(np.float32) / 255.0)  # the same pixels, only scaled


def test_a_stream_decodes_each_image_when_it_is_reached_and_frees_it_after(tmp_path):
    """open_images reads headers only: a file changed after opening is read as it is then; while
    one view is in hand, the views before it are no longer held by the stream."""
    for index in range(4):
        write_png(tmp_path / f"{index}.png", seed=index)
    stream = open_images(tmp_path)
    assert stream.stored_sizes == [(12, 16)] * 4 and len(stream) == 4
    replaced = write_png(tmp_path / "2.png", seed=99)  # after opening, before decoding
    alive = []
    for index, image in enumerate(stream):
        alive.append(weakref.ref(image))
        del image
        assert all(reference() is None for reference in alive[:index])
    decoded = stream.load()  # a stream can be read again
    np.testing.assert_array_equal(decoded.images[2], replaced.astype(np.float32) / 255)
    np.testing.assert_array_equal(decoded.images[0], load_images(tmp_path).images[0])


def test_a_file_whose_header_reads_but_data_does_not_fails_when_decoded(tmp_path):
    write_png(tmp_path / "0.png")
    good = (tmp_path / "0.png").read_bytes()
    (tmp_path / "1.png").write_bytes(good[: len(good) // 2])  # header intact, pixels cut off
    stream = open_images(tmp_path)
    with pytest.raises(InputError, match=r"^cannot read image 1.png: .*; replace or remove the file$"):
        list(stream)


def test_video_frames_stream_as_the_decoded_clip_and_a_missing_frame_is_an_error(tmp_path):
    write_video(tmp_path / "clip.mp4", num_frames=25)
    decoded, _, _ = read_video_frames(tmp_path / "clip.mp4", frames=25)
    stream = open_images(tmp_path / "clip.mp4", frames=5)
    assert stream.stored_sizes is None and len(stream) == 5
    for image, index in zip(stream, (0, 6, 12, 18, 24), strict=True):
        np.testing.assert_array_equal(image, decoded[index].astype(np.float32) / 255)
    with pytest.raises(InputError, match=r"^video clip.mp4 ends before frame 30 .*convert it to H.264 .mp4$"):
        list(decode_video_frames(tmp_path / "clip.mp4", [3, 30]))


def test_sampling_indices():
    assert evenly_spaced_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert evenly_spaced_indices(3, 8).tolist() == [0, 1, 2]
    assert rate_indices(90, 30.0, 1.0).tolist() == [0, 30, 60]
    assert rate_indices(5, 30.0, 60.0).tolist() == [0, 1, 2, 3, 4]


def written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: d, "has no images"),
        (lambda d: written(d / "notes.txt", b"x"), "unsupported input notes.txt"),
        (lambda d: written(d / "broken.png", b"not a png"), "cannot read image broken.png"),
        (lambda d: written(d / "bad.mp4", b"\x00" * 64), "video bad.mp4"),
    ],
    ids=["missing", "empty-folder", "unsupported", "corrupt-image", "corrupt-video"],
)
def test_bad_inputs_raise_one_line_input_errors(tmp_path, make, message):
    with pytest.raises(InputError, match=message) as info:
        load_images(make(tmp_path))
    assert "\n" not in str(info.value)


def test_truncated_image_names_the_file(tmp_path):
    write_png(tmp_path / "whole.png", height=64, width=64)
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot read image cut.png"):
        load_images(tmp_path)


def test_video_mixed_with_images_is_refused(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "b.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="pass one video on its own"):
        load_images([tmp_path / "a.png", tmp_path / "b.mp4"])


def test_video_sampling_options_are_refused_for_images(tmp_path):
    write_png(tmp_path / "a.png")
    with pytest.raises(InputError, match="--fps and --frames sample a video; .* --max-frames"):
        load_images(tmp_path, frames=3)


def test_scene_format_folder_is_read_in_manifest_order(tmp_path):
    from iggt.io.scene_format import write_scene
    from iggt.structures.scene import InstanceInfo, Scene

    images = np.stack([np.full((4, 6, 3), 10, np.uint8), np.full((4, 6, 3), 200, np.uint8)])
    scene = Scene(
        images=images,
        depth=np.ones((2, 4, 6), np.float32),
        intrinsic=np.tile(np.eye(3, dtype=np.float32), (2, 1, 1)),
        extrinsic=np.tile(np.eye(3, 4, dtype=np.float32), (2, 1, 1)),
        instance_ids=np.ones((2, 4, 6), np.int32),
        class_ids=None,
        frame_names=["frame10", "frame2"],  # natural sorting would put frame2 first
        instances={1: InstanceInfo("box", "test")},
    )
    write_scene(scene, tmp_path / "scene")
    loaded = load_images(tmp_path / "scene")
    assert loaded.names == ["frame10.png", "frame2.png"]
    np.testing.assert_allclose([image.mean() for image in loaded.images], [10 / 255, 200 / 255], atol=1e-6)
    (tmp_path / "scene" / "images" / "frame2.png").unlink()
    with pytest.raises(InputError, match="lists frames without images: frame2.png"):
        load_images(tmp_path / "scene")
