# Copyright (c) samref contributors. All rights reserved.
import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import RoIAlign
from torch import Tensor


class RoICrop(nn.Module):
    """Aligned, average RoIAlign with mmcv's adaptive sampling, fast on CPU.

    On CUDA it is ``mmcv.ops.RoIAlign(aligned=True)``. On the CPU, where
    mmcv's kernel is a single-threaded loop (about 50 ms for a 64-channel
    256 x 256 crop on 2 cores), the same samples are taken with
    ``F.grid_sample`` and averaged with ``F.avg_pool2d``, which are
    vectorised and multi-threaded (about 6 ms): each output bin averages a
    ``ceil(roi_h / out_h) x ceil(roi_w / out_w)`` grid of bilinear samples at
    the sub-bin centres, a sample is clamped to the map within one pixel of
    it and is zero beyond. The two give the same values up to float
    rounding (``tests/test_models/test_refiner_utils.py``). Either takes
    maps in any memory format (mmcv's kernels read NCHW memory whatever the
    strides say, so channels-last maps are made contiguous for them).

    Args:
        output_size (tuple[int, int]): ``(h, w)`` of a crop.
        spatial_scale (float): Map pixels per box unit.
    """

    def __init__(self, output_size: Tuple[int, int],
                 spatial_scale: float) -> None:
        super().__init__()
        self.output_size = tuple(output_size)
        self.spatial_scale = spatial_scale
        self.roi_align = RoIAlign(
            self.output_size, spatial_scale=spatial_scale, aligned=True)

    def forward(self, inputs: Tensor, rois: Tensor) -> Tensor:
        """Crop the boxes.

        Args:
            inputs (Tensor): ``B x C x H x W`` maps.
            rois (Tensor): ``K x 5`` rows ``(batch index, x0, y0, x1, y1)``
                in box units.

        Returns:
            Tensor: ``K x C x out_h x out_w`` crops.
        """
        if inputs.is_cuda:
            # mmcv's kernels read NCHW memory whatever the strides say.
            return self.roi_align(inputs.contiguous(), rois)
        return torch.cat([self._crop(inputs, roi) for roi in rois.tolist()])

    def _crop(self, inputs: Tensor, roi: list) -> Tensor:
        height, width = inputs.shape[-2:]
        x0, y0, x1, y1 = (v * self.spatial_scale - 0.5 for v in roi[1:])

        def samples_along(start: float, end: float, bins: int) -> tuple:
            # mmcv's adaptive grid: ceil(extent / bins) samples per bin, at
            # the centres of equal sub-bins.
            per_bin = max(1, math.ceil((end - start) / bins))
            count = bins * per_bin
            steps = torch.arange(
                count, dtype=inputs.dtype, device=inputs.device) + 0.5
            return start + steps * (end - start) / count, per_bin

        ys, grid_h = samples_along(y0, y1, self.output_size[0])
        xs, grid_w = samples_along(x0, x1, self.output_size[1])
        grid = torch.stack(
            torch.meshgrid(
                2 * xs / max(width - 1, 1) - 1,
                2 * ys / max(height - 1, 1) - 1,
                indexing='xy'),
            dim=-1)
        image = inputs[int(roi[0])][None]
        samples = F.grid_sample(
            image,
            grid[None],
            mode='bilinear',
            padding_mode='border',
            align_corners=True)
        outside_y = (ys < -1) | (ys > height)
        outside_x = (xs < -1) | (xs > width)
        if outside_y.any() or outside_x.any():
            inside = ~(outside_y[:, None] | outside_x[None, :])
            samples = samples * inside.to(samples.dtype)
        if grid_h == grid_w == 1:
            return samples
        return F.avg_pool2d(samples, (grid_h, grid_w))
