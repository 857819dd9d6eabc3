"""SigLIP (``transformers.SiglipModel``) as an image-text backend, with MaskCLIP-style dense features.

SigLIP has no class token: its image embedding is an attention-pooling head (one learned probe
attending to the post-layernormed patch tokens, then a residual MLP). Dense features are the
same approximation as CLIP's (MaskCLIP): each patch token's value embedding in that pooling
attention (value projection, output projection, no mixing), then the head's layer norm and MLP
with its residual, as the pooled token would go. SigLIP was trained with texts padded to the
maximum length, so texts are padded that way here.
"""

from __future__ import annotations

import torch

from iggt.tasks.backends.huggingface_backend import HuggingFaceBackend


class SiglipBackend(HuggingFaceBackend):
    name = "siglip"
    model_class_name = "SiglipModel"
    text_padding = "max_length"

    def _patch_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        vision = self.model.vision_model
        tokens = vision(pixel_values=pixels).last_hidden_state  # already post-layernormed
        head = vision.head
        dim = tokens.shape[-1]
        attention = head.attention  # torch.nn.MultiheadAttention
        value_weight = attention.in_proj_weight[2 * dim :]
        value_bias = attention.in_proj_bias[2 * dim :] if attention.in_proj_bias is not None else None
        values = attention.out_proj(torch.nn.functional.linear(tokens, value_weight, value_bias))
        return values + head.mlp(head.layernorm(values))
