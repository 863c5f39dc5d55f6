# Copyright (c) samref contributors. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


def normalized_focal_loss(pred: Tensor,
                          target: Tensor,
                          weight: Optional[Tensor] = None,
                          alpha: float = 0.5,
                          gamma: float = 2.0,
                          eps: float = 1e-12,
                          ignore_index: int = -1) -> Tensor:
    """Normalized focal loss of RITM, per sample.

    With ``p`` the sigmoid of ``pred`` and ``pt = 1 - |target - p|``, the
    focal term ``(1 - pt) ** gamma`` is rescaled so that it sums to the
    number of valid pixels of the sample (the rescaling factor is not
    differentiated), then ``-alpha_t * focal * log(pt)`` is averaged over the
    valid pixels.

    Args:
        pred (Tensor): ``B x 1 x H x W`` logits.
        target (Tensor): ``B x 1 x H x W`` with 1 object, 0 background and
            ``ignore_index`` for pixels to ignore.
        weight (Tensor, optional): ``B x 1 x H x W`` pixel weights.
        alpha (float): Weight of object pixels (background: ``1 - alpha``).
            Defaults to 0.5.
        gamma (float): Focusing exponent. Defaults to 2.
        eps (float): Numerical guard. Defaults to 1e-12.
        ignore_index (int): Label of ignored pixels. Defaults to -1.

    Returns:
        Tensor: ``B`` losses.
    """
    dims = tuple(range(1, pred.dim()))
    valid = (target != ignore_index).to(pred.dtype)
    positive = target == 1
    prob = pred.sigmoid()
    alpha_t = torch.where(positive, alpha, 1 - alpha) * valid
    pt = torch.where(valid > 0, 1 - (positive.to(pred.dtype) - prob).abs(),
                     torch.ones_like(prob))
    focal = (1 - pt)**gamma
    scale = valid.sum(
        dims, keepdim=True) / (
            focal.sum(dims, keepdim=True) + eps)
    focal = focal * scale.detach()
    loss = -alpha_t * focal * torch.log(torch.clamp(pt + eps, max=1.0))
    if weight is not None:
        loss = loss * weight
    return loss.sum(dims) / (valid.sum(dims) + eps)


@MODELS.register_module()
class NormalizedFocalLoss(nn.Module):
    """Normalized focal loss (RITM), optionally weighting an error region.

    With ``error_weight`` w != 1, the pixels of the ``error_region`` given
    to :meth:`forward` weigh w (SAM-REF weighs the error region between SAM's
    mask and the ground truth by 1.5 for the refined outputs).

    Args:
        alpha (float): Object weight. Defaults to 0.5.
        gamma (float): Focusing exponent. Defaults to 2.
        error_weight (float): Weight of error-region pixels. Defaults to 1.
        ignore_index (int): Label of ignored pixels. Defaults to -1.
        loss_weight (float): Weight of the loss. Defaults to 1.
        loss_name (str): Name of the loss item. Defaults to ``'loss_nfl'``.
        eps (float): Numerical guard of the focal rescaling and of the
            logarithm, ``log(pt + eps)``, which it keeps above ``log(eps)``
            for a confidently wrong pixel. FocSAM's code uses float32's
            machine epsilon (about 1.19e-7). Defaults to 1e-12.
    """

    def __init__(self,
                 alpha: float = 0.5,
                 gamma: float = 2.0,
                 error_weight: float = 1.0,
                 ignore_index: int = -1,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_nfl',
                 eps: float = 1e-12) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        self.alpha = alpha
        self.gamma = gamma
        self.error_weight = error_weight
        self.eps = eps
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                error_region: Optional[Tensor] = None) -> Tensor:
        """Mean loss over the batch.

        Args:
            pred (Tensor): ``B x 1 x H x W`` logits.
            target (Tensor): ``B x 1 x H x W`` labels (1, 0, ignore).
            error_region (Tensor, optional): ``B x 1 x H x W`` bool region
                weighted by ``error_weight``.

        Returns:
            Tensor: The weighted loss.
        """
        weight = None
        if error_region is not None and self.error_weight != 1:
            weight = 1 + (self.error_weight - 1) * error_region.to(pred.dtype)
        loss = normalized_focal_loss(
            pred,
            target,
            weight,
            alpha=self.alpha,
            gamma=self.gamma,
            eps=self.eps,
            ignore_index=self.ignore_index)
        return self.loss_weight * loss.mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_`` prefixed terms are summed)."""
        return self._loss_name
