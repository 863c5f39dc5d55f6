# Copyright (c) samref contributors. All rights reserved.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def sampled_modulated_deform_conv(x: Tensor, offset: Tensor, mask: Tensor,
                                  weight: Tensor, padding: int) -> Tensor:
    """Modulated deformable convolution (DCNv2) with ``F.grid_sample``.

    The same values as mmcv's kernel for stride 1, dilation 1, one group
    and one deformable group (mmcv's offset layout: ``dy, dx`` per kernel
    position, row-major; samples outside the input are 0), computed with
    torch's operators: multi-threaded on the CPU (mmcv's CPU kernel is a
    loop), one sampling and one matrix product on a GPU, in any precision.

    Args:
        x (Tensor): ``N x C x H x W`` input.
        offset (Tensor): ``N x 2K x H x W`` offsets, ``K`` kernel positions.
        mask (Tensor): ``N x K x H x W`` modulation.
        weight (Tensor): ``O x C x kh x kw`` kernel.
        padding (int): Zero padding (same on every side).

    Returns:
        Tensor: ``N x O x H' x W'``.
    """
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h = height + 2 * padding - kernel_h + 1
    out_w = width + 2 * padding - kernel_w + 1
    num = kernel_h * kernel_w
    kernel_y = torch.arange(
        kernel_h, device=x.device).repeat_interleave(kernel_w)
    kernel_x = torch.arange(kernel_w, device=x.device).repeat(kernel_h)
    rows = torch.arange(out_h, device=x.device) - padding
    cols = torch.arange(out_w, device=x.device) - padding
    offset = offset.view(batch, num, 2, out_h, out_w)
    y = rows.view(1, 1, -1, 1) + kernel_y.view(1, -1, 1, 1) + offset[:, :, 0]
    x_pos = cols.view(1, 1, 1, -1) + kernel_x.view(1, -1, 1, 1) + \
        offset[:, :, 1]
    # align_corners=True: -1 and 1 are the centres of the first and last
    # pixels, so a pixel coordinate p maps to 2 p / (size - 1) - 1.
    grid = torch.stack(
        [2 * x_pos / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1],
        dim=-1).to(x.dtype)
    sampled = F.grid_sample(
        x,
        grid.view(batch, num * out_h, out_w, 2),
        mode='bilinear',
        padding_mode='zeros',
        align_corners=True).view(batch, channels, num, out_h, out_w)
    sampled = sampled * mask.view(batch, 1, num, out_h, out_w)
    out = weight.reshape(out_channels, channels * num).to(
        sampled.dtype) @ sampled.view(batch, channels * num, out_h * out_w)
    return out.view(batch, out_channels, out_h, out_w)


class ModulatedDeformConv3x3(nn.Module):
    """A modulated deformable convolution (DCNv2) whose offsets and
    modulation come from its own convolution, computed with torch's
    operators on every device.

    The same parameters, state-dict keys (``weight``, ``bias``,
    ``conv_offset.*``), initialisation and values as mmcv's
    ``ModulatedDeformConv2dPack`` (stride 1, dilation 1, one group and one
    deformable group, as FocSAM uses it), without a compiled kernel:
    :func:`sampled_modulated_deform_conv` runs on any device and in any
    precision autocast picks (mmcv's CUDA kernel has no bfloat16 one), so
    mmcv needs no CUDA build.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel side. Defaults to 3.
        bias (bool): Add a bias. Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 bias: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # Per kernel position: a (dy, dx) offset and a modulation.
        self.conv_offset = nn.Conv2d(
            in_channels,
            3 * kernel_size * kernel_size,
            kernel_size,
            padding=self.padding)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """mmcv's initialisation: a uniform kernel (bound ``1 / sqrt(fan
        in)``), a zero bias and zero offsets and modulation logits."""
        bound = 1 / math.sqrt(
            self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve.

        Args:
            x (Tensor): ``N x C x H x W`` input.

        Returns:
            Tensor: ``N x O x H x W``.
        """
        out = self.conv_offset(x)
        dy_dx_first, dy_dx_second, mask = torch.chunk(out, 3, dim=1)
        offset = torch.cat((dy_dx_first, dy_dx_second), dim=1)
        out = sampled_modulated_deform_conv(x, offset, mask.sigmoid(),
                                            self.weight, self.padding)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype)
        return out
