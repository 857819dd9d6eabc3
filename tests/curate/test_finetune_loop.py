"""The documented fine-tuning loop at a tiny size on the CPU: curate an engine capture, train one
step from the shipped iggt-small weights on the curated scene, evaluate the result on it."""

import json

import numpy as np
from PIL import Image

from iggt.cli.main import main
from iggt.curate.degrade import Degradation, degrade_masks
from iggt.io.scene_format import write_scene
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_scenes

CONFIG = """
model: {preset: small, init_checkpoint: iggt-small}
optim: {lr: 1.0e-5, warmup_steps: 1}
data:
  sources: [{kind: folder, path: %s}]
  batch_size: 1
  views: 2
  image_size: [28, 28]
train: {steps: 1, log_interval: 1, checkpoint_interval: 100, output_dir: %s, device: cpu, precision: fp32}
"""


def test_curate_then_train_from_shipped_weights_then_eval(tmp_path):
    scene = next(
        render_scenes([7], 4, (56, 56), SceneConfig(trajectory_weights={"orbit": 1.0}), RenderConfig(shadows=False))
    )
    write_scene(scene, tmp_path / "room")
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name, ids in zip(scene.frame_names, scene.instance_ids, strict=True):
        labels = degrade_masks(ids, Degradation(split=0.1), rng).labels
        Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "masks" / f"{name}.png")
    curated, run = tmp_path / "curated", tmp_path / "run"
    assert (
        main(
            [
                "curate",
                "masks",
                "--capture",
                str(tmp_path / "room"),
                "--masks",
                str(tmp_path / "masks"),
                "--out",
                str(curated),
                "--quiet",
            ]
        )
        == 0
    )
    (tmp_path / "finetune.yaml").write_text(CONFIG % (curated, run))
    assert main(["train", "--config", str(tmp_path / "finetune.yaml"), "--no-progress"]) == 0
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 1 and np.isfinite(losses[0])
    model = run / "final" / "model.safetensors"
    assert (
        main(
            [
                "eval",
                "--data",
                str(curated),
                "--model",
                str(model),
                "--out",
                str(tmp_path / "eval"),
                "--device",
                "cpu",
                "--img-size",
                "56",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["num_scenes"] == 1 and "instances" in summary["tasks"]  # scored against the curated IDs
