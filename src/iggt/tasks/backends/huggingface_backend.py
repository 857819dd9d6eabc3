"""What the Hugging Face CLIP and SigLIP backends share: batching, pre-processing, pooled embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from iggt.tasks.backends.base import as_uint8, unit_rows
from iggt.tasks.backends.huggingface_loading import load_model_and_processors

BATCH_SIZE = 16


def _pooled(output) -> torch.Tensor:
    """transformers < 5 returns the projected embedding, >= 5 an output whose pooler_output it is."""
    return output if torch.is_tensor(output) else output.pooler_output


class HuggingFaceBackend:
    """A ``transformers`` dual encoder with ``get_image_features`` / ``get_text_features``.

    Subclasses set ``name``, ``model_class_name`` and ``text_padding`` and implement ``_patch_embeddings``.
    """

    name = ""
    model_class_name = ""
    text_padding = "longest"
    has_dense_features = True

    def __init__(self, source: str, device: str = "cpu") -> None:
        import transformers

        self.source, self.device = str(source), device
        model_class = getattr(transformers, self.model_class_name)
        self.model, self.image_processor, self.tokenizer = load_model_and_processors(
            self.name, self.source, model_class, device
        )

    def _pixels(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        pil = [Image.fromarray(as_uint8(image)) for image in images]
        return self.image_processor(images=pil, return_tensors="pt")["pixel_values"].to(self.device)

    @torch.no_grad()
    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        parts = [
            _pooled(self.model.get_image_features(pixel_values=self._pixels(images[begin : begin + BATCH_SIZE])))
            for begin in range(0, len(images), BATCH_SIZE)
        ]
        return unit_rows(torch.cat(parts).float().cpu().numpy())

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        max_length = self.model.config.text_config.max_position_embeddings
        tokens = self.tokenizer(
            list(texts), padding=self.text_padding, truncation=True, max_length=max_length, return_tensors="pt"
        )
        inputs = {key: value.to(self.device) for key, value in tokens.items() if key in ("input_ids", "attention_mask")}
        return unit_rows(_pooled(self.model.get_text_features(**inputs)).float().cpu().numpy())

    @torch.no_grad()
    def dense_features(self, image: np.ndarray) -> np.ndarray:
        """(h, w, D) unit-norm patch features of one image on the model's patch grid, spanning the whole image.

        The image is first resized to the model's square input (aspect not kept), so that no
        processor centre crop cuts it: grid cell (i, j) covers rows [i H / h, (i + 1) H / h) and likewise columns.
        """
        side = self.model.config.vision_config.image_size
        square = np.asarray(Image.fromarray(as_uint8(image)).resize((side, side), Image.Resampling.BICUBIC))
        pixels = self._pixels([square])
        patches = self._patch_embeddings(pixels)[0]  # (h * w, D)
        side_h = pixels.shape[-2] // self.model.config.vision_config.patch_size
        side_w = pixels.shape[-1] // self.model.config.vision_config.patch_size
        return unit_rows(patches.float().cpu().numpy().reshape(side_h, side_w, -1))

    def _patch_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
