"""gelu_epilogue: the MLP's first product with its GELU applied by the product, for bf16 inference on CUDA."""

import pytest
import torch
import torch.nn.functional as F

from iggt.model.layers.gelu_epilogue import epilogue_dtype, gelu_epilogue, linear_gelu
from iggt.model.layers.mlp import Mlp


def test_linear_gelu_is_the_mlp_hidden_layer_over_any_leading_shape():
    torch.manual_seed(0)
    mlp = Mlp(24, 96)
    x = torch.randn(2, 7, 5, 24)
    with torch.no_grad():
        hidden = linear_gelu(x, mlp.fc1, torch.float32)
        assert hidden.shape == (2, 7, 5, 96)
        torch.testing.assert_close(hidden, F.gelu(mlp.fc1(x)), rtol=1e-6, atol=1e-6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            eager = F.gelu(mlp.fc1(x))
        assert linear_gelu(x, mlp.fc1, torch.bfloat16).dtype == eager.dtype == torch.bfloat16


def test_the_cpu_keeps_the_eager_mlp():
    mlp = Mlp(8, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert epilogue_dtype(torch.randn(3, 8), mlp.fc1) is None


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_the_epilogue_runs_only_for_bf16_or_fp16_inference():
    mlp = Mlp(64, 256).cuda()
    x = torch.randn(10, 64, device="cuda")
    with torch.no_grad():
        assert epilogue_dtype(x, mlp.fc1) is None  # float32: the heads keep the exact GELU
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert epilogue_dtype(x, mlp.fc1) == torch.bfloat16
            with gelu_epilogue(False):
                assert epilogue_dtype(x, mlp.fc1) is None
        assert epilogue_dtype(x.half(), mlp.half().fc1) == torch.float16
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert epilogue_dtype(x, mlp.fc1) is None  # a gradient to record: training keeps eager


def _error(result: torch.Tensor, reference: torch.Tensor) -> float:
    return ((result.float() - reference).abs().max() / reference.abs().max()).item()


@cuda
def test_the_epilogue_mlp_is_as_close_to_float32_as_eager_bf16():
    torch.manual_seed(0)
    mlp = Mlp(1024, 4096).cuda()
    x = torch.randn(4, 1374, 1024, device="cuda")
    with torch.no_grad():
        reference = mlp(x)  # float32, exact GELU
        hidden_reference = F.gelu(mlp.fc1(x))
        with torch.autocast("cuda", dtype=torch.bfloat16):
            with gelu_epilogue(False):
                eager, eager_hidden = mlp(x), mlp.act(mlp.fc1(x))
            with gelu_epilogue(True):
                fused, fused_hidden = mlp(x), linear_gelu(x, mlp.fc1, torch.bfloat16)
    assert fused.dtype == eager.dtype == torch.bfloat16
    # bf16 inputs to the product already move the hidden layer by more than the tanh form does.
    assert _error(fused_hidden, hidden_reference) <= 1.25 * _error(eager_hidden, hidden_reference) + 1e-4
    assert _error(fused, reference) <= 1.25 * _error(eager, reference) + 1e-4


@cuda
def test_the_model_with_the_epilogue_is_as_close_to_float32_as_without():
    torch.manual_seed(0)
    from iggt.model.iggt import IGGT

    model = IGGT.from_preset("small").cuda().eval()
    images = torch.rand(1, 4, 3, 224, 224, device="cuda")
    with torch.inference_mode():
        reference = model(images, trunk_dtype=torch.float32)
        outputs = {}
        for enabled in (False, True):
            with gelu_epilogue(enabled):
                outputs[enabled] = model(images, trunk_dtype=torch.bfloat16)
    for key in ("depth", "world_points", "pose_enc"):
        off, on = (_error(outputs[enabled][key], reference[key].float()) for enabled in (False, True))
        assert on <= 1.5 * off + 1e-3, (key, on, off)
