# Copyright (c) samref contributors. All rights reserved.
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from torch import Tensor


@dataclass
class Interaction:
    """What a segmentor makes of the clicks so far: the result of
    ``interact``.

    Every segmentor fills :attr:`logits`; the rest is filled by the models
    that have it.

    Attributes:
        logits (Tensor): ``B x 1 x h x w`` low-resolution logits, fed back
            at the next click (SAM's mask prompt).
        pred_logits (Tensor, optional): Square logits over the padded input,
            at any resolution, that the mask is read from when they differ
            from :attr:`logits` (SAM-REF's PatchDiff windows at full
            resolution).
        iou_pred (Tensor, optional): ``B`` IoU of the mask that SAM's decoder
            predicts.
        state (dict[str, Tensor]): What the model remembers for the next
            click (SAM-REF's error area, FocSAM's refined embedding).
        branch (list[str], optional): The path each sample took: SAM-REF's
            ``'sam'``, ``'global'`` or ``'patch'``, FocSAM's ``'sam'`` or
            ``'refine'``.
        stage_times (dict[str, float]): Seconds per stage, when the model's
            ``time_stages`` is set.
        coarse (Tensor, optional): SAM-REF: SAM's logits at ``S/4``.
        global_refinement (dict[str, Tensor], optional): SAM-REF:
            GlobalDiff's ``features``, ``error``, ``detail`` and ``logits``.
        patch_refinement (dict[str, Tensor], optional): SAM-REF: PatchDiff's
            ``coarse``, ``error``, ``detail`` and ``logits`` in its windows,
            the windows (``boxes``, ``K x 4`` ``(x0, y0, x1, y1)`` in the
            input frame) and the batch ``index`` of the refined samples.
        clicks (tuple[Tensor, Tensor], optional): FocSAM: the points and
            labels, for its click loss.
    """

    logits: Tensor
    pred_logits: Optional[Tensor] = None
    iou_pred: Optional[Tensor] = None
    state: Dict[str, Tensor] = field(default_factory=dict)
    branch: Optional[List[str]] = None
    stage_times: Dict[str, float] = field(default_factory=dict)
    coarse: Optional[Tensor] = None
    global_refinement: Optional[Dict[str, Tensor]] = None
    patch_refinement: Optional[Dict[str, Tensor]] = None
    clicks: Optional[Tuple[Tensor, Tensor]] = None

    @property
    def prediction_logits(self) -> Tensor:
        """The logits the mask is read from: :attr:`pred_logits` when the
        model gives them, else :attr:`logits`."""
        return self.logits if self.pred_logits is None else self.pred_logits

    def window(self, sample: int = 0) -> Optional[Tuple[float, ...]]:
        """PatchDiff's window of a sample at this click.

        Args:
            sample (int): The sample's index in the batch. Defaults to 0.

        Returns:
            tuple[float, ...] | None: ``(x0, y0, x1, y1)`` in the input
            frame, or None when PatchDiff did not refine the sample.
        """
        if self.patch_refinement is None:
            return None
        rows = (self.patch_refinement['index'] == sample).nonzero()
        if len(rows) == 0:
            return None
        box = self.patch_refinement['boxes'][int(rows[0, 0])]
        return tuple(float(v) for v in box.tolist())
