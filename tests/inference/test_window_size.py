"""The automatic window: K and M from given free memory (never the test machine's)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from iggt.errors import InputError
from iggt.inference import window_size
from iggt.inference.preprocess import MappedViews, map_to_original
from iggt.inference.reconstruct import reconstruct
from iggt.inference.window_size import (
    FRAME_MEMORY,
    FrameMemory,
    balanced_window,
    choose_window,
    frame_memory,
    free_memory,
)
from iggt.inference.windows import plan_windows

PIXELS = (100, 100)
"""1e4 pixels: at 100 bytes a pixel, one frame is 1 MB, so the expected K can be counted by hand."""
FLAT = FrameMemory(per_frame=100.0, per_chunk_frame=0.0, result=0.0)


def test_a_capture_that_fits_runs_in_one_pass():
    choice = choose_window(40, PIXELS, 100e6, FLAT, chunk=12, result_on_device=False)
    assert choice.window is None and "40 frames fit in one pass" in choice.note


def test_the_largest_window_is_the_most_that_fits_the_usable_memory():
    # 70 % of 50 MB is 35 MB: 35 frames of 1 MB; 128 frames are 4 windows of 35 sharing 4 exactly
    choice = choose_window(128, PIXELS, 50e6, FLAT, chunk=12, result_on_device=False)
    assert (choice.largest, choice.window, choice.overlap) == (35, 35, 4)
    assert choice.note.startswith("windows of 35 frames sharing 4, chosen from the free memory (at 100x100, 0.1 GB")
    assert "at most 35 frames a pass" in choice.note


def test_the_windows_are_the_fewest_that_fit_all_of_one_size():
    # 35 fit; 200 frames need 7 windows sharing 4 (6 cover only 6 x 31 + 4 = 190): of 32 frames, not
    # 6 of 35 and a seventh moved back over frames already seen
    choice = choose_window(200, PIXELS, 50e6, FLAT, chunk=12, result_on_device=False)
    assert (choice.largest, choice.window, choice.overlap) == (35, 32, 4)
    plan = plan_windows(200, choice.window, choice.overlap)
    assert len(plan.windows) == 7 and {len(w) for w in plan.windows} == {32}


@settings(deadline=None)
@given(
    frames=st.integers(min_value=7, max_value=5000),
    largest=st.integers(min_value=6, max_value=2000),
    overlap=st.integers(min_value=2, max_value=8),
)
def test_balanced_windows_cover_the_capture_with_the_fewest_passes(frames, largest, overlap):
    assume(overlap < largest < frames)
    window = balanced_window(frames, largest, overlap)
    plan = plan_windows(frames, window, overlap)
    fewest = len(plan.windows)
    # n windows of `largest` sharing M cover n (K - M) + M frames: n do, n - 1 would not
    assert fewest * (largest - overlap) + overlap >= frames > (fewest - 1) * (largest - overlap) + overlap
    assert window <= largest
    assert plan.windows[0].start == 0 and plan.windows[-1].stop == frames
    shared = [len(plan.shared(i)) for i in range(1, len(plan.windows))]
    # the last window moves back by fewer than n frames: the passes see at most n - 1 frames twice beyond M
    assert min(shared) >= overlap and sum(shared) < (fewest - 1) * overlap + fewest


def test_the_dense_heads_chunk_counts_once_per_window():
    heads = FrameMemory(per_frame=100.0, per_chunk_frame=200.0, result=0.0)
    # 70 MB: the heads' 12 chunk frames of 2 MB (24 MB) and 46 frames of 1 MB
    assert choose_window(200, PIXELS, 100e6, heads, chunk=12, result_on_device=False).largest == 46
    # below the chunk each frame costs 1 + 2 MB: 11 frames in 35 MB (12 would need 12 + 24)
    assert choose_window(200, PIXELS, 50e6, heads, chunk=12, result_on_device=False).largest == 11


def test_on_the_cpu_the_result_of_every_frame_is_set_aside_first():
    host = FrameMemory(per_frame=100.0, per_chunk_frame=0.0, result=100.0)
    # 70 % of 300 MB = 210 MB, less 200 frames x 1 MB of result: 10 frames
    assert choose_window(200, PIXELS, 300e6, host, chunk=12, result_on_device=True).largest == 10
    # on a GPU the result goes to the host: the whole 210 MB is the window's
    assert choose_window(300, PIXELS, 300e6, host, chunk=12, result_on_device=False).largest == 210


def test_a_small_window_shares_fewer_frames():
    choice = choose_window(200, PIXELS, 10e6, FLAT, chunk=12, result_on_device=False)
    assert (choice.largest, choice.overlap) == (7, 2)


def test_too_little_memory_is_one_clear_line():
    host = FrameMemory(per_frame=100.0, per_chunk_frame=0.0, result=100.0)
    with pytest.raises(
        InputError, match=r"^not enough free memory for 500 frames .*their result needs about 0.5 GB and a window"
    ):
        choose_window(500, PIXELS, 300e6, host, chunk=12, result_on_device=True)
    with pytest.raises(InputError, match=r"^not enough free memory for a window of 6 frames"):
        choose_window(500, PIXELS, 5e6, FLAT, chunk=12, result_on_device=False)


def test_each_preset_width_maps_to_a_measured_model():
    assert frame_memory(64) == ("small", FRAME_MEMORY["small"])
    assert frame_memory(256)[0] == "small"
    assert frame_memory(1024)[0] == "large"
    assert frame_memory(1536)[0] == "large"  # wider than any measured: the largest


def test_the_host_free_memory_is_read():
    import torch

    free = free_memory(torch.device("cpu"))
    assert free is None or free > 0


def test_reconstruct_windows_a_capture_that_does_not_fit(tiny_model, monkeypatch):
    """Only the reading of the free memory is replaced (17 MB free): the choice and the windowed
    run are the real ones, and the note says what was chosen."""
    monkeypatch.setattr(window_size, "free_memory", lambda device: 17_000_000)
    images = np.random.default_rng(0).random((10, 42, 56, 3), dtype=np.float32)
    result = reconstruct(images, tiny_model, device="cpu", progress=False)
    assert result.num_views == 10
    chosen = [note for note in result.notes if note.startswith("windows of ")]
    assert chosen and "chosen from the free memory (small at 56x42" in chosen[0], result.notes
    assert any(note.startswith("windowed: ") for note in result.notes)
    # on the CPU the passes run one after another inside the windows stage
    assert 0 < result.timings["windows: network"] < result.timings["windows"]


def test_the_advice_names_the_command_lines_option():
    from iggt.cli.spellings import cli_message

    host = FrameMemory(per_frame=100.0, per_chunk_frame=0.0, result=100.0)
    with pytest.raises(InputError) as error:
        choose_window(500, PIXELS, 300e6, host, chunk=12, result_on_device=True)
    assert str(error.value).endswith(
        "keep the result on disk (store=DIR), use fewer frames (max_frames=) or free memory"
    )
    assert cli_message(error.value, "reconstruct").endswith(
        "keep the result on disk (--store DIR), use fewer frames (--max-frames) or free memory"
    )


def test_a_result_too_large_for_memory_runs_with_a_store(tiny_model, monkeypatch, tmp_path):
    """40 frames whose result (about 9 MB) and smallest window do not fit the 14 MB usable of 20 MB
    free: in memory that is the one-line error; with a store the result goes to disk, so the window
    takes the memory, and the result's arrays are memory maps in the store."""
    monkeypatch.setattr(window_size, "free_memory", lambda device: 20_000_000)
    images = np.random.default_rng(0).random((40, 42, 56, 3), dtype=np.float32)
    with pytest.raises(InputError, match="keep the result on disk"):
        reconstruct(images, tiny_model, device="cpu", progress=False)
    store = tmp_path / "result"
    result = reconstruct(images, tiny_model, device="cpu", progress=False, store=store)
    assert result.num_views == 40 and any(note.startswith("windowed: ") for note in result.notes)
    assert f"the windows' result is stored in {store}" in result.notes
    depth = np.load(store / "depth.npy", mmap_mode="r")
    assert depth.shape == (40, 42, 56)
    np.testing.assert_array_equal(depth, result.predictions.depth)
    np.testing.assert_array_equal(np.load(store / "instance_labels.npy"), result.instances.labels)
    # the maps at the original resolution are resampled when read, as map_to_original does at once
    assert isinstance(result.depth, MappedViews) and len(result.instance_labels) == 40
    eager = map_to_original(result.instances.labels, result.records, nearest=True)
    for view in (0, 17, -1):
        np.testing.assert_array_equal(result.instance_labels[view], eager[view])
    np.testing.assert_array_equal(np.stack(result.depth), np.stack(map_to_original(depth, result.records)))


@pytest.mark.parametrize("kind", ["file", "non-empty folder"])
def test_a_store_that_is_not_an_empty_folder_is_one_line(tiny_model, tmp_path, kind):
    store = tmp_path / "store"
    if kind == "file":
        store.write_text("x")
    else:
        store.mkdir()
        (store / "depth.npy").write_text("another run's")
    images = np.zeros((3, 42, 56, 3), np.float32)
    with pytest.raises(InputError, match="store=.*(is a file|is not empty); give an empty or new folder"):
        reconstruct(images, tiny_model, device="cpu", progress=False, store=store)
    assert kind == "file" or (store / "depth.npy").read_text() == "another run's"
