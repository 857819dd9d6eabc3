"""Network building blocks, one concept per module (attention, block, rope, dinov2, fusion, ...)."""
