# Copyright (c) samref contributors. All rights reserved.
import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor


def channel_norm_keeping_layout(x: Tensor, weight: Tensor, bias: Tensor,
                                eps: float) -> Tensor:
    """Normalise each channel of each sample by its own statistics, in the
    input's memory format.

    The values of ``F.group_norm`` with one group per channel, from
    reductions and element-wise operations that keep a channels-last input
    channels-last (statistics in float32, the result in the input's
    precision).

    Args:
        x (Tensor): ``N x C x H x W`` maps.
        weight (Tensor, optional): ``C`` scale.
        bias (Tensor, optional): ``C`` shift.
        eps (float): Added to the variance.

    Returns:
        Tensor: The normalised maps, in ``x``'s memory format and dtype.
    """
    values = x.float()
    mean = values.mean(dim=(2, 3), keepdim=True)
    var = values.var(dim=(2, 3), keepdim=True, unbiased=False)
    out = (values - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        out = out * weight.float().view(1, -1, 1, 1) + \
            bias.float().view(1, -1, 1, 1)
    return out.to(x.dtype)


# In mmengine's root registry, with mmcv's norms: build_norm_layer finds it
# from any default scope.
@MODELS.register_module()
class ChannelGroupNorm(nn.GroupNorm):
    """Instance normalisation as a GroupNorm with one group per channel.

    The same values as ``nn.InstanceNorm2d(affine=True)``, in the
    refiners' channels-last layout without a copy on every device: on the
    CPU, GroupNorm's kernel keeps channels-last tensors as they are and
    runs several times faster on them; elsewhere (CUDA's group norm makes
    its input NCHW-contiguous, a copy each way) it is computed by
    :func:`channel_norm_keeping_layout`. Each sample is normalised by its
    own statistics, in training and in testing alike. Built by
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

    def forward(self, x: Tensor) -> Tensor:
        """Normalise.

        Args:
            x (Tensor): ``N x C x H x W`` maps.

        Returns:
            Tensor: In ``x``'s memory format.
        """
        if x.device.type == 'cpu' or x.dim() != 4 or \
                not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        return channel_norm_keeping_layout(x, self.weight, self.bias, self.eps)
