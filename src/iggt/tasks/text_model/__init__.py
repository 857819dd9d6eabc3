"""iggt-text: a small image-text model trained on the scene engine's renders (docs/model_card_iggt-text.md)."""
