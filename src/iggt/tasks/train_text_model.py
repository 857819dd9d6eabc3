"""Train iggt-text, the shipped image-text model, on crops of the scene engine's renders (CPU).

    python -m iggt.tasks.train_text_model --out training_runs/iggt-text

Phases (every number is logged to ``log.jsonl`` in ``--out``):

1. render ``--scenes`` training scenes (seeds ``derive_training_seed(--seed, i)``, never benchmark
   seeds; up to one low-poly mesh object each, so rocks and crystals are seen) and cut every visible
   instance twice (context 10-45%, box shifted up to 10%);
2. train both towers, crops drawn with class-balanced weights (count^-1/2), with a CLIP loss
   whose targets are all captions in the batch that fit the crop (several crops share a caption
   such as "a photo of a wall."), AdamW with a cosine decay;
3. measure held-out accuracy on crops of the ``synthetic-val`` benchmark scenes (reserved seeds,
   the crops cut as inference cuts them): class among the 23 engine classes with the default
   prompt, colour among the 11 colours;
4. write the weights, the tokenizer's vocabulary and the config into one safetensors file.

Fixed seeds throughout, so a re-run gives the same data; the weights agree up to the
non-determinism of CPU kernels.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from iggt.synth.benchmarks import get_benchmark
from iggt.synth.catalog import CLASS_NAMES
from iggt.synth.config import SceneConfig
from iggt.synth.seeds import derive_training_seed, is_benchmark_seed
from iggt.tasks.text_model.attributes import COLOURS, NONE
from iggt.tasks.text_model.captions import build_vocabulary, fits, random_caption, tokenize
from iggt.tasks.text_model.crops import CropSet, cut_crops
from iggt.tasks.text_model.network import TextModel, TextModelConfig, uint8_to_input
from iggt.tasks.text_model.weights import save_text_model

DEFAULT_PROMPT = "a photo of a {}."


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for log.jsonl and the weights")
    parser.add_argument(
        "--weights", type=Path, help="where to write the safetensors (default OUT/iggt-text.safetensors)"
    )
    parser.add_argument("--seed", type=int, default=19, help="base seed of the scenes, crops, captions and weights")
    parser.add_argument("--scenes", type=int, default=240, help="training scenes to render")
    parser.add_argument("--views", type=int, default=3, help="views per training scene")
    parser.add_argument("--image-size", type=int, default=128, help="side of the rendered training views")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--heldout-scenes", type=int, default=4, help="synthetic-val scenes for held-out numbers")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def write(self, **record) -> None:
        print(json.dumps(record), flush=True)
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")


def training_crops(args: argparse.Namespace, rng: np.random.Generator) -> CropSet:
    seeds = [derive_training_seed(args.seed, index) for index in range(args.scenes)]
    assert not any(is_benchmark_seed(seed) for seed in seeds)
    # Meshes are off in the engine's default scenes; without them "rock" and "crystal" stay untrained words.
    scene_config = SceneConfig(mesh_objects_range=(0, 1))
    return cut_crops(
        seeds, args.views, (args.image_size,) * 2, rng, context_range=(0.1, 0.45), shift=0.1, passes=2,
        scene_config=scene_config,
    )  # fmt: skip


def heldout_crops(count: int, rng: np.random.Generator) -> CropSet:
    benchmark = get_benchmark("synthetic-val")
    return cut_crops(benchmark.seeds()[:count], 4, benchmark.image_size, rng)


def caption_batch(attributes: np.ndarray, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    pairs = [random_caption(row, rng) for row in attributes]
    return [text for text, _ in pairs], np.asarray([mentioned for _, mentioned in pairs], np.int64)


def contrastive_loss(model: TextModel, images: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor):
    """CLIP loss with several positives: each crop's target is uniform over the captions it fits,
    each caption's over the crops that fit it. targets: (N, N) bool, diagonal True."""
    logits = model.logit_scale.exp() * model.image(images) @ model.text(tokens).T
    weights = targets.float()
    image_loss = -(weights / weights.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    text_loss = -(weights / weights.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0).mean()
    return (image_loss + text_loss) / 2


def class_balanced_weights(classes: np.ndarray) -> np.ndarray:
    """(N,) sampling probabilities proportional to count(class)^-1/2: rare classes (cups, books) are
    drawn more often than their share, walls and floors less (mIoU weighs every class alike)."""
    counts = np.bincount(classes)
    weights = counts[classes].astype(np.float64) ** -0.5
    return weights / weights.sum()


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, H, W, 3) uint8: random horizontal flips (colour and class do not change)."""
    flip = torch.rand(len(batch), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], batch.flip(2), batch)


@torch.no_grad()
def heldout_accuracy(model: TextModel, crops: CropSet, vocabulary: list[str]) -> dict:
    model.eval()
    images = model.image(uint8_to_input(torch.from_numpy(crops.images)))
    classes = model.text(torch.from_numpy(tokenize([DEFAULT_PROMPT.format(n) for n in CLASS_NAMES], vocabulary)))
    colours = model.text(torch.from_numpy(tokenize([f"a {c} object" for c in COLOURS], vocabulary)))
    class_hit = (images @ classes.T).argmax(1).numpy() == crops.attributes[:, 0]
    coloured = crops.attributes[:, 1] != NONE
    colour_hit = (images @ colours.T).argmax(1).numpy()[coloured] == crops.attributes[coloured, 1]
    per_class = [class_hit[crops.attributes[:, 0] == c].mean() for c in np.unique(crops.attributes[:, 0])]
    model.train()
    return {
        "class_accuracy": float(class_hit.mean()),
        "class_mean_accuracy": float(np.mean(per_class)),
        "colour_accuracy": float(colour_hit.mean()) if coloured.any() else None,
        "crops": len(crops.images),
    }


def train(args: argparse.Namespace, log: Log) -> None:
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.process_time(), time.perf_counter()
    crops = training_crops(args, rng)
    heldout = heldout_crops(args.heldout_scenes, np.random.default_rng(args.seed + 1))
    log.write(
        phase="data", crops=len(crops.images), heldout_crops=len(heldout.images),
        class_counts=np.bincount(crops.attributes[:, 0], minlength=len(CLASS_NAMES)).tolist(),
        cpu_s=round(time.process_time() - start[0], 1), wall_s=round(time.perf_counter() - start[1], 1),
    )  # fmt: skip
    vocabulary = build_vocabulary()
    model = TextModel(TextModelConfig(vocabulary_size=len(vocabulary)))
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
    )
    images_all = torch.from_numpy(crops.images)
    sampling = class_balanced_weights(crops.attributes[:, 0])
    for step in range(args.steps):
        index = rng.choice(len(images_all), args.batch, replace=False, p=sampling)
        attributes = crops.attributes[index]
        texts, mentioned = caption_batch(attributes, rng)
        targets = torch.from_numpy(fits(attributes, mentioned))
        images = uint8_to_input(augment(images_all[index], generator))
        loss = contrastive_loss(model, images, torch.from_numpy(tokenize(texts, vocabulary)), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0 or step == args.steps - 1:
            record = {"phase": "train", "step": step, "loss": round(loss.item(), 4), "lr": schedule.get_last_lr()[0]}
            if step % 100 == 0 or step == args.steps - 1:
                record["heldout"] = heldout_accuracy(model, heldout, vocabulary)
            log.write(
                **record,
                cpu_s=round(time.process_time() - start[0], 1),
                wall_s=round(time.perf_counter() - start[1], 1),
            )
    weights = args.weights or args.out / "iggt-text.safetensors"
    save_text_model(model.eval(), vocabulary, weights, {"seed": args.seed, "steps": args.steps})
    arguments = {key: str(value) for key, value in vars(args).items() if key not in ("out", "weights")}
    log.write(
        phase="done", weights_bytes=os.path.getsize(weights), heldout=heldout_accuracy(model, heldout, vocabulary),
        cpu_s=round(time.process_time() - start[0], 1), wall_s=round(time.perf_counter() - start[1], 1),
        torch=torch.__version__, threads=torch.get_num_threads(), arguments=arguments,
    )  # fmt: skip


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train(args, Log(args.out / "log.jsonl"))


if __name__ == "__main__":
    main()
