# Copyright (c) samref contributors. All rights reserved.
import torch.nn as nn
from mmengine.registry import MODELS


# In mmengine's root registry, with mmcv's norms: build_norm_layer finds it
# from any default scope.
@MODELS.register_module()
class ChannelGroupNorm(nn.GroupNorm):
    """Instance normalisation as a GroupNorm with one group per channel.

    The same values as ``nn.InstanceNorm2d(affine=True)``, but GroupNorm's
    kernel keeps channels-last CPU tensors as they are and runs several
    times faster on them (the refiners' layout). Each sample is normalised
    by its own statistics, in training and in testing alike. Built by
    ``norm_cfg=dict(type='ChannelGroupNorm')``; its layers are named like
    instance norms (``in1``, ...).

    Args:
        num_features (int): Channels.
        eps (float): Added to the variance. Defaults to 1e-5.
        affine (bool): Learn a per-channel scale and shift.
            Defaults to True.
    """

    _abbr_ = 'in'

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 affine: bool = True) -> None:
        super().__init__(num_features, num_features, eps, affine)
