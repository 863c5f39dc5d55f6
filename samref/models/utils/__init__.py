# Copyright (c) samref contributors. All rights reserved.
from .channel_group_norm import ChannelGroupNorm
from .click_maps import box_prompt_map, click_disk_maps, whole_input_box
from .click_sampler import IterativeClickSampler
from .focus_window import focus_window_mask
from .mimetic_init import MimeticAttentionInit, tie_query_key
from .patch_box import select_patch_box
from .precision import has_fast_bfloat16
from .roi_crop import RoICrop

__all__ = [
    'box_prompt_map', 'click_disk_maps', 'whole_input_box',
    'IterativeClickSampler', 'focus_window_mask', 'select_patch_box',
    'RoICrop', 'MimeticAttentionInit', 'tie_query_key', 'ChannelGroupNorm',
    'has_fast_bfloat16'
]
