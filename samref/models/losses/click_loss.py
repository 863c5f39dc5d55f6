# Copyright (c) samref contributors. All rights reserved.
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


def click_loss(logits: Tensor, points: Tensor, labels: Tensor) -> Tensor:
    """Squared error of the predicted probability at each click, per sample.

    FocSAM's click loss (PTL): ``mean over valid clicks of
    (sigmoid(logit at the click) - label) ** 2``, where the logit is read at
    the pixel holding the click.

    Args:
        logits (Tensor): ``B x 1 x H x W`` logits in the frame of the clicks.
        points (Tensor): ``B x N x 2`` clicks ``(x, y)`` in pixels.
        labels (Tensor): ``B x N`` labels, 1 positive, 0 negative, -1
            padding (ignored).

    Returns:
        Tensor: ``B`` losses (0 for a sample without a valid click).
    """
    height, width = logits.shape[-2:]
    cols = points[..., 0].long().clamp(0, width - 1)
    rows = points[..., 1].long().clamp(0, height - 1)
    batch = torch.arange(len(logits), device=logits.device)[:, None]
    prob = logits[batch, 0, rows, cols].sigmoid()
    valid = (labels >= 0).to(prob.dtype)
    error = (prob - labels.clamp(min=0).to(prob.dtype))**2 * valid
    return error.sum(dim=1) / valid.sum(dim=1).clamp(min=1)


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
        """Mean loss over the batch.

        Args:
            logits (Tensor): ``B x 1 x H x W`` logits.
            points (Tensor): ``B x N x 2`` clicks ``(x, y)``, same frame.
            labels (Tensor): ``B x N`` labels (-1 padding).

        Returns:
            Tensor: The weighted loss.
        """
        return self.loss_weight * click_loss(logits, points, labels).mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_`` prefixed terms are summed)."""
        return self._loss_name
