# Copyright (c) samref contributors. All rights reserved.
import torch
import torch.nn as nn
from mmengine.model.weight_init import BaseInit, update_init_info
from mmseg.registry import WEIGHT_INITIALIZERS


@WEIGHT_INITIALIZERS.register_module(name='MimeticAttention')
class MimeticAttentionInit(BaseInit):
    """Start every attention layer with its key projection equal to its
    query projection (mimetic initialisation, Trockman and Kolter, 2023).

    With independent random query and key projections, attention scores
    carry no trace of the similarity between a query and a key. With the
    key projection tied to the query projection, ``W_q^T W_k`` is positive
    semi-definite and close to a multiple of the identity, so a token first
    attends to the tokens that resemble it. In SAM's mask decoder this makes
    a click token attend to the image positions whose positional encoding
    matches its own, which a decoder trained from random weights otherwise
    takes thousands of iterations to discover. Only the starting point is
    tied; both projections then train freely.

    Covers both attention layouts of ``segment_anything``: the mask
    decoder's (``q_proj`` / ``k_proj``) and the image encoder's fused
    ``qkv`` projection.

    Args:
        gain (float): Factor on the query projection before it is copied,
            sharpening (> 1) or flattening (< 1) the first attention maps.
            Defaults to 1.
        layer (str | list[str], optional): Class names of the attention
            modules to initialise. Defaults to ``'Attention'``, the name of
            both ``segment_anything`` attention classes. To initialise only
            part of a model, give ``layer=[]`` and name the part in
            ``override``, e.g. ``dict(type='MimeticAttention', layer=[],
            override=dict(name='mask_decoder'))``.
    """

    def __init__(self, gain: float = 1.0, layer='Attention', **kwargs) -> None:
        super().__init__(layer=layer, **kwargs)
        self.gain = gain

    def __call__(self, module: nn.Module) -> None:
        tied = []

        def init(m: nn.Module) -> None:
            if m.__class__.__name__ in self.layer or self.wholemodule:
                if tie_query_key(m, self.gain):
                    tied.append(m)

        module.apply(init)
        if not tied and (self.layer or self.wholemodule):
            raise ValueError(f'MimeticAttention found no attention module '
                             f'of {self.layer} in {type(module).__name__}')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: gain={self.gain}'


@torch.no_grad()
def tie_query_key(module: nn.Module, gain: float = 1.0) -> bool:
    """Set an attention module's key projection to ``gain`` times its query
    projection, and the query projection to the same.

    Args:
        module (nn.Module): A module with ``q_proj`` and ``k_proj`` linear
            layers, or with a fused ``qkv`` linear layer (query rows, then
            key rows, then value rows).
        gain (float): Factor on the query weights. Defaults to 1.

    Returns:
        bool: Whether ``module`` is such an attention module.
    """
    if isinstance(getattr(module, 'q_proj', None), nn.Linear) and \
            isinstance(getattr(module, 'k_proj', None), nn.Linear):
        if module.q_proj.weight.shape != module.k_proj.weight.shape:
            raise ValueError(
                f'cannot tie the key projection of {type(module).__name__} '
                f'to its query projection: weights of shape '
                f'{tuple(module.k_proj.weight.shape)} and '
                f'{tuple(module.q_proj.weight.shape)}')
        module.q_proj.weight.mul_(gain)
        module.k_proj.weight.copy_(module.q_proj.weight)
        return True
    qkv = getattr(module, 'qkv', None)
    if isinstance(qkv, nn.Linear) and qkv.out_features % 3 == 0:
        dim = qkv.out_features // 3
        qkv.weight[:dim].mul_(gain)
        qkv.weight[dim:2 * dim].copy_(qkv.weight[:dim])
        return True
    return False
