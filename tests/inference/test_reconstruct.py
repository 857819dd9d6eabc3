"""reconstruct(): stages chained, outputs mapped back to each input's own resolution."""

import numpy as np
import pytest
import torch
from inference_inputs import FAST_INSTANCES, random_images
from PIL import Image

import iggt
from iggt.errors import InputError
from iggt.inference.preprocess import map_to_original
from iggt.inference.reconstruct import SINGLE_VIEW_NOTE, Reconstruction, reconstruct


def test_outputs_come_back_at_each_inputs_resolution(tiny_model):
    images = random_images([(60, 80), (80, 60), (60, 80)])
    rec = reconstruct(images, tiny_model, device="cpu", instance_config=FAST_INSTANCES, progress=False)
    assert isinstance(rec, Reconstruction) and rec.num_views == 3
    assert rec.predictions.image_size == (42, 56)  # 60 * 56 / 80 = 42 rows
    assert [d.shape for d in rec.depth] == [(60, 80), (80, 60), (60, 80)]
    assert [m.shape for m in rec.instance_labels] == [(60, 80), (80, 60), (60, 80)]
    for view in range(3):
        record = rec.records[view]
        np.testing.assert_allclose(rec.intrinsic[view], record.intrinsic_to_original(rec.predictions.intrinsic[view]))
        np.testing.assert_array_equal(
            rec.depth[view], map_to_original(rec.predictions.depth[view : view + 1], [record])[0]
        )
        assert set(np.unique(rec.instance_labels[view])) <= {0, *rec.instances.ids.tolist()}
    # The portrait view is centre-cropped: its top and bottom rows were never seen.
    assert (rec.depth[1][0] == 0).all() and (rec.depth[1][40] > 0).all()
    assert set(rec.timings) == {"read", "load model", "preprocess", "model", "instances", "map to original resolution"}
    assert (rec.device, rec.dtype) == ("cpu", "float32")


def test_save_writes_masks_and_depth_at_each_inputs_resolution(tiny_model, tmp_path):
    images = random_images([(60, 80), (80, 60)])
    rec = reconstruct(images, tiny_model, device="cpu", instance_config=FAST_INSTANCES, progress=False)
    written = rec.save(tmp_path / "out", formats=("json",))
    folder = tmp_path / "out" / "original_resolution"
    assert {folder / "instance_ids_000.png", folder / "depth_001.npy", tmp_path / "out" / "reconstruction.json"} <= set(
        written
    )
    for view in range(2):
        ids = np.array(Image.open(folder / f"instance_ids_{view:03d}.png"))
        np.testing.assert_array_equal(ids, rec.instance_labels[view])
        np.testing.assert_array_equal(np.load(folder / f"depth_{view:03d}.npy"), rec.depth[view])
    assert ids.shape == (80, 60)


def test_pad_mode_sees_every_original_pixel(tiny_model):
    rec = reconstruct(
        random_images([(30, 70)]),
        tiny_model,
        device="cpu",
        mode="pad",
        instance_config=FAST_INSTANCES,
        progress=False,
    )
    assert rec.predictions.image_size == (56, 56)
    assert (rec.depth[0] > 0).all()


def test_a_single_image_runs_as_one_view_and_says_so(tiny_model, tmp_path):
    Image.fromarray((random_images([(42, 56)])[0] * 255).astype(np.uint8)).save(tmp_path / "one.png")
    rec = reconstruct(tmp_path / "one.png", tiny_model, device="cpu", instance_config=FAST_INSTANCES, progress=False)
    assert rec.num_views == 1 and rec.names == ["one.png"]
    assert SINGLE_VIEW_NOTE in rec.notes


def test_max_frames_keeps_evenly_spaced_views(tiny_model):
    rec = reconstruct(
        random_images([(42, 56)] * 5),
        tiny_model,
        device="cpu",
        max_frames=3,
        instance_config=FAST_INSTANCES,
        progress=False,
    )
    assert rec.names == ["image0000", "image0002", "image0004"]
    assert "kept 3 of 5" in rec.notes[0]


def test_a_model_path_is_loaded_and_gives_the_same_result(tiny_model, tmp_path):
    path = tiny_model.save_pretrained(tmp_path / "tiny.safetensors")
    images = random_images([(42, 56)] * 2, seed=3)
    by_object = reconstruct(images, tiny_model, device="cpu", instance_config=FAST_INSTANCES, progress=False)
    by_path = reconstruct(images, str(path), device="cpu", instance_config=FAST_INSTANCES, progress=False)
    np.testing.assert_allclose(by_path.predictions.depth, by_object.predictions.depth, rtol=1e-5)
    assert by_path.model_name == str(path)


def test_reconstruct_is_exported_from_the_package():
    assert iggt.reconstruct is reconstruct


def test_views_of_different_sizes_are_noted(tiny_model):
    rec = reconstruct(
        random_images([(60, 80), (80, 60)]), tiny_model, device="cpu", instance_config=FAST_INSTANCES, progress=False
    )
    assert "views differ in size: each was scaled to cover it and centre-cropped to 56x42" in rec.notes


@pytest.mark.parametrize(
    "image", [np.full((8, 8, 3), 2.0, np.float32), np.zeros((8, 8, 3), np.int32)], ids=["above-one", "int32"]
)
def test_in_memory_images_must_be_uint8_or_unit_floats(tiny_model, image):
    with pytest.raises(InputError, match="image 0 must be uint8 or floats in"):
        reconstruct([image], tiny_model, device="cpu", progress=False)


def test_running_out_of_memory_while_clustering_is_a_one_line_hint(tiny_model, monkeypatch):
    def exhausted(predictions, config):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr("iggt.instances.extract_instances", exhausted)
    with pytest.raises(InputError, match="out of memory clustering instances of 2 frames; try --max-frames"):
        reconstruct(random_images([(42, 56)] * 2), tiny_model, device="cpu", progress=False)
