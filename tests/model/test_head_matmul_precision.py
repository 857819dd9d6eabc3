"""heads_matmuls_like_convolutions: the heads' float32 matrix products follow the convolutions' TF32 setting."""

import pytest
import torch

from iggt.model.layers.head_matmul_precision import SWITCH, heads_matmuls_like_convolutions

CUDA = torch.device("cuda")  # the context only reads the device's type: no GPU needed


@pytest.fixture(autouse=True)
def restore_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def inside(device: torch.device) -> bool:
    with heads_matmuls_like_convolutions(device):
        return torch.backends.cuda.matmul.allow_tf32


def test_cuda_matmuls_take_tf32_inside_and_strict_float32_after():
    assert inside(CUDA)
    assert not torch.backends.cuda.matmul.allow_tf32


def test_the_setting_is_restored_when_the_heads_raise():
    with pytest.raises(RuntimeError), heads_matmuls_like_convolutions(CUDA):
        raise RuntimeError("a head failed")
    assert not torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("reason", ["cpu", "convolutions strict", "switched off"])
def test_matmuls_stay_strict_where_the_convolutions_are_or_the_switch_says_so(reason):
    if reason == "cpu":
        assert not inside(torch.device("cpu"))
        return
    if reason == "convolutions strict":
        torch.backends.cudnn.allow_tf32 = False
        assert not inside(CUDA)
        return
    with SWITCH.override(False):
        assert not inside(CUDA)


def test_a_user_who_allowed_tf32_keeps_it():
    torch.backends.cuda.matmul.allow_tf32 = True
    assert inside(CUDA)
    assert torch.backends.cuda.matmul.allow_tf32
