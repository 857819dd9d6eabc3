"""Inputs the API refuses, non-finite outputs, bounded preprocessing memory, notes and stage times."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_inputs import FAST_INSTANCES, random_images

from iggt.errors import CheckpointError, InputError
from iggt.inference.reconstruct import reconstruct
from iggt.inference.runner import run_model
from iggt.instances import InstanceConfig
from iggt.model.iggt import IGGT

SRC = Path(__file__).parents[2] / "src"


def test_a_nan_pixel_in_an_in_memory_image_is_refused(tiny_model):
    images = random_images([(42, 56), (42, 56)])
    images[1][3, 4, 0] = np.nan
    with pytest.raises(InputError, match=r"image 1 has 1 non-finite value \(NaN or inf\)"):
        reconstruct(images, tiny_model, device="cpu", progress=False)


def test_a_nan_pixel_in_a_tensor_given_to_run_model_is_refused(tiny_model):
    images = torch.rand(2, 3, 28, 28)
    images[0, 1, 2, 3] = float("inf")
    with pytest.raises(InputError, match=r"images hold 1 non-finite value\(s\)"):
        run_model(tiny_model, images, device="cpu")


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 3, 28, 28), np.float32), r"images must be a \(S, 3, H, W\) tensor, got \(2, 3, 28, 28\)"),
        (torch.rand(1, 2, 3, 28, 28), r"images must be a \(S, 3, H, W\) tensor, got \(1, 2, 3, 28, 28\)"),
        (torch.rand(2, 1, 28, 28), r"images must be \(B, S, 3, H, W\) or \(S, 3, H, W\)"),
        (torch.zeros(2, 3, 28, 28, dtype=torch.uint8), "images must be floats in \\[0, 1\\], got dtype torch.uint8"),
    ],
    ids=["array", "batched", "one-channel", "uint8"],
)
def test_run_model_refuses_what_is_not_one_scene_of_float_rgb_views(tiny_model, images, message):
    with pytest.raises(InputError, match=message):
        run_model(tiny_model, images, device="cpu")


def test_non_finite_network_outputs_are_an_error_naming_them():
    torch.manual_seed(0)
    broken = IGGT.from_preset("tiny").eval()
    with torch.no_grad():
        next(broken.depth_head.parameters()).fill_(float("nan"))
    with pytest.raises(CheckpointError, match=r"the network's depth output is not finite.*weights"):
        run_model(broken, torch.rand(2, 3, 28, 28), device="cpu")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([1, 2], r"input 0 is an int \(1\)"),
        ([None], r"input 0 is a NoneType"),
        ([b"photo.png"], r"input 0 is a bytes"),
        ("mixed", r"input 1 is a str.*all paths or all arrays"),
    ],
    ids=["ints", "none", "bytes", "arrays-and-paths"],
)
def test_items_that_are_not_paths_or_images_are_named(tiny_model, tmp_path, items, message):
    if items == "mixed":
        items = [random_images([(42, 56)])[0], str(tmp_path / "a.png")]
    with pytest.raises(InputError, match=message):
        reconstruct(items, tiny_model, device="cpu", progress=False)


def test_a_view_cropped_almost_entirely_is_named_with_the_loss_and_the_fix(tiny_model):
    images = random_images([(42, 56), (42, 56), (14, 1000)])
    rec = reconstruct(images, tiny_model, device="cpu", instance_config=FAST_INSTANCES, progress=False)
    dropped = [note for note in rec.notes if note.startswith("image0002:")]
    assert len(dropped) == 1, rec.notes
    assert "drops 98.1% of it" in dropped[0] and "--mode pad" in dropped[0]
    assert not any(note.startswith(("image0000:", "image0001:")) for note in rec.notes)


def test_every_second_of_a_reconstruction_belongs_to_a_named_stage(tiny_model):
    # A large photo makes mapping back to its resolution a visible share of the run.
    images = random_images([(1500, 2000), (42, 56)])
    start = time.perf_counter()
    rec = reconstruct(images, tiny_model, device="cpu", instance_config=FAST_INSTANCES, progress=False)
    wall = time.perf_counter() - start
    assert "map to original resolution" in rec.timings
    # Untimed glue (notes, dataclass construction) is milliseconds; 10% covers a loaded machine.
    assert sum(rec.timings.values()) >= 0.9 * wall, (rec.timings, wall)


PEAK_MEMORY_SCRIPT = """
import json, resource, sys
import numpy as np
from iggt.inference.preprocess import preprocess_images
first = np.random.default_rng(0).random((300, 400, 3), dtype=np.float32)
strip = np.random.default_rng(1).random((50, 20000, 3), dtype=np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tensor, records = preprocess_images([first, strip], 518, 14, "crop")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grown_mb": (after - before) / 1024, "shape": list(tensor.shape)}))
"""


def test_cropping_a_strip_needs_memory_of_what_the_network_sees():
    # Resizing the whole 20000 x 50 strip to cover 518 x 378 first would take 3 x 378 x 151200
    # floats (686 MB); the network sees 2 x 3 x 378 x 518 floats (4.7 MB).
    done = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_SCRIPT],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["shape"] == [2, 3, 378, 518]
    assert result["grown_mb"] < 150, result


@pytest.mark.parametrize("field", ["min_instance_size", "merge_threshold", "noise_distance", "position_weight"])
def test_instance_config_numbers_must_be_finite(field):
    from iggt.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"InstanceConfig.{field}=inf must be a finite number"):
        InstanceConfig(**{field: float("inf")})
