"""The IGGT network: the VGGT trunk, camera / depth / point / track heads and the instance path.

Module attribute names are those of the official release (``part_adaptor`` and ``part_head``
are the instance adaptor and head), so the ``large`` preset's state_dict equals the released
checkpoint key for key.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from pathlib import Path

import torch
from torch import Tensor, nn

from iggt.errors import InputError
from iggt.geometry import pose_encoding_to_cameras
from iggt.model.aggregator import Aggregator
from iggt.model.checkpoint import (
    INSTANCE_PREFIXES,
    LoadReport,
    check_state_dict,
    is_vggt_state_dict,
    read_checkpoint,
    save_checkpoint,
)
from iggt.model.config import IGGTConfig, get_config
from iggt.model.fast_mode import FastMode
from iggt.model.heads.camera_head import CameraHead
from iggt.model.heads.dpt_head import DPTHead
from iggt.model.heads.instance_adaptor import InstanceAdaptor
from iggt.model.heads.instance_head import InstanceHead
from iggt.model.heads.track_head import TrackHead
from iggt.model.hub import resolve_model_source
from iggt.model.layers.head_matmul_precision import heads_matmuls_like_convolutions
from iggt.model.weightless import skip_initialisation

logger = logging.getLogger(__name__)

MODULE_NAMES = (
    "aggregator",
    "camera_head",
    "point_head",
    "depth_head",
    "track_head",
    "part_adaptor",
    "part_head",
)


class IGGT(nn.Module):
    """Images (B, S, 3, H, W) in [0, 1] -> cameras, depth, point maps and instance features.

    ``forward`` returns (H, W multiples of the patch size; B scenes of S views):
    pose_enc (B, S, 9) (last refinement), pose_enc_list (every refinement; training only),
    extrinsic (B, S, 3, 4) camera-from-world, intrinsic (B, S, 3, 3), depth (B, S, H, W, 1),
    depth_conf (B, S, H, W), world_points (B, S, H, W, 3), world_points_conf (B, S, H, W),
    instance_feat (B, S, H, W, C) unit L2 norm, images (B, S, 3, H, W); with ``query_points``
    (B, N, 2) pixels also track (B, S, N, 2), vis (B, S, N), conf (B, S, N).
    """

    def __init__(self, config: IGGTConfig | None = None) -> None:
        super().__init__()
        self.config = config or IGGTConfig()
        self.load_report: LoadReport | None = None
        for name in MODULE_NAMES:
            setattr(self, name, self.build_module(name))

    def build_module(self, name: str) -> nn.Module | None:
        """A freshly initialised top-level module (``aggregator``, ``camera_head``, ...)."""
        config = self.config
        dim_in = 2 * config.embed_dim
        patch = config.patch_size
        dpt = {"features": config.dpt_features, "out_channels": config.dpt_out_channels, "patch_size": patch}
        if name == "aggregator":
            return Aggregator(config, output_layers=(*config.intermediate_layer_idx, config.depth - 1))
        if name == "camera_head":
            return CameraHead(
                dim_in,
                config.camera_trunk_depth,
                config.camera_num_heads,
                config.mlp_ratio,
                config.init_values,
            )
        if name == "point_head":
            return DPTHead(dim_in, output_dim=4, activation="inv_log", conf_activation="expp1", **dpt)
        if name == "depth_head":
            return DPTHead(dim_in, output_dim=2, activation="exp", conf_activation="expp1", **dpt)
        if name == "track_head":
            if not config.enable_track:
                return None
            return TrackHead(
                dim_in,
                patch_size=patch,
                features=config.track_features,
                iters=config.track_iterations,
                corr_levels=config.track_corr_levels,
                hidden_size=config.track_hidden_size,
                projection_channels=config.dpt_out_channels,
            )
        if name == "part_adaptor":
            return InstanceAdaptor(dim_in, features=config.instance_features, patch_size=patch)
        if name == "part_head":
            return InstanceHead(
                dim_in,
                features=config.instance_features,
                out_dim=config.instance_dim,
                patch_size=patch,
                window_size=config.instance_window_size,
                cross_attention_heads=config.instance_cross_attention_heads,
                window_attention_heads=config.instance_window_attention_heads,
                legacy_projection_channels=config.dpt_out_channels,
                reference_window_query_layout=config.instance_official_query_windows,
            )
        raise KeyError(name)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> IGGT:
        """A randomly initialised network of the named preset ("large", "small", "tiny")."""
        return cls(get_config(name, **overrides))

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        strict: bool = True,
        map_location: str | torch.device = "cpu",
        config: IGGTConfig | str | None = None,
    ) -> IGGT:
        """Load our safetensors (config embedded), the official IGGT checkpoint or VGGT-1B.

        ``source`` is a shipped name ("iggt-small"), a weights file, a folder holding
        model.safetensors, or a hub id (:func:`iggt.model.hub.resolve_model_source`). ``config``
        (an IGGTConfig or preset name) applies to files without an embedded config, which
        otherwise are read as ``large``; a VGGT checkpoint leaves part_adaptor and part_head
        freshly initialised. What the load did is kept in ``model.load_report``.
        """
        path = resolve_model_source(source)
        state_dict, config_dict = read_checkpoint(path, map_location)
        if config_dict is not None:
            config = IGGTConfig.from_dict(config_dict)
        elif not isinstance(config, IGGTConfig):
            config = get_config(config or "large")
        model = cls.from_state_dict(config, state_dict, strict=strict)
        return model.to(map_location)

    @classmethod
    def from_state_dict(cls, config: IGGTConfig, state_dict: dict[str, Tensor], strict: bool = True) -> IGGT:
        """Build without computing the weights and adopt the given tensors (no second copy of the
        weights; :mod:`iggt.model.weightless`). The report of the load is kept in ``model.load_report``.
        """
        with skip_initialisation():
            model = cls(config)
        expected = model.state_dict()
        allowed_missing = INSTANCE_PREFIXES if is_vggt_state_dict(state_dict) else ()
        report = check_state_dict(expected, state_dict, strict=strict, allowed_missing=allowed_missing)
        adopted = {k: v.to(expected[k].dtype) for k, v in state_dict.items() if k in expected}
        model.load_state_dict(adopted, strict=False, assign=True)
        report.fresh_modules = model._materialize_missing(adopted, report.missing)
        if report.missing or report.unexpected:
            logger.warning("checkpoint load: %s", report.summary())
        model.load_report = report
        return model

    def _materialize_missing(self, state_dict: dict[str, Tensor], missing: list[str]) -> list[str]:
        """Rebuild, initialised on the CPU, every top-level module the checkpoint left a key of
        (``missing``) or that still holds meta tensors; return their names."""
        incomplete = {key.split(".", 1)[0] for key in missing}
        fresh = []
        for name, module in list(self.named_children()):
            tensors = [*module.parameters(), *module.buffers()]
            if name not in incomplete and not any(t.is_meta for t in tensors):
                continue
            rebuilt = self.build_module(name)
            prefix = f"{name}."
            present = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
            rebuilt.load_state_dict(present, strict=False)
            setattr(self, name, rebuilt)
            fresh.append(name)
        return fresh

    def save_pretrained(self, path: str | Path) -> Path:
        """Write model.safetensors (or the given .safetensors file) with the config in its metadata."""
        return save_checkpoint(self.state_dict(), self.config.to_dict(), path)

    def num_parameters(self) -> int:
        """Number of parameter values (buffers excluded)."""
        return sum(p.numel() for p in self.parameters())

    def store_trunk_weights(self, dtype: torch.dtype) -> int:
        """Hold the trunk's Linear and Conv2d weights and biases in ``dtype``; return the bytes freed.

        For inference with ``trunk_dtype=dtype`` on CUDA: autocast rounds exactly these tensors to
        ``dtype`` at every call anyway (round to nearest even, as ``Tensor.to`` does), so the outputs
        are bit-identical, while the weights take half the memory (1.8 GB less for ``large``) and no
        cast runs per forward. Norms, layer scales, tokens and position embeddings stay float32, as
        autocast computes with them in float32. The rounding is not undone: a model stored this way
        refuses training and float32 trunks (load the checkpoint again for those).
        """
        if dtype not in (torch.bfloat16, torch.float16):
            raise InputError(f"store_trunk_weights takes bfloat16 or float16, got {dtype}; reload for float32")
        freed = 0
        for module in self.aggregator.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                for tensor in (module.weight, module.bias):
                    if tensor is not None and tensor.dtype != dtype:
                        freed += tensor.numel() * (tensor.element_size() - dtype.itemsize)
                        tensor.data = tensor.data.to(dtype)
        return freed

    @property
    def trunk_weight_dtype(self) -> torch.dtype:
        """The dtype the trunk's matrix weights are held in (float32 unless :meth:`store_trunk_weights`)."""
        return next(m.weight.dtype for m in self.aggregator.modules() if isinstance(m, nn.Linear | nn.Conv2d))

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Recompute the trunk's blocks in the backward pass while training (saves memory, same results)."""
        self.aggregator.set_activation_checkpointing(enabled)

    def forward(
        self,
        images: Tensor,
        query_points: Tensor | None = None,
        *,
        frames_chunk_size: int | None = None,
        trunk_dtype: torch.dtype = torch.float32,
        head_dtype: torch.dtype = torch.float32,
        fast_mode: FastMode | str | None = None,
    ) -> dict[str, Tensor]:
        """Predict cameras, depth, point maps and instance features for every view in one pass.

        Args:
            images: (B, S, 3, H, W) or (S, 3, H, W) floats in [0, 1]; H and W multiples of the patch
                size. Frame 0 is the reference: the world frame is its camera frame.
            query_points: optional (B, N, 2) or (N, 2) pixels (x, y) in frame 0 to track (needs the
                track head).
            frames_chunk_size: run the per-frame heads this many frames at a time (None: all at
                once); bounds head memory, never changes the outputs.
            trunk_dtype: autocast dtype of the patch embedding and aggregator on CUDA (ignored on
                the CPU). The caller decides it (``iggt.device.resolve_dtype``); the default
                computes everything in float32.
            head_dtype: autocast dtype of the dense, point and instance heads on CUDA (ignored on
                the CPU); their last layer and output activations always run in float32, and the
                camera head runs in float32 whatever is asked (nine numbers per view). Under float16
                a head pass whose outputs are not all finite (float16 overflowed) is recomputed in
                float32 and a warning logged. In float32
                their matrix products use TF32 where their convolutions do
                (:mod:`iggt.model.layers.head_matmul_precision`).
            fast_mode: an approximation of the trunk's global attention for long inputs, a
                :class:`iggt.model.fast_mode.FastMode` or a preset name ("avggt", "kv-subsample", "merge"); None or
                "exact" (the default) computes the network exactly.

        Returns:
            pose_enc (B, S, 9); extrinsic (B, S, 3, 4) camera-from-world, OpenCV; intrinsic
            (B, S, 3, 3); depth (B, S, H, W, 1); depth_conf (B, S, H, W); world_points
            (B, S, H, W, 3); world_points_conf (B, S, H, W); instance_feat (B, S, H, W, C), unit L2
            norm; images (B, S, 3, H, W). In training mode also pose_enc_list (one (B, S, 9) per
            refinement). With query_points: track (B, S, N, 2), vis and conf (B, S, N).
        """
        images = self._check_images(images)
        self._check_trunk_weights(images, trunk_dtype)
        if frames_chunk_size is not None and frames_chunk_size < 1:
            raise InputError(f"frames_chunk_size must be at least 1 frame, got {frames_chunk_size}")
        chunk = frames_chunk_size or images.shape[1]
        if query_points is not None and query_points.ndim == 2:
            query_points = query_points[None]
        with _cuda_autocast(images, trunk_dtype):
            layers, patch_start_idx = self.aggregator(images, fast_mode)
        with torch.autocast(images.device.type, enabled=False):
            camera_tokens = layers[self.config.depth - 1][:, :, :1].float()
            pose_enc_list = self.camera_head(camera_tokens, self.config.camera_iterations)
            with _cuda_autocast(images, head_dtype), heads_matmuls_like_convolutions(images.device):
                output = self._dense_outputs(
                    layers, images, patch_start_idx, chunk, recheck=_overflows_possible(images, head_dtype)
                )
            if query_points is not None:
                output.update(self._track(layers, images, patch_start_idx, query_points, frames_chunk_size))
        pose_enc = pose_enc_list[-1]
        extrinsic, intrinsic = pose_encoding_to_cameras(pose_enc, images.shape[-2:])
        output.update(pose_enc=pose_enc, extrinsic=extrinsic, intrinsic=intrinsic, images=images)
        if self.training:
            output["pose_enc_list"] = pose_enc_list
        return output

    def _check_images(self, images: Tensor) -> Tensor:
        if images.ndim == 4:
            images = images[None]
        if images.ndim != 5 or images.shape[2] != 3:
            raise InputError(f"images must be (B, S, 3, H, W) or (S, 3, H, W), got {tuple(images.shape)}")
        height, width = images.shape[-2:]
        patch = self.config.patch_size
        if height % patch or width % patch:
            raise InputError(
                f"image size {height}x{width} is not a multiple of the patch size {patch}; resize or crop first"
            )
        if not images.is_floating_point():
            raise InputError(f"images must be floats in [0, 1], got dtype {images.dtype}")
        return images

    def _check_trunk_weights(self, images: Tensor, trunk_dtype: torch.dtype) -> None:
        stored = self.trunk_weight_dtype
        if stored == torch.float32:
            return
        if self.training or images.device.type != "cuda" or trunk_dtype != stored:
            raise InputError(
                f"this model's trunk weights are stored in {stored} for inference (store_trunk_weights); it runs "
                f"only in eval mode on CUDA with trunk_dtype={stored}: load the checkpoint again for anything else"
            )

    def _head_tokens(self, layers: dict[int, Tensor], start: int = 0, end: int | None = None) -> list[Tensor]:
        """The four layers the dense heads read, frames [start, end), in float32."""
        return [layers[i][:, start:end].float() for i in self.config.intermediate_layer_idx]

    def _dense_outputs(
        self, layers: dict[int, Tensor], images: Tensor, patch_start_idx: int, chunk: int, recheck: bool = False
    ) -> dict[str, Tensor]:
        """Run the per-frame heads ``chunk`` frames at a time and concatenate along S.

        With ``recheck`` (float16 heads) a pass whose outputs are not all finite, which is how a value
        beyond float16's 65,504 shows after the layers that follow it, runs again in float32, so an
        overflow costs time, never a wrong output. The passes' checks are read once, after the last.
        """
        pieces = defaultdict(list)
        starts = range(0, images.shape[1], chunk)

        def run_pass(start: int) -> dict[str, Tensor]:
            tokens = self._head_tokens(layers, start, start + chunk)
            return self._dense_chunk(tokens, images[:, start : start + chunk], patch_start_idx)

        finite = []
        for start in starts:
            outputs = run_pass(start)
            if recheck:
                finite.append(torch.stack([torch.isfinite(value).all() for value in outputs.values()]).all())
            for key, value in outputs.items():
                pieces[key].append(value)
        overflowed = [index for index, ok in enumerate(torch.stack(finite).tolist() if finite else []) if not ok]
        for index in overflowed:
            start = starts[index]
            logger.warning(
                "float16 heads overflowed on frames %d-%d; recomputed them in float32",
                start,
                min(start + chunk, images.shape[1]) - 1,
            )
            with torch.autocast(images.device.type, enabled=False):
                outputs = run_pass(start)
            for key, value in outputs.items():
                pieces[key][index] = value
        return {key: torch.cat(values, dim=1) for key, values in pieces.items()}

    def _dense_chunk(self, tokens: list[Tensor], images: Tensor, patch_start_idx: int) -> dict[str, Tensor]:
        depth, depth_conf = self.depth_head(tokens, images, patch_start_idx)
        points, points_conf, geometry_features = self.point_head(tokens, images, patch_start_idx, return_features=True)
        adaptor_features = self.part_adaptor(tokens, images, patch_start_idx)
        instance_feat = self.part_head(adaptor_features, geometry_features, images)
        return {
            "depth": depth,
            "depth_conf": depth_conf,
            "world_points": points,
            "world_points_conf": points_conf,
            "instance_feat": instance_feat,
        }

    def _track(
        self,
        layers: dict[int, Tensor],
        images: Tensor,
        patch_start_idx: int,
        query_points: Tensor,
        frames_chunk_size: int | None,
    ) -> dict[str, Tensor]:
        if self.track_head is None:
            raise InputError(
                "query_points were given but this model has no track head; build it with enable_track=True"
            )
        track_list, vis, conf = self.track_head(
            self._head_tokens(layers),
            images,
            patch_start_idx,
            query_points,
            frames_chunk_size=frames_chunk_size,
        )
        output = {"track": track_list[-1], "vis": vis, "conf": conf}
        if self.training:
            output["track_list"] = track_list
        return output


def _overflows_possible(images: Tensor, head_dtype: torch.dtype) -> bool:
    """True where the heads run under float16 autocast, whose range ends at 65,504 (bfloat16's is float32's)."""
    return images.device.type == "cuda" and head_dtype == torch.float16


def _cuda_autocast(images: Tensor, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast in ``dtype`` on CUDA only (``iggt.device.resolve_dtype`` refuses reduced precision on the CPU)."""
    if images.device.type != "cuda" or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)
