# Copyright (c) samref contributors. All rights reserved.
import torch
from torch import Tensor


def click_disk_maps(points: Tensor, labels: Tensor, size: int, box: Tensor,
                    radius: float) -> Tensor:
    """Draw clicks as disks on maps covering a window of the input.

    Args:
        points (Tensor): ``B x N x 2`` clicks ``(x, y)`` in pixels of the
            model input.
        labels (Tensor): ``B x N`` labels: 1 positive, 0 negative, -1
            padding (not drawn).
        size (int): Side of the square maps.
        box (Tensor): ``B x 4`` windows ``(x0, y0, x1, y1)`` of the input
            the maps cover (the whole padded input for a global map).
        radius (float): Disk radius, in pixels of the maps.

    Returns:
        Tensor: ``B x 2 x size x size`` float maps, positive clicks in
        channel 0 and negative ones in channel 1.
    """
    scale_x = size / (box[:, 2] - box[:, 0])
    scale_y = size / (box[:, 3] - box[:, 1])
    # Pixel centres of the input map onto pixel centres of the maps.
    cx = (points[..., 0] + 0.5 - box[:, None, 0]) * scale_x[:, None] - 0.5
    cy = (points[..., 1] + 0.5 - box[:, None, 1]) * scale_y[:, None] - 0.5
    grid = torch.arange(size, device=points.device, dtype=points.dtype)
    dy2 = (grid[None, None, :] - cy[..., None])**2  # B x N x S
    dx2 = (grid[None, None, :] - cx[..., None])**2
    inside = (dy2[..., :, None] + dx2[..., None, :]) <= radius**2
    maps = []
    for label in (1, 0):
        chosen = (labels == label)[..., None, None]
        maps.append((inside & chosen).any(dim=1))
    return torch.stack(maps, dim=1).to(points.dtype)


def box_prompt_map(prompt_boxes: Tensor, size: int, box: Tensor) -> Tensor:
    """Draw box prompts as filled boxes on maps covering a window of the
    input.

    A map pixel is 1 when its centre lies inside the box prompt (edges
    included), 0 elsewhere; pixel centres follow the convention of
    :func:`click_disk_maps`.

    Args:
        prompt_boxes (Tensor): ``B x 4`` box prompts ``(x0, y0, x1, y1)`` in
            pixels of the model input, edges of the pixel grid (a box
            around pixels ``0 .. 9`` is ``(0, 0, 10, 10)``).
        size (int): Side of the square maps.
        box (Tensor): ``B x 4`` windows of the input the maps cover.

    Returns:
        Tensor: ``B x 1 x size x size`` float maps.
    """
    grid = torch.arange(
        size, device=prompt_boxes.device, dtype=prompt_boxes.dtype) + 0.5
    inside = []
    for axis in (1, 0):  # rows, then columns
        start, end = box[:, axis], box[:, axis + 2]
        centres = start[:, None] + grid[None] * (end - start)[:, None] / size
        inside.append((centres >= prompt_boxes[:, axis, None])
                      & (centres <= prompt_boxes[:, axis + 2, None]))
    rows, cols = inside
    return (rows[:, None, :, None] & cols[:, None, None, :]).to(
        prompt_boxes.dtype)


def whole_input_box(batch: int, input_size: int, like: Tensor) -> Tensor:
    """``B x 4`` boxes covering the whole padded input."""
    return like.new_tensor([0.0, 0.0, input_size, input_size]).expand(batch, 4)
