# Copyright (c) samref contributors. All rights reserved.
"""FocSAM's focus refiner (Huang et al., CVPR 2024).

The refiner rewrites SAM's image embedding once, around the object, from the
embedding, the coarse mask and the decoder's click-fused mask token. Its
blocks attend within 16 x 16 windows of the embedding, alternately plain and
shifted by half a window, and compute only the windows that touch the focus
region (the coarse object's box, enlarged); a window exchanges information
with the token through cross-attention, and the token steers each window's
activation (P-DyReLU) before a modulated deformable convolution.
"""
import random
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ..utils.deform_conv import ModulatedDeformConv3x3
from ..utils.focus_window import focus_window_mask


class NullSlotAttention(nn.Module):
    """Multi-head attention with an extra all-zero key and value per head.

    The zero key scores 0 against every query, so a query can put part of
    its weight on "nothing" instead of being forced onto the given keys.

    Args:
        embed_dims (int): Channels. Defaults to 256.
        num_heads (int): Heads. Defaults to 8.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)

    def _heads(self, x: Tensor) -> Tensor:
        """``B x N x C`` to ``B x heads x N x C/heads``."""
        batch, num, channels = x.shape
        return x.view(batch, num, self.num_heads,
                      channels // self.num_heads).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """Attend.

        Args:
            query (Tensor): ``B x Nq x C``.
            key (Tensor): ``B x Nk x C``.
            value (Tensor): ``B x Nk x C``.

        Returns:
            Tensor: ``B x Nq x C``.
        """
        q = self._heads(self.q_proj(query))
        k = F.pad(self._heads(self.k_proj(key)), (0, 0, 0, 1))
        v = F.pad(self._heads(self.v_proj(value)), (0, 0, 0, 1))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class TokenUpdate(nn.Module):
    """The mask token reads a window (pre-norm cross-attention and an MLP,
    each scaled per channel).

    Args:
        embed_dims (int): Channels. Defaults to 256.
        num_heads (int): Heads. Defaults to 8.
        mlp_ratio (float): Hidden/embedding ratio of the MLP.
            Defaults to 4.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(embed_dims * mlp_ratio)
        self.norm_token = nn.LayerNorm(embed_dims)
        self.norm_window = nn.LayerNorm(embed_dims)
        self.attn = NullSlotAttention(embed_dims, num_heads)
        self.gamma_attn = nn.Parameter(torch.ones(embed_dims))
        self.norm_mlp = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, embed_dims))
        self.gamma_mlp = nn.Parameter(torch.ones(embed_dims))

    def forward(self, token: Tensor, window: Tensor) -> Tensor:
        """Update one token per window.

        Args:
            token (Tensor): ``M x 1 x C`` tokens.
            window (Tensor): ``M x N x C`` window features.

        Returns:
            Tensor: ``M x 1 x C`` updated tokens.
        """
        window = self.norm_window(window)
        token = token + self.gamma_attn * self.attn(
            self.norm_token(token), window, window)
        return token + self.gamma_mlp * self.mlp(self.norm_mlp(token))


class PDyReLU(nn.Module):
    """Prompt-conditioned dynamic ReLU: ``max(a0 x + b0, a1 x + b1)``.

    The pixel branch takes each pixel's similarity with the token, the
    channel branch the window's mean feature; each predicts per-channel
    slopes and offsets through an MLP, tanh and a learnt scale
    (``exp``, initially 1) and bias (initially 0).

    Args:
        channels (int): Channels. Defaults to 256.
    """

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.channels = channels
        self.pixel_mlp = nn.Sequential(
            nn.Linear(1, channels), nn.ReLU(inplace=True),
            nn.Linear(channels, 2 * channels), nn.Tanh())
        self.channel_mlp = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(inplace=True),
            nn.Linear(channels, 2 * channels), nn.Tanh())
        self.pixel_scale = nn.Parameter(torch.zeros(2 * channels))
        self.pixel_bias = nn.Parameter(torch.zeros(2 * channels))
        self.channel_scale = nn.Parameter(torch.zeros(2 * channels))
        self.channel_bias = nn.Parameter(torch.zeros(2 * channels))

    def _linear(self, x: Tensor, coefficients: Tensor) -> Tensor:
        """``a x + b`` with ``[a | b]`` split from the last dimension."""
        return coefficients[..., :self.channels] * x + \
            coefficients[..., self.channels:]

    def forward(self, x: Tensor, token: Tensor) -> Tensor:
        """Activate.

        Args:
            x (Tensor): ``M x N x C`` window features.
            token (Tensor): ``M x 1 x C`` projected tokens.

        Returns:
            Tensor: ``M x N x C``.
        """
        similarity = x @ token.transpose(1, 2)
        pixel = self.pixel_mlp(similarity) * self.pixel_scale.exp() + \
            self.pixel_bias
        channel = self.channel_mlp(x.mean(dim=1, keepdim=True)) * \
            self.channel_scale.exp() + self.channel_bias
        return torch.maximum(self._linear(x, pixel), self._linear(x, channel))


