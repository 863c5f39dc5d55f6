# Copyright (c) samref contributors. All rights reserved.
from functools import partial
from typing import Dict, Sequence, Union

import torch.nn as nn
from mmseg.registry import MODELS
from segment_anything.modeling import ImageEncoderViT


@MODELS.register_module()
class SAMImageEncoder(ImageEncoderViT):
    """SAM's ViT image encoder as a registered backbone.

    This *is* ``segment_anything``'s ``ImageEncoderViT`` (not a copy), so its
    parameter names match the ``image_encoder.*`` keys of the official SAM
    checkpoints. ``arch`` picks the published sizes; ``'tiny'`` is a small
    random-weight variant for tests and CPU demos.

    Args:
        arch (str | dict): ``'base'``, ``'large'``, ``'huge'`` or ``'tiny'``,
            or a dict with ``embed_dim``, ``depth``, ``num_heads`` and
            ``global_attn_indexes``. Defaults to ``'base'``.
        img_size (int): Side of the square, padded input. Defaults to 1024.
        patch_size (int): Patch size. Defaults to 16.
        out_channels (int): Channels of the image embedding. Defaults to 256.
        window_size (int): Window of the windowed-attention blocks.
            Defaults to 14.
        mlp_ratio (float): Hidden/embedding ratio of the MLPs. Defaults to 4.
    """
    arch_settings: Dict[str, dict] = {
        'base':
        dict(
            embed_dim=768,
            depth=12,
            num_heads=12,
            global_attn_indexes=(2, 5, 8, 11)),
        'large':
        dict(
            embed_dim=1024,
            depth=24,
            num_heads=16,
            global_attn_indexes=(5, 11, 17, 23)),
        'huge':
        dict(
            embed_dim=1280,
            depth=32,
            num_heads=16,
            global_attn_indexes=(7, 15, 23, 31)),
        'tiny':
        dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1, )),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 1024,
                 patch_size: int = 16,
                 out_channels: int = 256,
                 window_size: int = 14,
                 mlp_ratio: float = 4.0) -> None:
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise KeyError(f'Unknown SAM image encoder arch {arch!r}; '
                               f'choose from {sorted(self.arch_settings)} '
                               'or pass a dict')
            arch = self.arch_settings[arch]
        missing = {'embed_dim', 'depth', 'num_heads', 'global_attn_indexes'
                   } - set(arch)
        if missing:
            raise KeyError(f'SAM image encoder arch misses {sorted(missing)}')
        global_attn_indexes: Sequence[int] = tuple(arch['global_attn_indexes'])
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=arch['embed_dim'],
            depth=arch['depth'],
            num_heads=arch['num_heads'],
            mlp_ratio=mlp_ratio,
            out_chans=out_channels,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=window_size,
            global_attn_indexes=global_attn_indexes)
        self.patch_size = patch_size
        self.out_channels = out_channels
