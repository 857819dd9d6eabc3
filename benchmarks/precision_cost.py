"""What the fast settings cost in accuracy: `large` with the parity weights against the official float32 outputs.

    python benchmarks/precision_cost.py --reference ../shared/reference/parity [--fixture official_2x224.npz]

The reference folder holds parity_fill.py (the shared deterministic weight rule) and the official
code's float32 outputs for those weights and images. For each setting the table gives, per output,
max |ours - official| / max |official| (as tests/model/test_large.py measures parity), and for the
instance features the smallest and mean cosine to the official (unit-normalised) features. Runs on
CUDA (reduced precision needs it); TF32 is off except in the row that says it is on (PyTorch's
default for convolutions, which the heads' matrix products follow: iggt.model.layers.head_matmul_precision);
the trunk's MLPs take GELU in their first product's epilogue (iggt.model.layers.gelu_epilogue) except in
the rows that say "exact GELU".
Writes benchmarks/results/precision_cost_<gpu>.json.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from gpu_results import gpu_result_path  # noqa: E402

from iggt.model.iggt import IGGT  # noqa: E402
from iggt.model.layers.attention_kernels import attention_backend, select_backend  # noqa: E402
from iggt.model.layers.gelu_epilogue import gelu_epilogue  # noqa: E402

F32, BF16, F16 = torch.float32, torch.bfloat16, torch.float16
SETTINGS = {  # attention, trunk dtype, head dtype, TF32 for the heads' convolutions (and products), GELU epilogue
    "float32": ("sdpa", F32, F32, False, True),
    "bf16 trunk, float32 heads (TF32 off)": ("sdpa", BF16, F32, False, True),
    "bf16 trunk, float32 heads (TF32 off), exact GELU": ("sdpa", BF16, F32, False, False),
    "bf16 trunk, float32 heads on TF32 (default), FA3": ("fa3", BF16, F32, True, True),
    "bf16 trunk, float32 heads on TF32, FA3, exact GELU": ("fa3", BF16, F32, True, False),
    "bf16 trunk, float16 heads, FA3": ("fa3", BF16, F16, False, True),
    "bf16 trunk and heads": ("sdpa", BF16, BF16, False, True),
    "bf16 trunk and heads, FA3 attention": ("fa3", BF16, BF16, False, True),
}
GEOMETRY = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf")


def load_fill(reference: Path):
    spec = importlib.util.spec_from_file_location("parity_fill", reference / "parity_fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fill_


def relative_error(ours: torch.Tensor, official: np.ndarray) -> float:
    official = torch.as_tensor(official, dtype=torch.float64)
    ours = ours.detach().cpu().to(torch.float64).reshape(official.shape)
    return float((ours - official).abs().max() / official.abs().max())


def compare(output: dict, official: np.lib.npyio.NpzFile) -> dict:
    row = {key: relative_error(output[key], official[key]) for key in GEOMETRY}
    reference = torch.nn.functional.normalize(torch.as_tensor(official["part_feat"], dtype=torch.float64), dim=2)
    reference = reference.permute(0, 1, 3, 4, 2)  # (B, S, C, H, W) -> channels last, as ours
    cosine = (output["instance_feat"].cpu().double() * reference).sum(-1)
    row["instance_feat_min_cosine"] = float(cosine.min())
    row["instance_feat_mean_cosine"] = float(cosine.mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--fixture", default="official_2x224.npz")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("precision_cost.py compares CUDA precisions; no CUDA device is available")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    official = np.load(args.reference / args.fixture)
    model = IGGT.from_preset("large", enable_track=False).eval()
    load_fill(args.reference)(model)
    model.cuda()
    images = torch.as_tensor(official["images"]).reshape(1, -1, *official["images"].shape[-3:]).cuda()
    gpu = torch.cuda.get_device_name()
    out = args.out or gpu_result_path("precision_cost", gpu)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "device": gpu,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fixture": args.fixture,
        "rows": [],
    }
    print(f"{'setting':<64} " + " ".join(f"{k:>10}" for k in GEOMETRY) + "  cos min  cos mean")
    for name, (attention, trunk, heads, tf32, epilogue) in SETTINGS.items():
        torch.backends.cudnn.allow_tf32 = tf32
        if attention == "fa3" and select_backend(images.device, BF16) != "fa3":
            print(f"{name:<64} skipped: FlashAttention-3 is not usable here")
            continue
        with torch.inference_mode(), attention_backend(attention), gelu_epilogue(epilogue):
            output = model(images, trunk_dtype=trunk, head_dtype=heads)
        row = {
            "setting": name,
            "attention": attention,
            "trunk_dtype": str(trunk),
            "head_dtype": str(heads),
            "tf32": tf32,
            "gelu_epilogue": epilogue,
        }
        row.update(compare(output, official))
        result["rows"].append(row)
        errors = " ".join(f"{row[k]:10.2e}" for k in GEOMETRY)
        print(f"{name:<64} {errors}  {row['instance_feat_min_cosine']:.4f}  {row['instance_feat_mean_cosine']:.5f}")
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
