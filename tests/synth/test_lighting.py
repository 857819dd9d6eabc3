"""Several coloured lights and Blinn-Phong highlights: what they add, and that off means as before."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from iggt.errors import ConfigError
from iggt.synth.colour_temperature import kelvin_to_rgb
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_prepared
from iggt.synth.layout import SceneLayout
from iggt.synth.prepare import SceneRequest, prepare_scene
from iggt.synth.primitives import Lighting, Material, PointLight, PrimitiveKind, PrimitiveListBuilder, Texture
from iggt.synth.renderer import SceneBatch, render_views

SIZE = (32, 48)
H, W, FOCAL = 40, 40, 40.0
WHITE = Material(Texture.PLAIN, (0.8, 0.8, 0.8), (0.8, 0.8, 0.8), 1.0, (0.0, 0.0, 0.0))
AMBIENT = 0.1
WALL_Z = 5.0


def render_seed(seed: int, config: SceneConfig, shadows: bool = True) -> torch.Tensor:
    prepared = [prepare_scene(SceneRequest(seed, 2, SIZE), config)]
    return render_prepared(prepared, SIZE, RenderConfig(shadows=shadows), "cpu").rgb


@pytest.mark.parametrize("seed", [4, 9])
def test_the_multi_light_path_with_silent_lamps_renders_the_default_scene(seed):
    """Two and three lights where the lamps have strength 0 give the default (one white light) render."""
    default = render_seed(seed, SceneConfig())
    silent = SceneConfig(lights_range=(3, 3), extra_light_strength_range=(0.0, 0.0))
    assert torch.allclose(render_seed(seed, silent), default, atol=1e-6)
    lit = SceneConfig(lights_range=(3, 3))
    assert (render_seed(seed, lit) - default).abs().max() > 0.05  # the lamps do light the room


def test_default_layouts_keep_one_white_light_and_matte_surfaces():
    layout, _ = prepare_scene(SceneRequest(4, 2, SIZE), SceneConfig())
    assert layout.lighting.colour == (1.0, 1.0, 1.0) and layout.lighting.extra_lights == ()
    assert (layout.primitives.specular == 0).all()
    glossy, _ = prepare_scene(SceneRequest(4, 2, SIZE), SceneConfig(specular_probability=1.0, lights_range=(2, 3)))
    assert (glossy.primitives.specular > 0).all() and len(glossy.lighting.extra_lights) >= 1
    # Lamps and gloss have generators of their own: the room and its objects stay where they were.
    assert np.array_equal(glossy.primitives.centre, layout.primitives.centre)
    assert glossy.lighting.position == layout.lighting.position


def wall_layout(lights: list[PointLight], specular: float = 0.0, shininess: float = 1.0) -> SceneLayout:
    """A white wall facing the camera at z = WALL_Z, lit by ``lights`` (the first is the main light)."""
    builder = PrimitiveListBuilder()
    builder.add(PrimitiveKind.BOX, np.array([0, 0, WALL_Z + 0.1]), np.array([20, 20, 0.1]), np.eye(3), 1, 1, WHITE)
    primitives = builder.build()
    primitives = dataclasses.replace(primitives, specular=np.array([specular]), shininess=np.array([shininess]))
    main = lights[0]
    lighting = Lighting(main.position, main.strength, main.falloff, AMBIENT, (0.5, 0.6, 0.9), main.colour)
    return SceneLayout(
        seed=0,
        room_size=np.array([10.0, 10.0, 3.0]),
        has_ceiling=False,
        primitives=primitives,
        lighting=dataclasses.replace(lighting, extra_lights=tuple(lights[1:])),
        instances={},
        obstacles=np.zeros((0, 3)),
        focus_points=np.zeros((1, 3)),
    )


def render_wall(layout: SceneLayout) -> torch.Tensor:
    """(H, W, 3) linear RGB of the identity camera (at the origin, looking along +z)."""
    intrinsic = torch.tensor([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1]])[None, None]
    views = render_views(
        SceneBatch.from_layouts([layout], "cpu"), intrinsic, torch.eye(3, 4)[None, None], (H, W), RenderConfig()
    )
    return views.rgb[0, 0] ** 2.2


def test_a_lamp_of_strength_zero_changes_nothing():
    main = PointLight((1.0, -1.0, 0.0), 1.0, 0.02)
    alone = render_wall(wall_layout([main]))
    with_dark_lamp = render_wall(wall_layout([main, PointLight((-1.0, 0.5, 2.0), 0.0, 0.1)]))
    assert torch.allclose(alone, with_dark_lamp, atol=1e-6)
    with_lamp = render_wall(wall_layout([main, PointLight((-1.0, 0.5, 2.0), 0.5, 0.1)]))
    assert (with_lamp > alone + 1e-3).all()  # a second light adds light everywhere it reaches


def test_a_warm_light_makes_a_white_wall_redder_than_a_cold_light():
    def red_over_blue(kelvin: float) -> float:
        colour = tuple(float(c) for c in kelvin_to_rgb(kelvin))
        image = render_wall(wall_layout([PointLight((0.0, 0.0, 0.0), 1.0, 0.02, colour)]))
        centre = image[H // 2, W // 2]
        return float(centre[0] / centre[2])

    assert red_over_blue(2700) > 1.5 > 1.0 > red_over_blue(10000)
    assert math.isclose(red_over_blue(6500), 1.0, rel_tol=1e-4)


def test_a_highlight_appears_at_the_mirror_direction_and_strength_zero_is_lambert():
    light = PointLight((1.5, -1.0, 1.0), 0.6, 0.0)  # dim enough that no pixel saturates
    matte = render_wall(wall_layout([light]))
    # Lambert: albedo * (ambient + strength * cos), cos = distance to the wall plane / distance to the light.
    u, v = 10, 30
    point = np.array([(u - W / 2) / FOCAL * WALL_Z, (v - H / 2) / FOCAL * WALL_Z, WALL_Z])
    to_light = np.array(light.position) - point
    expected = 0.8 * (AMBIENT + light.strength * (WALL_Z - light.position[2]) / np.linalg.norm(to_light))
    assert matte[v, u, 0].item() == pytest.approx(expected, rel=1e-4)
    assert torch.equal(render_wall(wall_layout([light], specular=0.0, shininess=300.0)), matte)

    highlight = (render_wall(wall_layout([light], specular=0.3, shininess=300.0)) - matte)[..., 0]
    # The camera (origin) and the light mirror on the wall where the path splits in the ratio of their distances.
    share = WALL_Z / (WALL_Z + WALL_Z - light.position[2])
    mirror = np.array(light.position[:2]) * share
    expected_u, expected_v = mirror[0] / WALL_Z * FOCAL + W / 2, mirror[1] / WALL_Z * FOCAL + H / 2
    peak_v, peak_u = divmod(int(highlight.argmax()), W)
    assert abs(peak_u - expected_u) <= 1.5 and abs(peak_v - expected_v) <= 1.5, (peak_u, peak_v, expected_u, expected_v)
    assert highlight.max() > 0.15 and highlight[0, 0] < 1e-3 and (highlight >= 0).all()


def test_bad_lighting_configs_are_config_errors():
    with pytest.raises(ConfigError, match="lights_range"):
        SceneConfig(lights_range=(1, 9))
    with pytest.raises(ConfigError, match="light_kelvin_range"):
        SceneConfig(light_kelvin_range=(500.0, 3000.0))
    with pytest.raises(ConfigError, match="roughness_range"):
        SceneConfig(roughness_range=(0.2, 1.5))
