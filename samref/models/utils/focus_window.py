# Copyright (c) samref contributors. All rights reserved.
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def mask_boxes(masks: Tensor) -> Tensor:
    """Tight boxes of binary masks; an empty mask gives the whole map.

    Args:
        masks (Tensor): ``B x H x W`` bool masks.

    Returns:
        Tensor: ``B x 4`` float boxes ``(x0, y0, x1, y1)`` in pixels, right
        and bottom exclusive.
    """
    height, width = masks.shape[-2:]
    boxes = []
    for mask in masks:
        rows = mask.any(dim=1).nonzero()[:, 0]
        cols = mask.any(dim=0).nonzero()[:, 0]
        if len(rows) == 0:
            boxes.append([0, 0, width, height])
        else:
            boxes.append([
                int(cols[0]),
                int(rows[0]),
                int(cols[-1]) + 1,
                int(rows[-1]) + 1
            ])
    return torch.tensor(boxes, dtype=torch.float32, device=masks.device)


def expand_boxes(boxes: Tensor, ratio: Tuple[float, float],
                 size: Tuple[int, int]) -> Tensor:
    """Scale boxes about their centres, round them and clip them to a map.

    Args:
        boxes (Tensor): ``B x 4`` boxes ``(x0, y0, x1, y1)``.
        ratio (tuple[float, float]): ``(height, width)`` scale factors.
        size (tuple[int, int]): ``(H, W)`` of the map.

    Returns:
        Tensor: ``B x 4`` int64 boxes inside the map.
    """
    ratio_h, ratio_w = ratio
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    half_w = (boxes[:, 2] - boxes[:, 0]) * ratio_w / 2
    half_h = (boxes[:, 3] - boxes[:, 1]) * ratio_h / 2
    expanded = torch.stack(
        [cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1).round()
    height, width = size
    limits = expanded.new_tensor([width, height, width, height])
    return torch.minimum(expanded.clamp(min=0), limits).long()


def focus_window_mask(coarse_logits: Tensor, input_size: Tuple[int, int],
                      expand_ratio: Tuple[float, float],
                      out_size: Tuple[int, int]) -> Tensor:
    """FocSAM's focus region: the coarse object's box, enlarged, as a map.

    The logits are upsampled bilinearly to the padded input, thresholded at
    0, boxed (the whole input when empty), the box is scaled about its centre
    by ``expand_ratio``, rounded and clipped to the input, rasterised, and
    max-pooled to the embedding grid, so a cell is in the focus region when
    any input pixel of it is.

    Args:
        coarse_logits (Tensor): ``B x 1 x h x w`` low-resolution logits.
        input_size (tuple[int, int]): ``(H, W)`` of the padded model input.
        expand_ratio (tuple[float, float]): ``(height, width)`` scaling.
        out_size (tuple[int, int]): ``(h, w)`` of the embedding grid.

    Returns:
        Tensor: ``B x 1 x h x w`` float map, 1 inside the focus region.
    """
    logits = F.interpolate(
        coarse_logits.float(),
        tuple(input_size),
        mode='bilinear',
        align_corners=False)
    boxes = expand_boxes(
        mask_boxes(logits[:, 0] > 0), expand_ratio, tuple(input_size))
    height, width = input_size
    rows = torch.arange(height, device=logits.device)
    cols = torch.arange(width, device=logits.device)
    inside_rows = (rows >= boxes[:, 1:2]) & (rows < boxes[:, 3:4])
    inside_cols = (cols >= boxes[:, 0:1]) & (cols < boxes[:, 2:3])
    window = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]
    return F.adaptive_max_pool2d(window.float(), tuple(out_size))
