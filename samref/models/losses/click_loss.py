# Copyright (c) samref contributors. All rights reserved.
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


def click_loss(logits: Tensor, points: Tensor, labels: Tensor) -> Tensor:
    """Squared error of the predicted probability at the clicks.

    FocSAM's click loss (PTL): ``mean over valid clicks of
    (sigmoid(logit at the click) - label) ** 2``, where the logit is read at
    the pixel holding the click. As in FocSAM's code the mean pools the
    valid clicks of the whole batch, so a sample weighs by its number of
    clicks (not the mean of per-sample means).

    Args:
        logits (Tensor): ``B x 1 x H x W`` logits in the frame of the clicks.
        points (Tensor): ``B x N x 2`` clicks ``(x, y)`` in pixels.
        labels (Tensor): ``B x N`` labels, 1 positive, 0 negative, -1
            padding (ignored).

    Returns:
        Tensor: The loss, a scalar (0 when no click is valid).
    """
    height, width = logits.shape[-2:]
    cols = points[..., 0].long().clamp(0, width - 1)
    rows = points[..., 1].long().clamp(0, height - 1)
    batch = torch.arange(len(logits), device=logits.device)[:, None]
    prob = logits[batch, 0, rows, cols].sigmoid()
    valid = (labels >= 0).to(prob.dtype)
    error = (prob - labels.clamp(min=0).to(prob.dtype))**2 * valid
    return error.sum() / valid.sum().clamp(min=1)


@MODELS.register_module()
class ClickLoss(nn.Module):
    """FocSAM's click loss (PTL): the prediction at every click should agree
    with the click's label.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.
        loss_name (str): Name of the loss item. Defaults to
            ``'loss_click'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_click') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: Tensor, points: Tensor,
                labels: Tensor) -> Tensor:
        """The loss over the batch's valid clicks.

        Args:
            logits (Tensor): ``B x 1 x H x W`` logits.
            points (Tensor): ``B x N x 2`` clicks ``(x, y)``, same frame.
            labels (Tensor): ``B x N`` labels (-1 padding).

        Returns:
            Tensor: The weighted loss.
        """
        return self.loss_weight * click_loss(logits, points, labels)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_`` prefixed terms are summed)."""
        return self._loss_name
