"""Transfer checkpoints: parts below a size limit, exact reassembly, corruption detected, resume."""

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import HandBuiltSource, make_batch, tiny_config

from iggt.cli.main import main
from iggt.errors import CheckpointError
from iggt.train.checkpoint import join_transfer_checkpoint, split_into_parts, write_checkpoint
from iggt.train.compact_state import BLOCK, dequantize_sqrt, quantize_sqrt
from iggt.train.trainer import Trainer


@pytest.fixture
def checkpoint(tmp_path):
    generator = torch.Generator().manual_seed(0)
    weights = {
        "a.weight": torch.randn(300, 200, generator=generator),
        "b.bias": torch.randn(77, generator=generator),
    }
    state = {"step": 3, "optimizer": {"state": {0: {"exp_avg": torch.randn(1000, generator=generator)}}}}
    return write_checkpoint(tmp_path / "step_0000003", weights, {"note": "test"}, state)


def test_parts_stay_below_the_limit_and_reassemble_exactly(tmp_path, checkpoint):
    limit = 50_000
    transfer = split_into_parts(checkpoint, tmp_path / "transfer", limit, bf16=False, training_state=True)
    parts = [p for p in transfer.iterdir() if ".part" in p.name]
    assert len(parts) > 4 and all(p.stat().st_size <= limit for p in parts)
    rebuilt = join_transfer_checkpoint(transfer, tmp_path / "rebuilt")
    for name in ("model.safetensors", "training_state.pt"):
        assert (rebuilt / name).read_bytes() == (checkpoint / name).read_bytes()


def test_bf16_transfer_halves_the_weights_and_can_leave_out_the_state(tmp_path, checkpoint):
    transfer = split_into_parts(checkpoint, tmp_path / "transfer", 10**6, bf16=True, training_state=False)
    rebuilt = join_transfer_checkpoint(transfer, tmp_path / "rebuilt")
    assert not (rebuilt / "training_state.pt").exists()
    original, halved = load_file(checkpoint / "model.safetensors"), load_file(rebuilt / "model.safetensors")
    assert all(halved[k].dtype == torch.bfloat16 and torch.equal(halved[k], original[k].bfloat16()) for k in original)


def test_a_corrupt_part_is_reported(tmp_path, checkpoint):
    transfer = split_into_parts(checkpoint, tmp_path / "transfer", 50_000, bf16=False, training_state=True)
    part = transfer / "model.safetensors.part001"
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        join_transfer_checkpoint(transfer, tmp_path / "rebuilt")


def test_training_resumes_from_a_transfer_checkpoint(tmp_path):
    options = ("train.transfer_checkpoint=true", "train.transfer_part_mb=0.5")
    first = Trainer(tiny_config(tmp_path / "gpu", *options), source=HandBuiltSource(), show_progress=False)
    first.run(until_step=2)
    parts = list((tmp_path / "gpu" / "transfer").glob("*.part*"))
    assert parts and all(p.stat().st_size <= 0.5 * 2**20 for p in parts)
    moved = tiny_config(tmp_path / "here", f"train.resume={tmp_path / 'gpu' / 'transfer'}")
    resumed = Trainer(moved, source=HandBuiltSource(), show_progress=False)
    assert resumed.step == 2 and resumed.source.index == 2
    original = first.model.state_dict()
    assert all(torch.equal(resumed.model.state_dict()[k], v) for k, v in original.items())


def test_cli_joins_a_transfer_checkpoint(tmp_path, checkpoint):
    transfer = split_into_parts(checkpoint, tmp_path / "transfer", 50_000, bf16=False, training_state=True)
    code = main(["train", "--join-transfer", str(transfer), "--output-dir", str(tmp_path / "here")])
    assert code == 0
    assert (tmp_path / "here" / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()
    assert main(["train", "--join-transfer", str(tmp_path), "--output-dir", str(tmp_path / "x")]) == 2


def test_compact_second_moments_round_up_within_one_step_of_their_block():
    generator = torch.Generator().manual_seed(1)
    # Magnitudes spread over eight decades, as Adam's v is, plus exact zeros and an odd length.
    values = torch.rand(1001, generator=generator) * 10.0 ** torch.randint(-10, -2, (1001,), generator=generator)
    values[::97] = 0.0
    packed = quantize_sqrt(values)
    restored = dequantize_sqrt(packed)
    root, restored_root = values.sqrt(), restored.sqrt()
    block_step = packed["scales"].repeat_interleave(BLOCK)[: len(values)]
    assert (restored_root >= root * (1 - 1e-6)).all()  # never below: steps never grow
    assert (restored_root - root <= block_step * (1 + 1e-6)).all()
    assert (restored[values == 0] <= block_step[values == 0] ** 2).all()
    assert packed["codes"].dtype == torch.uint8 and packed["codes"].numel() == 501  # two codes a byte


def test_a_compact_transfer_restores_everything_but_the_moments_exactly(tmp_path):
    options = ("train.transfer_checkpoint=true", "train.transfer_compact_state=true")
    first = Trainer(tiny_config(tmp_path / "gpu", *options), source=HandBuiltSource(), show_progress=False)
    first.run(until_step=2)
    full = (tmp_path / "gpu" / "checkpoints" / "step_0000002" / "training_state.pt").stat().st_size
    compact = sum(p.stat().st_size for p in (tmp_path / "gpu" / "transfer").glob("training_state.pt.part*"))
    assert compact < full / 4
    moved = tiny_config(tmp_path / "here", f"train.resume={tmp_path / 'gpu' / 'transfer'}")
    resumed = Trainer(moved, source=HandBuiltSource(), show_progress=False)
    assert resumed.step == 2 and resumed.source.index == 2
    assert resumed.scheduler.state_dict() == first.scheduler.state_dict()
    original, restored = first.optimizer.state_dict(), resumed.optimizer.state_dict()
    for key, entry in original["state"].items():
        mine = restored["state"][key]
        assert torch.equal(mine["step"], entry["step"])
        assert not mine["exp_avg"].any()
        assert (mine["exp_avg_sq"].sqrt() >= entry["exp_avg_sq"].sqrt() * (1 - 1e-6)).all()
    assert torch.isfinite(torch.stack(list(resumed.train_step(make_batch()).values()))).all()
