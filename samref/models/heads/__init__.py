# Copyright (c) samref contributors. All rights reserved.
from .sam_mask_decoder import SAMMaskDecoder
from .sam_prompt_encoder import SAMPromptEncoder

__all__ = ['SAMMaskDecoder', 'SAMPromptEncoder']
