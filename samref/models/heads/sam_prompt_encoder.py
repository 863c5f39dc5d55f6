# Copyright (c) samref contributors. All rights reserved.
from typing import Tuple

from mmseg.registry import MODELS
from segment_anything.modeling import PromptEncoder


@MODELS.register_module()
class SAMPromptEncoder(PromptEncoder):
    """SAM's prompt encoder (points, boxes and mask prompts).

    ``segment_anything``'s ``PromptEncoder`` itself with SAM's defaults, so
    its parameters load from the ``prompt_encoder.*`` keys of the official
    checkpoints.

    Args:
        embed_dim (int): Prompt embedding channels. Defaults to 256.
        image_embedding_size (tuple[int, int]): Size of the image embedding.
            Defaults to (64, 64).
        input_image_size (tuple[int, int]): Size of the padded model input.
            Defaults to (1024, 1024).
        mask_in_chans (int): Hidden channels of the mask-prompt encoder.
            Defaults to 16.
    """

    def __init__(self,
                 embed_dim: int = 256,
                 image_embedding_size: Tuple[int, int] = (64, 64),
                 input_image_size: Tuple[int, int] = (1024, 1024),
                 mask_in_chans: int = 16) -> None:
        super().__init__(
            embed_dim=embed_dim,
            image_embedding_size=tuple(image_embedding_size),
            input_image_size=tuple(input_image_size),
            mask_in_chans=mask_in_chans)
