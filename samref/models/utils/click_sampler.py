# Copyright (c) samref contributors. All rights reserved.
from typing import Optional, Tuple

import numpy as np
from mmseg.registry import TASK_UTILS

from ...evaluation.click_simulator import padded_distance


@TASK_UTILS.register_module()
class IterativeClickSampler:
    """Training clicks of InterFormer and FocSAM.

    - The first click is positive, at the object's interior point farthest
      from its border (the first such pixel in row-major order).
    - The number of extra clicks ``n`` is drawn with ``P(n)`` proportional
      to ``gamma ** n``, ``n = 0 .. max_extra_clicks`` (``gamma`` per
      dataset: 0.6 for COCO, 0.9 for LVIS).
    - Each extra click goes into the larger error region (false negatives
      or false positives of the current prediction, by pixel count), at a
      random pixel among those whose distance to the region's border
      exceeds ``max / margin_ratio``; it is positive in the false negatives.

    Randomness comes from numpy's global generator, which mmengine seeds
    (``randomness=dict(seed=...)``), so a seeded run repeats its clicks.

    Args:
        max_extra_clicks (int): Largest ``n``. Defaults to 20.
        margin_ratio (float): Candidates lie farther than ``max /
            margin_ratio`` from the border. Defaults to 1.7.
    """

    def __init__(self,
                 max_extra_clicks: int = 20,
                 margin_ratio: float = 1.7) -> None:
        if max_extra_clicks < 0:
            raise ValueError('max_extra_clicks must be >= 0, got '
                             f'{max_extra_clicks}')
        self.max_extra_clicks = max_extra_clicks
        self.margin_ratio = margin_ratio

    @staticmethod
    def first_click(gt: np.ndarray) -> Tuple[int, int]:
        """The interior point farthest from the object's border.

        Args:
            gt (np.ndarray): ``H x W`` 1 / 0 / -1 mask with an object.

        Returns:
            tuple[int, int]: ``(x, y)``.
        """
        dist = padded_distance(gt == 1)
        if dist.max() == 0:
            raise ValueError('the mask has no object pixel to click')
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        return int(x), int(y)

    def num_extra_clicks(self, gamma: float) -> int:
        """Draw ``n`` with ``P(n)`` proportional to ``gamma ** n``.

        Args:
            gamma (float): Decay, in (0, 1].

        Returns:
            int: ``n`` in ``0 .. max_extra_clicks``.
        """
        if not 0 < gamma <= 1:
            raise ValueError(f'gamma must be in (0, 1], got {gamma}')
        weights = gamma**np.arange(self.max_extra_clicks + 1)
        return int(np.random.choice(len(weights), p=weights / weights.sum()))

    def next_click(self, gt: np.ndarray,
                   pred: np.ndarray) -> Optional[Tuple[int, int, bool]]:
        """A click correcting the larger error region.

        Args:
            gt (np.ndarray): ``H x W`` 1 / 0 / -1 mask.
            pred (np.ndarray): ``H x W`` bool prediction.

        Returns:
            tuple[int, int, bool] | None: ``(x, y, positive)``, None when
            the prediction has no error.
        """
        valid = gt != -1
        fn = (gt == 1) & ~pred & valid
        fp = (gt == 0) & pred & valid
        positive = fn.sum() >= fp.sum()
        region = fn if positive else fp
        if not region.any():
            return None
        dist = padded_distance(region)
        ys, xs = np.nonzero(dist > dist.max() / self.margin_ratio)
        pick = np.random.randint(len(ys))
        return int(xs[pick]), int(ys[pick]), bool(positive)
