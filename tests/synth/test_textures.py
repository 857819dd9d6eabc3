"""The richer procedural textures: what each pattern looks like, and that default scenes never use them."""

import numpy as np
import torch

from iggt.synth.config import SceneConfig
from iggt.synth.layout import generate_layout
from iggt.synth.materials import RICH_TEXTURES
from iggt.synth.primitives import Texture
from iggt.synth.textures import blend_weights


def weights(texture: Texture, points: torch.Tensor) -> torch.Tensor:
    return blend_weights(points, torch.full(points.shape[:-1], int(texture)))


def test_rich_patterns():
    generator = torch.Generator().manual_seed(0)
    points = torch.rand(20000, 3, generator=generator) * 20 - 10
    speckle = weights(Texture.SPECKLE, points)
    assert set(speckle.unique().tolist()) == {0.0, 1.0} and 0.1 < speckle.mean() < 0.2  # sparse flecks
    cells = weights(Texture.CELLS, points)
    assert len(cells.unique()) > 1000 and 0.4 < cells.mean() < 0.6  # a random shade per unit cell
    inside_one_cell = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    assert torch.equal(*weights(Texture.CELLS, inside_one_cell))
    wood = weights(Texture.WOOD, points)
    assert wood.min() >= 0.0 and wood.max() <= 1.0 and wood.std() > 0.25


def test_rich_textures_only_when_asked_and_nothing_else_moves():
    default = generate_layout(6, SceneConfig())
    assert not np.isin(default.primitives.texture, [int(t) for t in RICH_TEXTURES]).any()
    rich = generate_layout(6, SceneConfig(rich_texture_probability=1.0))
    assert np.isin(rich.primitives.texture, [int(t) for t in RICH_TEXTURES]).all()
    for name in ("centre", "size", "instance_id", "colour_a", "colour_b"):
        assert np.array_equal(getattr(rich.primitives, name), getattr(default.primitives, name)), name
    for instance in np.unique(rich.primitives.instance_id):  # one texture per instance
        assert len(np.unique(rich.primitives.texture[rich.primitives.instance_id == instance])) == 1