class WindowUpdate(nn.Module):
    """A window reads the token: self-attention, P-DyReLU steered by the
    token, then a modulated deformable 3x3 convolution, each residual and
    scaled per channel.

    ``f + g1 * PDyReLU(LN(Attn(f)), LN(Linear(token)))`` gives ``y``, and
    the output is ``f + g2 * ReLU(GN(DCNv2(y)))`` (one group).

    Args:
        embed_dims (int): Channels. Defaults to 256.
        num_heads (int): Heads. Defaults to 8.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8) -> None:
        super().__init__()
        self.token_proj = nn.Sequential(
            nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims))
        self.attn = NullSlotAttention(embed_dims, num_heads)
        self.norm_attn = nn.LayerNorm(embed_dims)
        self.dyrelu = PDyReLU(embed_dims)
        self.gamma_attn = nn.Parameter(torch.ones(1, embed_dims, 1, 1))
        # mmcv's DCNv2: offsets (18 channels) and modulation (9, through a
        # sigmoid) come from a 3x3 convolution of the input.
        self.deform_conv = ModulatedDeformConv3x3(embed_dims, embed_dims)
        self.init_deform_conv()
        self.norm_conv = nn.GroupNorm(1, embed_dims)
        self.gamma_conv = nn.Parameter(torch.ones(1, embed_dims, 1, 1))

    def init_deform_conv(self) -> None:
        """FocSAM's initialisation of the deformable convolution.

        The convolution that predicts the offsets and the modulation keeps
        PyTorch's default initialisation (uniform, so the offsets start
        random; mmcv zeroes it), and the kernel is normal with standard
        deviation ``sqrt(2 / (fan_in + out_channels))``, ``fan_in`` the
        input channels times 9 (0.028 at 256 channels; mmcv draws it
        uniformly with ``1 / sqrt(fan_in)``).
        """
        self.deform_conv.conv_offset.reset_parameters()
        weight = self.deform_conv.weight
        std = (2 / (weight[0].numel() + weight.shape[0]))**0.5
        nn.init.normal_(weight, 0.0, std)

    def forward(self, window: Tensor, token: Tensor) -> Tensor:
        """Update windows.

        Args:
            window (Tensor): ``M x C x s x s`` windows.
            token (Tensor): ``M x 1 x C`` their tokens.

        Returns:
            Tensor: ``M x C x s x s``.
        """
        seq = window.flatten(2).transpose(1, 2)
        seq = self.dyrelu(
            self.norm_attn(self.attn(seq, seq, seq)), self.token_proj(token))
        out = window + self.gamma_attn * seq.transpose(1, 2).reshape(
            window.shape)
        out = F.relu(self.norm_conv(self.deform_conv(out)))
        return window + self.gamma_conv * out


class DynamicWindowBlock(nn.Module):
    """One refiner block: the windows touching the focus region exchange
    information with the token; the others pass through.

    Each selected window gets a copy of the token, updates it
    (:class:`TokenUpdate`) and is updated with it (:class:`WindowUpdate`).
    The new token is the mean over all windows of the image (an unselected
    window keeps the incoming token); with ``coverage_scale`` that change is
    multiplied by ``exp(w * -log(r) + b)``, ``r`` the selected share
    (at least 0.01), which is the mean over the selected windows at
    initialisation (``w = 1``, ``b = 0``).

    Args:
        embed_dims (int): Channels. Defaults to 256.
        num_heads (int): Heads. Defaults to 8.
        mlp_ratio (float): MLP ratio of the token update. Defaults to 4.
        window_size (int): Window side in embedding cells. Defaults to 16.
        shift (bool): Roll the map by half a window first (and back after),
            without masking wrapped windows. Defaults to False.
        coverage_scale (bool): Rescale the token change by the selected
            share. Defaults to True.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.0,
                 window_size: int = 16,
                 shift: bool = False,
                 coverage_scale: bool = True) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.token_update = TokenUpdate(embed_dims, num_heads, mlp_ratio)
        self.window_update = WindowUpdate(embed_dims, num_heads)
        if coverage_scale:
            self.coverage_scale = nn.Linear(1, 1)
            nn.init.ones_(self.coverage_scale.weight)
            nn.init.zeros_(self.coverage_scale.bias)
        else:
            self.coverage_scale = None

    def partition(self, x: Tensor) -> Tensor:
        """``B x C x H x W`` (multiples of the window) to windows
        ``B*nH*nW x C x s x s``, in row-major order per image."""
        batch, channels, height, width = x.shape
        size = self.window_size
        x = x.view(batch, channels, height // size, size, width // size, size)
        return x.permute(0, 2, 4, 1, 3, 5).reshape(-1, channels, size, size)

    def unpartition(self, windows: Tensor, batch: int, height: int,
                    width: int) -> Tensor:
        """Inverse of :meth:`partition`."""
        size = self.window_size
        channels = windows.shape[1]
        x = windows.view(batch, height // size, width // size, channels, size,
                         size)
        return x.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, height,
                                                   width)

    def forward(self, x: Tensor, token: Tensor,
                focus: Tensor) -> Tuple[Tensor, Tensor]:
        """Refine the focus windows.

        Args:
            x (Tensor): ``B x C x H x W`` features.
            token (Tensor): ``B x 1 x C`` tokens.
            focus (Tensor): ``B x 1 x H x W`` focus map (> 0 inside).

        Returns:
            tuple[Tensor, Tensor]: The features and the tokens.
        """
        batch, _, height, width = x.shape
        size = self.window_size
        pad_h, pad_w = -height % size, -width % size
        x = F.pad(x, (0, pad_w, 0, pad_h))
        focus = F.pad(focus, (0, pad_w, 0, pad_h))
        if self.shift:
            x = torch.roll(x, (-(size // 2), -(size // 2)), dims=(2, 3))
            focus = torch.roll(
                focus, (-(size // 2), -(size // 2)), dims=(2, 3))
        padded_h, padded_w = x.shape[-2:]
        windows = self.partition(x)
        selected = self.partition(focus).flatten(1).amax(dim=1) > 0
        per_image = len(windows) // batch
        tokens = token.repeat_interleave(per_image, dim=0)
        index = selected.nonzero()[:, 0]
        if len(index):
            chosen = windows[index]
            new_tokens = self.token_update(tokens[index],
                                           chosen.flatten(2).transpose(1, 2))
            # Under autocast the updates may come out in another precision
            # than the maps they go into (float32 norms, float16 convs).
            windows = windows.index_copy(
                0, index,
                self.window_update(chosen, new_tokens).to(windows.dtype))
            tokens = tokens.index_copy(0, index, new_tokens.to(tokens.dtype))
        x = self.unpartition(windows, batch, padded_h, padded_w)
        if self.shift:
            x = torch.roll(x, (size // 2, size // 2), dims=(2, 3))
        x = x[..., :height, :width]
        new_token = tokens.view(batch, per_image, 1, -1).mean(dim=1)
        if self.coverage_scale is not None:
            share = selected.view(
                batch, per_image).float().mean(dim=1).clamp(min=0.01)
            scale = self.coverage_scale(-share.log()[:, None]).exp()
            new_token = token + scale[:, :, None] * (new_token - token)
        return x, new_token


@MODELS.register_module()
class FocSAMRefiner(nn.Module):
    """FocSAM's refiner of SAM's image embedding around the object.

    A 1x1 convolution of the embedding and a linear map of the mask token
    start ``depth`` :class:`DynamicWindowBlock` s (even ones plain, odd ones
    shifted); the last block does not rescale its token, and the final
    token is discarded. The focus region is the coarse mask's box scaled by
    ``expand_ratio`` at inference and, in training, by a height and a width
    ratio drawn from ``train_expand_range`` at every forward, unless the
    caller fixes one (:meth:`fixed_expand_ratio`, as ``FocSAM.loss`` does
    to share draws as FocSAM's code). No positional
    encoding is used. The defaults are the sizes of the released ViT-H
    model (about 25.4 M parameters).

    Args:
        embed_dims (int): Channels of the embedding and the token.
            Defaults to 256.
        depth (int): Blocks. Defaults to 12.
        num_heads (int): Attention heads. Defaults to 8.
        mlp_ratio (float): MLP ratio of the token update. Defaults to 4.
        window_size (int): Window side in embedding cells. Defaults to 16.
        expand_ratio (float | tuple[float, float]): Focus box scaling at
            inference, ``(height, width)`` or one for both. Defaults to 1.4.
        train_expand_range (tuple[float, float]): Range of the random
            scaling in training. Defaults to (1.0, 1.4).
    """

    def __init__(
        self,
        embed_dims: int = 256,
        depth: int = 12,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        window_size: int = 16,
        expand_ratio: Union[float, Tuple[float, float]] = 1.4,
        train_expand_range: Tuple[float, float] = (1.0, 1.4)
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f'depth must be >= 1, got {depth}')
        self.input_proj = nn.Conv2d(embed_dims, embed_dims, 1)
        self.token_proj = nn.Linear(embed_dims, embed_dims)
        self.blocks = nn.ModuleList(
            DynamicWindowBlock(
                embed_dims,
                num_heads,
                mlp_ratio,
                window_size,
                shift=i % 2 == 1,
                coverage_scale=i < depth - 1) for i in range(depth))
        self.expand_ratio = tuple(np.broadcast_to(expand_ratio, 2).tolist())
        low, high = train_expand_range
        if not 0 < low <= high:
            raise ValueError('train_expand_range must be (low, high) with '
                             f'0 < low <= high, got {train_expand_range}')
        self.train_expand_range = (low, high)
        self.fixed_ratio: Optional[Tuple[float, float]] = None

    @contextmanager
    def fixed_expand_ratio(self, ratio: Tuple[float, float]) -> Iterator[None]:
        """Scale the focus box by ``ratio`` in every forward of the block,
        in training and in eval mode (FocSAM's training draws one scaling
        per batch, and one per simulated group, instead of one per
        forward).

        Args:
            ratio (tuple[float, float]): ``(height, width)`` scaling.
        """
        previous, self.fixed_ratio = self.fixed_ratio, tuple(ratio)
        try:
            yield
        finally:
            self.fixed_ratio = previous

    def current_expand_ratio(self) -> Tuple[float, float]:
        """``(height, width)`` focus box scaling of this forward: the fixed
        one (:meth:`fixed_expand_ratio`), else the inference one in eval
        mode and a draw from ``train_expand_range`` in training."""
        if self.fixed_ratio is not None:
            return self.fixed_ratio
        if not self.training:
            return self.expand_ratio
        return (random.uniform(*self.train_expand_range),
                random.uniform(*self.train_expand_range))

    def forward(self, image_embeddings: Tensor, coarse_logits: Tensor,
                mask_token: Tensor, input_size: Tuple[int, int]) -> Tensor:
        """Refine the image embedding around the coarse object.

        Args:
            image_embeddings (Tensor): ``B x C x h x w`` SAM embedding.
            coarse_logits (Tensor): ``B x 1 x 4h x 4w`` logits of a decoder
                pass with the current clicks.
            mask_token (Tensor): ``B x 1 x C``: mask token 0 of that pass
                after the two-way transformer.
            input_size (tuple[int, int]): ``(H, W)`` of the padded input.

        Returns:
            Tensor: ``B x C x h x w`` refined embedding.
        """
        if mask_token.dim() != 3 or mask_token.shape[1] != 1:
            raise ValueError('mask_token must be B x 1 x C, got '
                             f'{tuple(mask_token.shape)}')
        x = self.input_proj(image_embeddings)
        token = self.token_proj(mask_token)
        focus = focus_window_mask(coarse_logits, input_size,
                                  self.current_expand_ratio(), x.shape[-2:])
        for block in self.blocks:
            x, token = block(x, token, focus)
        return x
