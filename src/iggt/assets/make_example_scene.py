"""Render the example scene that `iggt reconstruct --example` reconstructs.

The PNG views in ``example_scene/images/`` are made by our scene engine (``iggt.synth``) and
committed, so the demo needs no download. Re-run after a change of the engine
(``GENERATOR_VERSION``)::

    python -m iggt.assets.make_example_scene --overwrite
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from iggt.errors import InputError
from iggt.structures.scene import Scene

EXAMPLE_DIR = Path(__file__).resolve().parent / "example_scene"
SEED = 1
"""An orbit around a cabinet and two tables: about a dozen instances, each seen in several views."""
NUM_VIEWS = 8
IMAGE_SIZE = (224, 224)
SUPERSAMPLE = 3
"""Anti-aliased RGB (3 x 3 rays per pixel); ground truth is not shipped, only the images."""


def render_example(view_indices: Sequence[int] | None = None) -> Scene:
    """The example scene as the engine renders it now; ``view_indices`` renders only those views."""
    from iggt.synth.config import RenderConfig
    from iggt.synth.generate import render_scenes

    render_config = RenderConfig(supersample=SUPERSAMPLE)
    return next(render_scenes([SEED], NUM_VIEWS, IMAGE_SIZE, render_config=render_config, view_indices=view_indices))


def make_example_scene(out_dir: Path = EXAMPLE_DIR, overwrite: bool = False) -> Path:
    """Render the example views into ``out_dir/images`` and describe them in ``out_dir/example.json``."""
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(f"{out_dir} is not empty; pass --overwrite to render the example scene again")
    scene = render_example()
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "images").mkdir(parents=True)
    for name, image in zip(scene.frame_names, scene.images, strict=True):
        Image.fromarray(image).save(out_dir / "images" / f"{name}.png", optimize=True)
    description = {
        **scene.metadata,
        "num_views": NUM_VIEWS,
        "image_size": list(IMAGE_SIZE),
        "supersample": SUPERSAMPLE,
        "instances_in_scene": len(scene.instances),
        "made_by": "python -m iggt.assets.make_example_scene",
    }
    (out_dir / "example.json").write_text(json.dumps(description, indent=1) + "\n")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EXAMPLE_DIR, help="folder to write (default: the shipped one)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing example")
    args = parser.parse_args(argv)
    print(make_example_scene(args.out, args.overwrite))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
