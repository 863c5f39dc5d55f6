# Copyright (c) samref contributors. All rights reserved.
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, bias_init_with_prob
from mmseg.models.backbones.resnet import BasicBlock
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor

from ..utils import RoICrop, box_prompt_map, click_disk_maps
from .global_diff_refiner import refine


@MODELS.register_module()
class PatchDiffRefiner(BaseModule):
    """PatchDiff Refiner (SAM-REF, section 3.4.1): the image and the clicks
    fused again inside a local window.

    For a window (chosen by ``select_patch_box``) it crops, with aligned
    RoIAlign (:class:`RoICrop`), the input image, GlobalDiff's features
    ``F(N)`` and the coarse logits to ``patch_size x patch_size``; draws
    the clicks inside the window as disks (and the box prompt, filled, with
    ``prompt_channels`` 4); fuses image, prompt map (disks, box, local
    coarse logits) and features; and predicts a local error map
    ``Me`` and detail map ``Md`` with two heads. The local logits are
    equation (2)'s ``sigmoid(Me) * Md + (1 - sigmoid(Me)) * Mc``.

    Args:
        feat_channels (int): Channels of ``F(N)``. Defaults to 64.
        channels (int): Channels of the patch features. Defaults to 32.
        patch_size (int): Side of the patch. Defaults to 256.
        num_blocks (int): ResBasicBlocks after the fusion. Defaults to 1.
        disk_radius (float): Radius of the click disks, in patch pixels.
            Defaults to 5.
        feature_stride (int): Stride of ``F(N)`` and the coarse logits
            relative to the input. Defaults to 4.
        prompt_channels (int): Channels of the prompt map: 3 (clicks and
            coarse logits), or 4 with the box prompt. Defaults to 3.
        norm_cfg (dict): Normalisation, per window (see
            :class:`GlobalDiffRefiner`). Defaults to
            ``dict(type='ChannelGroupNorm')``.
        error_prior (float, optional): Starting probability of the local
            error map (see :class:`GlobalDiffRefiner`). Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 feat_channels: int = 64,
                 channels: int = 32,
                 patch_size: int = 256,
                 num_blocks: int = 1,
                 disk_radius: float = 5.0,
                 feature_stride: int = 4,
                 prompt_channels: int = 3,
                 norm_cfg: ConfigType = dict(type='ChannelGroupNorm'),
                 error_prior: Optional[float] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        if error_prior is not None and not 0 < error_prior < 1:
            raise ValueError(
                f'error_prior must be in (0, 1), got {error_prior}')
        self.error_prior = error_prior
        if prompt_channels not in (3, 4):
            raise ValueError('prompt_channels must be 3 (clicks, coarse '
                             'logits) or 4 (and the box prompt), got '
                             f'{prompt_channels}')
        self.prompt_channels = prompt_channels
        self.patch_size = patch_size
        self.disk_radius = disk_radius
        size = (patch_size, patch_size)
        self.crop_image = RoICrop(size, spatial_scale=1.0)
        self.crop_map = RoICrop(size, spatial_scale=1.0 / feature_stride)
        self.image_fusion = nn.Conv2d(3, channels, 3, padding=1)
        self.prompt_fusion = nn.Conv2d(prompt_channels, channels, 3, padding=1)
        self.feature_fusion = nn.Conv2d(feat_channels, channels, 1)
        self.blocks = nn.Sequential(*[
            BasicBlock(channels, channels, norm_cfg=norm_cfg)
            for _ in range(num_blocks)
        ])
        self.error_head = self._head(channels, norm_cfg)
        self.detail_head = self._head(channels, norm_cfg)
        self.to(memory_format=torch.channels_last)  # fast CPU convolutions

    def init_weights(self) -> None:
        """Set the error logits' bias from ``error_prior``, then apply
        ``init_cfg``."""
        if self.error_prior is not None and not self._is_init:
            with torch.no_grad():
                self.error_head[-1].bias.fill_(
                    bias_init_with_prob(self.error_prior))
        super().init_weights()

    @staticmethod
    def _head(channels: int, norm_cfg: ConfigType) -> nn.Sequential:
        return nn.Sequential(
            ConvModule(
                channels, channels // 2, 3, padding=1, norm_cfg=norm_cfg),
            nn.Conv2d(channels // 2, 1, 1))

    def forward(self,
                inputs: Tensor,
                features: Tensor,
                coarse: Tensor,
                points: Tensor,
                labels: Tensor,
                boxes: Tensor,
                prompt_boxes: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Refine the windows.

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.
            features (Tensor): ``B x C x S/4 x S/4`` GlobalDiff features.
            coarse (Tensor): ``B x 1 x S/4 x S/4`` logits to refine.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` click labels.
            boxes (Tensor): ``B x 4`` windows ``(x0, y0, x1, y1)``, input
                frame.
            prompt_boxes (Tensor, optional): ``B x 4`` box prompts, input
                frame, drawn with ``prompt_channels`` 4; None draws an
                empty box channel (an object without a box).

        Returns:
            dict[str, Tensor]: ``coarse``, ``error``, ``detail`` and
            ``logits``, all ``B x 1 x P x P`` in the window.
        """
        # The crops read their boxes on the host: once for the three.
        rois = [[float(i), *box] for i, box in enumerate(boxes.tolist())]
        coarse_patch = self.crop_map(coarse, rois)
        disks = click_disk_maps(points, labels, self.patch_size, boxes,
                                self.disk_radius)
        prompts = [disks]
        if self.prompt_channels == 4:
            prompts.append(
                disks.new_zeros((len(disks), 1) +
                                disks.shape[-2:]) if prompt_boxes is
                None else box_prompt_map(prompt_boxes, self.patch_size, boxes))
        prompts.append(coarse_patch)
        fusions = ((self.image_fusion, self.crop_image(inputs, rois)),
                   (self.prompt_fusion, torch.cat(prompts, dim=1)),
                   (self.feature_fusion, self.crop_map(features, rois)))
        feats = sum(
            fusion(x.contiguous(memory_format=torch.channels_last))
            for fusion, x in fusions)
        feats = self.blocks(feats)
        hidden = [
            head[:-1](feats) for head in (self.error_head, self.detail_head)
        ]
        # The heads' last convolutions in float32 also under autocast
        # (refiner_dtype 'bfloat16'): the sign of their logits near 0
        # decides the mask.
        with torch.autocast(feats.device.type, enabled=False):
            error, detail = (head[-1](x.float())
                             for head, x in zip((self.error_head,
                                                 self.detail_head), hidden))
        return dict(
            coarse=coarse_patch,
            error=error,
            detail=detail,
            logits=refine(error, detail, coarse_patch))
