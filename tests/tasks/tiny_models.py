"""Tiny CLIP and SigLIP models with random weights and a word-level tokenizer, saved with
``save_pretrained`` into a folder, so the backends are exercised through their real loading code
without any download."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    PreTrainedTokenizerFast,
    SiglipConfig,
    SiglipImageProcessor,
    SiglipModel,
)

WORDS = ["a", "photo", "of", "chair", "table", "sofa", "lamp", "ball", "wall", "floor", "red", "the", "other"]
SPECIALS = ["[PAD]", "[UNK]", "<s>", "</s>"]
PAD, UNK, BOS, EOS = range(4)
IMAGE_SIZE, PATCH_SIZE, PROJECTION = 32, 8, 16
TEXT_LENGTH = 12

_TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)


def save_tokenizer(folder: Path) -> None:
    vocab = {token: index for index, token in enumerate(SPECIALS + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", BOS), ("</s>", EOS)]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>", eos_token="</s>"
    )
    wrapped.save_pretrained(folder)


def text_config() -> dict:
    return dict(
        vocab_size=len(SPECIALS) + len(WORDS),
        max_position_embeddings=TEXT_LENGTH,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        **_TOWER,
    )


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=text_config(),
        vision_config=dict(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, **_TOWER),
        projection_dim=PROJECTION,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    ).save_pretrained(folder)
    save_tokenizer(folder)
    return folder


def save_tiny_siglip(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config=dict(text_config(), projection_size=32),
        vision_config=dict(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, **_TOWER),
    )
    SiglipModel(config).save_pretrained(folder)
    SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(folder)
    save_tokenizer(folder)
    return folder


OPEN_CLIP_CONFIG = dict(
    embed_dim=PROJECTION,
    vision_cfg=dict(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, width=32, layers=2, head_width=8, mlp_ratio=2.0),
    # vocab_size is that of CLIP's BPE, the tokenizer open_clip uses when the config names none
    text_cfg=dict(context_length=TEXT_LENGTH, vocab_size=49408, width=32, heads=4, layers=2, mlp_ratio=2.0),
)


def save_tiny_open_clip(folder: Path, seed: int = 0, model_cfg: dict | None = None) -> Path:
    """A tiny ``open_clip.CLIP`` in the layout of open_clip's hub models: ``open_clip_config.json``
    (model and preprocessing config) and ``open_clip_model.safetensors``."""
    import json

    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model_cfg = model_cfg or OPEN_CLIP_CONFIG
    model = open_clip.CLIP(**model_cfg)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), folder / "open_clip_model.safetensors")
    preprocess_cfg = dict(mean=[0.5, 0.45, 0.4], std=[0.27, 0.26, 0.28])
    (folder / "open_clip_config.json").write_text(json.dumps(dict(model_cfg=model_cfg, preprocess_cfg=preprocess_cfg)))
    return folder
