# Copyright (c) samref contributors. All rights reserved.
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, bias_init_with_prob
from mmseg.models.backbones.resnet import BasicBlock
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor


def refine(error: Tensor, detail: Tensor, coarse: Tensor) -> Tensor:
    """Equations (1) and (2): blend detail and coarse logits by the error.

    Args:
        error (Tensor): Error-map logits ``Me``.
        detail (Tensor): Detail-map logits ``Md``.
        coarse (Tensor): Coarse logits ``Mc``.

    Returns:
        Tensor: ``sigmoid(Me) * Md + (1 - sigmoid(Me)) * Mc``.
    """
    gate = error.sigmoid()
    return gate * detail + (1 - gate) * coarse


@MODELS.register_module()
class GlobalDiffRefiner(BaseModule):
    """GlobalDiff Refiner (SAM-REF, section 3.3): early fusion of the whole
    image with the clicks and SAM's coarse mask.

    - Image-prompt fusion: one conv brings the padded input image
      (``3 x S x S``) to ``C x S/4 x S/4``, one conv brings the dense prompt
      map ``P`` (positive disks, negative disks, optionally the filled box
      prompt, SAM's coarse logits last; ``3 x S/4 x S/4``, 4 with the box)
      to the same size; their sum is ``F(0)``.
    - Global detail extractor: SAM's image embedding (``256 x S/16 x S/16``)
      is upscaled x4 in two x2 steps (one step for a stride-8 embedding) to
      ``C x S/4 x S/4``; before each of the ``num_blocks`` ResBasicBlocks a
      1x1 projection of it is added.
    - Error-detail refinement: a 1x1 conv reduces the channels, a 1x1 conv
      predicts the error map ``Me`` and the detail map ``Md``.

    Everything that does not depend on the clicks (the image branch of the
    fusion and the projected embeddings) is computed by
    :meth:`image_features` once per image; a click costs the prompt branch,
    the blocks and the head. Given the valid (unpadded) size, only the image
    is refined: a click computes the valid area plus the receptive field of
    the blocks, and the padding keeps the coarse logits. With a per-pixel
    norm (e.g. BatchNorm in eval mode) every valid pixel is exactly what the
    whole map would give; with the default instance norm the statistics are
    those of that area, in training and in testing alike. Weights and
    features are kept channels-last, the fast layout of CPU convolutions.

    Args:
        channels (int): Channels ``C`` of the fused features. Defaults to 64.
        embed_channels (int): Channels of SAM's image embedding.
            Defaults to 256.
        embed_stride (int): Stride of SAM's image embedding, its encoder's
            patch size: 16 (SAM's), or 8 for an encoder with a finer token
            grid. Defaults to 16.
        num_blocks (int): ResBasicBlocks ``N``. Defaults to 3.
        reduce_channels (int): Channels after the reduction. Defaults to 32.
        image_kernel (int): Kernel of the stride-4 image conv. Defaults to 7.
        prompt_channels (int): Channels of the prompt map: 3 (clicks and
            coarse logits, the paper's), or 4 with the box prompt channel
            (``SAMRef(box_channel=True)``). Defaults to 3.
        norm_cfg (dict): Normalisation of the blocks and head. SAM-REF
            trains one sample per forward (each has its own clicks), so a
            batch-statistics norm would learn single-image statistics and
            test with running averages; an instance norm normalises alike
            in both. Defaults to ``dict(type='ChannelGroupNorm')``.
        error_prior (float, optional): Probability the error map ``Me``
            starts at, everywhere (the bias of its logits, as RetinaNet
            initialises a rare class): the refined mask then starts as
            SAM's and the refiner learns where to depart from it. Set before
            ``init_cfg``, so a ``Pretrained`` init still wins. None keeps
            PyTorch's default. Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 channels: int = 64,
                 embed_channels: int = 256,
                 embed_stride: int = 16,
                 num_blocks: int = 3,
                 reduce_channels: int = 32,
                 image_kernel: int = 7,
                 prompt_channels: int = 3,
                 norm_cfg: ConfigType = dict(type='ChannelGroupNorm'),
                 error_prior: Optional[float] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        if error_prior is not None and not 0 < error_prior < 1:
            raise ValueError(
                f'error_prior must be in (0, 1), got {error_prior}')
        self.error_prior = error_prior
        if num_blocks < 1:
            raise ValueError(f'num_blocks must be >= 1, got {num_blocks}')
        if embed_stride not in (8, 16):
            raise ValueError(
                f'embed_stride must be 8 or 16, got {embed_stride}')
        if prompt_channels not in (3, 4):
            raise ValueError('prompt_channels must be 3 (clicks, coarse '
                             'logits) or 4 (and the box prompt), got '
                             f'{prompt_channels}')
        self.channels = channels
        self.num_blocks = num_blocks
        self.prompt_channels = prompt_channels
        self.image_fusion = nn.Conv2d(
            3, channels, image_kernel, stride=4, padding=image_kernel // 2)
        self.prompt_fusion = nn.Conv2d(prompt_channels, channels, 3, padding=1)
        if embed_stride == 16:
            hidden = max(channels, embed_channels // 2)
            self.embedding_upscaler = nn.Sequential(
                nn.ConvTranspose2d(embed_channels, hidden, 2, stride=2),
                nn.GroupNorm(1, hidden), nn.GELU(),
                nn.ConvTranspose2d(hidden, channels, 2, stride=2))
        else:
            self.embedding_upscaler = nn.Sequential(
                nn.ConvTranspose2d(embed_channels, channels, 2, stride=2))
        self.embedding_projections = nn.ModuleList(
            nn.Conv2d(channels, channels, 1) for _ in range(num_blocks))
        self.blocks = nn.ModuleList(
            BasicBlock(channels, channels, norm_cfg=norm_cfg)
            for _ in range(num_blocks))
        self.reduce = ConvModule(
            channels, reduce_channels, 1, norm_cfg=norm_cfg)
        self.error_detail = nn.Conv2d(reduce_channels, 2, 1)
        # 3x3 convs of the per-click path: the prompt fusion and two per
        # block; each spreads the border of a cropped computation by 1.
        self.margin = 2 * num_blocks + 1
        self.to(memory_format=torch.channels_last)

    def init_weights(self) -> None:
        """Set the error logits' bias from ``error_prior``, then apply
        ``init_cfg``."""
        if self.error_prior is not None and not self._is_init:
            with torch.no_grad():
                self.error_detail.bias[0] = bias_init_with_prob(
                    self.error_prior)
        super().init_weights()

    def image_features(self, inputs: Tensor,
                       image_embeddings: Tensor) -> Dict[str, Tensor]:
        """The click-independent part, computed once per image.

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.
            image_embeddings (Tensor): ``B x 256 x S/16 x S/16`` SAM
                embeddings.

        Returns:
            dict[str, Tensor]: ``image`` (the fused image branch) and
            ``embeddings`` (a list of ``N`` ``B x C x S/4 x S/4`` maps, one
            per block).
        """
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        upscaled = self.embedding_upscaler(
            image_embeddings.contiguous(memory_format=torch.channels_last))
        return dict(
            image=self.image_fusion(inputs),
            embeddings=[proj(upscaled) for proj in self.embedding_projections])

    def forward(
            self,
            image_features: Dict[str, Tensor],
            prompt_map: Tensor,
            valid_size: Optional[Tuple[int, int]] = None) -> Dict[str, Tensor]:
        """Refine for the current clicks.

        Args:
            image_features (dict[str, Tensor]): From :meth:`image_features`.
            prompt_map (Tensor): ``B x P x S/4 x S/4``: positive disks,
                negative disks, the box prompt (with ``prompt_channels``
                4) and SAM's coarse logits ``Mc`` last.
            valid_size (tuple[int, int], optional): ``(h, w)`` of the
                unpadded image in map pixels. Only that area is refined
                (computed with the margin the blocks need to be exact);
                None refines the whole map.

        Returns:
            dict[str, Tensor]: ``features`` (``F(N)``), ``error`` and
            ``detail`` logits and ``logits``, the refined ``Mr`` of
            equation (1), all ``S/4 x S/4``.
        """
        coarse = prompt_map[:, -1:]
        size = tuple(prompt_map.shape[-2:])
        if valid_size is not None and all(v >= s
                                          for v, s in zip(valid_size, size)):
            valid_size = None  # nothing is padding
        window = (Ellipsis, slice(0, size[0]), slice(0, size[1]))
        if valid_size is not None:
            window = (Ellipsis,
                      slice(0, min(size[0], valid_size[0] + self.margin)),
                      slice(0, min(size[1], valid_size[1] + self.margin)))
        feats = image_features['image'][window] + self.prompt_fusion(
            prompt_map[window].contiguous(memory_format=torch.channels_last))
        for block, embedding in zip(self.blocks, image_features['embeddings']):
            feats = block(feats + embedding[window])
        # The head in float32 also under autocast (refiner_dtype
        # 'bfloat16'): the sign of its logits near 0 decides the mask.
        with torch.autocast(feats.device.type, enabled=False):
            error, detail = self.error_detail(self.reduce(
                feats.float())).split(
                    1, dim=1)
        outputs = dict(features=feats, error=error, detail=detail)
        if valid_size is not None:
            # Only the image is refined: outside it no error, the coarse
            # logits as detail, no features.
            valid = (Ellipsis, slice(0,
                                     valid_size[0]), slice(0, valid_size[1]))
            defaults = dict(
                features=feats.new_zeros(feats.shape[:2] + size),
                error=error.new_full(error.shape[:2] + size, -1e4),
                detail=coarse.clone())
            for name, full in defaults.items():
                full[valid] = outputs[name][valid]
                outputs[name] = full
        outputs['logits'] = refine(outputs['error'], outputs['detail'], coarse)
        return outputs
