# Copyright (c) samref contributors. All rights reserved.
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def prototype_similarity_loss(embeddings: Tensor,
                              masks: Tensor,
                              scale: float = 10.0,
                              margin: float = 0.5) -> Tensor:
    """How well each embedding cell's cosine similarity to the object's
    prototype tells the object's share of that cell, per sample.

    The prototype is the mean of the (unit-length) embeddings of the cells
    the object covers for the most part (at least half, or the cells with
    the largest share when none does). The logit of a cell is
    ``scale * (cos(cell, prototype) - margin)`` and its target the object's
    share of the cell: binary cross-entropy, averaged over the cells whose
    pixels are mostly valid.

    Args:
        embeddings (Tensor): ``B x C x h x w`` image embeddings.
        masks (Tensor): ``B x 1 x H x W`` masks in the embeddings' frame
            (``H`` and ``W`` multiples of ``h`` and ``w``): 1 object,
            0 background, -1 ignored (e.g. padding).
        scale (float): Logit per unit of cosine similarity. Defaults to 10.
        margin (float): Cosine similarity of a cell half covered by the
            object. Defaults to 0.5.

    Returns:
        Tensor: ``B`` losses (0 for a sample without object pixels).
    """
    size = embeddings.shape[-2:]
    share = F.adaptive_avg_pool2d((masks == 1).to(embeddings), size)[:, 0]
    valid = F.adaptive_avg_pool2d((masks != -1).to(embeddings), size)[:, 0]
    valid = (valid > 0.5).to(embeddings)
    largest = share.flatten(1).amax(dim=1)
    core = share >= torch.clamp(largest, max=0.5)[:, None, None]
    core = (core & (share > 0)).to(embeddings)
    unit = F.normalize(embeddings, dim=1)
    prototype = (unit * core[:, None]).sum(dim=(2, 3))
    prototype = F.normalize(prototype, dim=1)
    similarity = (unit * prototype[:, :, None, None]).sum(dim=1)
    cell_loss = F.binary_cross_entropy_with_logits(
        scale * (similarity - margin), share, reduction='none') * valid
    loss = cell_loss.sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp(min=1)
    return loss * (largest > 0).to(loss)


@MODELS.register_module()
class PrototypeSimilarityLoss(nn.Module):
    """A loss on the image embeddings: the cells of one object should look
    alike, and unlike the rest of the picture.

    Cosine similarity to the object's mean embedding (its prototype) has to
    predict, cell by cell, how much of the cell the object covers (see
    :func:`prototype_similarity_loss`). It has no parameters. Trained from
    random weights, SAM's mask decoder otherwise learns where the clicks are
    and not what is under them; with this term on the encoder, clicks on
    the same object find embeddings that match (``configs/demo``).

    Args:
        scale (float): Logit per unit of cosine similarity. Defaults to 10.
        margin (float): Cosine similarity of a half-covered cell.
            Defaults to 0.5.
        loss_weight (float): Weight of the loss. Defaults to 1.
        loss_name (str): Name of the loss item. Defaults to
            ``'loss_prototype'``.
    """

    def __init__(self,
                 scale: float = 10.0,
                 margin: float = 0.5,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_prototype') -> None:
        super().__init__()
        self.scale = scale
        self.margin = margin
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, embeddings: Tensor, masks: Tensor) -> Tensor:
        """Mean loss over the batch.

        Args:
            embeddings (Tensor): ``B x C x h x w`` image embeddings.
            masks (Tensor): ``B x 1 x H x W`` 1 / 0 / -1 masks, same frame.

        Returns:
            Tensor: The weighted loss.
        """
        return self.loss_weight * prototype_similarity_loss(
            embeddings, masks, self.scale, self.margin).mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_`` prefixed terms are summed)."""
        return self._loss_name
