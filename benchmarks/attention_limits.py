"""Which of the model's attention calls each SDPA backend serves, forward and backward, at a batch.

Records the shapes of every ``F.scaled_dot_product_attention`` call in one forward pass of a
randomly initialised --preset on B scenes of S views at --size, then runs each distinct call alone,
forward and backward in bf16, under each backend (cuDNN, flash, memory-efficient, math) and prints
which ones fail. Written after `train.compile` runs of `small` at 32 scenes of 8 views stopped in
cuDNN's attention backward (``mha_graph.execute(...).is_good()``), which 16 scenes do not.

Usage:
    python benchmarks/attention_limits.py --preset small --scenes 16 32 --views 8 --size 224 224 --out $OUT/a.json
Prints a table and writes benchmarks/results/attention_limits_<device>.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

RESULTS = Path(__file__).parent / "results"
BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}


def record_calls(model, images: torch.Tensor) -> list[dict]:
    """The distinct (query, key, value, mask) shapes of the SDPA calls of one forward pass."""
    calls, original = {}, F.scaled_dot_product_attention

    def recording(query, key, value, attn_mask=None, *args, **kwargs):
        mask = None if attn_mask is None else (tuple(attn_mask.shape), str(attn_mask.dtype))
        signature = (tuple(query.shape), tuple(key.shape), tuple(value.shape), mask)
        calls[signature] = calls.get(signature, 0) + 1
        return original(query, key, value, attn_mask, *args, **kwargs)

    F.scaled_dot_product_attention = recording
    try:
        with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
            model(images)
    finally:
        F.scaled_dot_product_attention = original
    return [{"query": q, "key": k, "value": v, "mask": m, "calls": n} for (q, k, v, m), n in calls.items()]


def try_call(call: dict, backend: SDPBackend) -> str:
    """ "ok", or the first line of the error, for one call forward and backward in bf16."""
    device = torch.device("cuda")
    query, key, value = (
        torch.randn(call[name], device=device, dtype=torch.bfloat16, requires_grad=True)
        for name in ("query", "key", "value")
    )
    mask = None
    if call["mask"] is not None:
        shape, dtype = call["mask"]
        mask = (
            torch.ones(shape, device=device, dtype=torch.bool)
            if "bool" in dtype
            else torch.zeros(shape, device=device, dtype=torch.bfloat16)
        )
    try:
        with sdpa_kernel([backend]):
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
            out.float().sum().backward()
        torch.cuda.synchronize()
        return "ok"
    except RuntimeError as exc:
        torch.cuda.synchronize()
        return str(exc).splitlines()[0][:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--scenes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=[224, 224])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from iggt.model.iggt import IGGT

    torch.manual_seed(0)
    model = IGGT.from_preset(args.preset).cuda().eval()
    rows = []
    for scenes in args.scenes:
        images = torch.rand(scenes, args.views, 3, *args.size, device="cuda")
        for call in record_calls(model, images):
            results = {name: try_call(call, backend) for name, backend in BACKENDS.items()}
            rows.append({"scenes": scenes, **call, **results})
            batch_heads = call["query"][0] * call["query"][1]
            print(f"{scenes:>3} q{call['query']} k{call['key']} mask {call['mask']} (batch x heads {batch_heads}): "
                  + ", ".join(f"{k} {v}" for k, v in results.items()), flush=True)  # fmt: skip
    record = {
        "benchmark": "attention_limits",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "settings": {"preset": args.preset, "views": args.views, "size": args.size},
        "rows": rows,
    }
    out = args.out or RESULTS / "attention_limits_cuda.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
