"""OpenCLIP (``open_clip_torch``) as an image-text backend, with MaskCLIP-style dense features for its ViTs.

The source is a folder in the layout of open_clip's hub models (what ``open_clip.push_to_hf_hub``
uploads): ``open_clip_config.json`` (``{"model_cfg": ..., "preprocess_cfg": ...}``) beside a
weights file (``open_clip_model.safetensors``; ``open_clip_pytorch_model.bin`` and the other
names open_clip looks for also work), read through open_clip's own ``local-dir:`` loader; the
tokenizer is the one the config names (CLIP's BPE, shipped inside open_clip, when it names none).
Anything else that looks like a hub id is loaded as ``hf-hub:<id>``; with ``HF_HUB_OFFLINE`` set
only from the local cache.

Dense features: for open_clip's own ``VisionTransformer`` pooled by its class token, the same
approximation as the CLIP backend (``huggingface_clip.py``): each patch token's value embedding in
the last attention layer, sent through ``ln_post`` and ``proj`` as the class token is. Other
towers (timm, ResNets, attention-pooled or average-pooled ViTs) are used through crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iggt.errors import InputError, first_line
from iggt.tasks.backends.base import as_uint8, unit_rows
from iggt.tasks.backends.huggingface_loading import HUB_ID, hub_offline

BATCH_SIZE = 16
CONFIG_NAME = "open_clip_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")  # what open_clip's local-dir loader picks weights from


def _import_open_clip():
    try:
        import open_clip
    except Exception as exc:  # ImportError, or torchvision failing inside open_clip's import
        raise InputError(
            f"the open_clip backend needs open_clip_torch and a working torchvision ({type(exc).__name__}: "
            f"{first_line(exc)}); use --backend clip or siglip"
        ) from exc
    return open_clip


def _model_name(source: str) -> str:
    """open_clip's name for ``source``: ``local-dir:<folder>`` or ``hf-hub:<id>``; InputError when neither fits."""
    local = Path(source).expanduser()
    if local.is_dir():
        if not (local / CONFIG_NAME).is_file():
            raise InputError(
                f"{local} has no {CONFIG_NAME}; pass a folder in open_clip's hub layout for --backend open_clip"
            )
        if not any(path.suffix in WEIGHT_SUFFIXES for path in local.iterdir()):
            # open_clip would only warn and keep random weights
            raise InputError(f"{local} has {CONFIG_NAME} but no weights file (open_clip_model.safetensors)")
        return f"local-dir:{local}"
    if local.exists() or not HUB_ID.match(source) or source.startswith("."):
        raise InputError(f"backend folder {source} does not exist; pass --backend-path to an open_clip model folder")
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(source, CONFIG_NAME), str):
            raise InputError(
                f"cannot load the open_clip backend from hub id (offline: local cache only) {source!r}: "
                f"{CONFIG_NAME} is not in the local cache"
            )
    return f"hf-hub:{source}"


def _has_dense_path(visual: torch.nn.Module) -> bool:
    """Whether ``visual`` is open_clip's class-token ViT whose last block is plain multi-head attention."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None or visual.pool_type != "tok":
        return False
    last = visual.transformer.resblocks[-1]
    return (
        visual.transformer.batch_first
        and isinstance(last, ResidualAttentionBlock)
        and last.attn._qkv_same_embed_dim
        and not hasattr(last, "ln_1_kv")
    )


class OpenClipBackend:
    name = "open_clip"

    def __init__(self, source: str, device: str = "cpu") -> None:
        open_clip = _import_open_clip()
        model_name = _model_name(str(source))
        where = "folder" if model_name.startswith("local-dir:") else "hub id"
        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(model_name, device=device)
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot load the open_clip backend from {where} {source!r}: {first_line(exc)}") from exc
        self.model.eval()
        self.device = device
        self.has_dense_features = _has_dense_path(self.model.visual)

    def _pixels(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return torch.stack([self.preprocess(Image.fromarray(as_uint8(image))) for image in images]).to(self.device)

    @torch.no_grad()
    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        parts = [
            self.model.encode_image(self._pixels(images[begin : begin + BATCH_SIZE]))
            for begin in range(0, len(images), BATCH_SIZE)
        ]
        return unit_rows(torch.cat(parts).float().cpu().numpy())

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return unit_rows(self.model.encode_text(self.tokenizer(list(texts)).to(self.device)).float().cpu().numpy())

    @torch.no_grad()
    def dense_features(self, image: np.ndarray) -> np.ndarray:
        """(h, w, D) unit-norm patch features of one image on the ViT's patch grid, spanning the whole image.

        As in the Hugging Face backends the image is first resized to the model's input size (aspect
        not kept), so the preprocessing's centre crop cuts nothing.
        """
        if not self.has_dense_features:
            raise InputError(
                "this open_clip model has no dense features (not a class-token ViT); it is used through crops"
            )
        visual = self.model.visual
        height, width = visual.image_size
        resized = np.asarray(Image.fromarray(as_uint8(image)).resize((width, height), Image.Resampling.BICUBIC))
        hidden = visual._embeds(self._pixels([resized]))
        for block in visual.transformer.resblocks[:-1]:
            hidden = block(hidden)  # (1, 1 + h * w, width): the input of the last block
        last = visual.transformer.resblocks[-1]
        attention = last.attn
        dim = attention.embed_dim
        bias = None if attention.in_proj_bias is None else attention.in_proj_bias[2 * dim :]
        values = torch.nn.functional.linear(last.ln_1(hidden), attention.in_proj_weight[2 * dim :], bias)
        patches = visual.ln_post(attention.out_proj(values)[:, 1:]) @ visual.proj  # drop the class token
        rows, columns = visual.grid_size
        return unit_rows(patches[0].float().cpu().numpy().reshape(rows, columns, -1))
