"""CLIP (``transformers.CLIPModel``) as an image-text backend, with MaskCLIP-style dense features.

Dense features are an approximation (MaskCLIP, Zhou et al. 2022): CLIP's image embedding is its
class token after the last attention layer; patch tokens never get a meaning in the joint space.
Taking each patch token's *value* embedding in the last layer (layer norm, value projection,
output projection; the attention mixing, residual and MLP are skipped) and sending it through the
post-layernorm and the visual projection, as the class token would be, gives per-patch features
that localise text queries reasonably, though less sharply than the pooled embedding classifies.
"""

from __future__ import annotations

import torch

from iggt.tasks.backends.huggingface_backend import HuggingFaceBackend


class ClipBackend(HuggingFaceBackend):
    name = "clip"
    model_class_name = "CLIPModel"
    text_padding = "longest"

    def _patch_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        vision = self.model.vision_model
        hidden = vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]  # input of the last layer
        last = vision.encoder.layers[-1]
        values = last.self_attn.out_proj(last.self_attn.v_proj(last.layer_norm1(hidden)))
        return self.model.visual_projection(vision.post_layernorm(values[:, 1:]))  # drop the class token
