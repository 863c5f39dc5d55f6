# Copyright (c) samref contributors. All rights reserved.
from .focsam_refiner import FocSAMRefiner
from .global_diff_refiner import GlobalDiffRefiner, refine
from .patch_diff_refiner import PatchDiffRefiner
from .sam_mask_decoder import SAMMaskDecoder
from .sam_prompt_encoder import SAMPromptEncoder

__all__ = [
    'FocSAMRefiner', 'GlobalDiffRefiner', 'PatchDiffRefiner', 'SAMMaskDecoder',
    'SAMPromptEncoder', 'refine'
]
