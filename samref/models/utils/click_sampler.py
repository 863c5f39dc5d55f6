# Copyright (c) samref contributors. All rights reserved.
from typing import Optional, Tuple

import numpy as np
from mmseg.registry import TASK_UTILS

from ...evaluation.click_simulator import object_box, padded_distance


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

    - With ``box_prob`` > 0, that share of the samples starts with a box
      prompt instead of the first click (as SAM trains): the object's
      bounding box, each side moved by Gaussian noise of standard deviation
      ``box_noise`` times the box's side, at most ``box_max_noise``
      pixels; the extra clicks then correct the box's mask.

    Randomness comes from numpy's global generator, which mmengine seeds
    (``randomness=dict(seed=...)``), so a seeded run repeats its clicks.

    Args:
        max_extra_clicks (int): Largest ``n``. Defaults to 20.
        margin_ratio (float): Candidates lie farther than ``max /
            margin_ratio`` from the border. Defaults to 1.7.
        box_prob (float): Share of the samples that start with a box
            prompt. Defaults to 0 (clicks only; no random draw is made for
            it, so click-only runs repeat those made before it existed).
        box_noise (float): Standard deviation of a box side's noise, as a
            share of the box's width (x) or height (y). Defaults to 0.1.
        box_max_noise (float): Largest standard deviation of the noise, in
            pixels of the model input. Defaults to 20.
    """

    def __init__(self,
                 max_extra_clicks: int = 20,
                 margin_ratio: float = 1.7,
                 box_prob: float = 0.0,
                 box_noise: float = 0.1,
                 box_max_noise: float = 20.0) -> None:
        if max_extra_clicks < 0:
            raise ValueError('max_extra_clicks must be >= 0, got '
                             f'{max_extra_clicks}')
        if not 0 <= box_prob <= 1:
            raise ValueError(f'box_prob must be in [0, 1], got {box_prob}')
        if box_noise < 0 or box_max_noise < 0:
            raise ValueError('box_noise and box_max_noise must be >= 0, got '
                             f'{box_noise} and {box_max_noise}')
        self.max_extra_clicks = max_extra_clicks
        self.margin_ratio = margin_ratio
        self.box_prob = box_prob
        self.box_noise = box_noise
        self.box_max_noise = box_max_noise

    def starts_with_box(self) -> bool:
        """Draw whether a sample starts with a box prompt (``box_prob``)."""
        return self.box_prob > 0 and bool(np.random.rand() < self.box_prob)

    def first_box(self, gt: np.ndarray) -> Tuple[float, float, float, float]:
        """The object's bounding box with noisy sides.

        Args:
            gt (np.ndarray): ``H x W`` 1 / 0 / -1 mask with an object.

        Returns:
            tuple[float, float, float, float]: ``(x0, y0, x1, y1)`` on the
            pixel grid's edges, inside the map, at least one pixel wide and
            high.
        """
        box = np.array(object_box(gt), dtype=np.float64)
        sides = np.tile(box[2:] - box[:2], 2)
        std = np.minimum(self.box_noise * sides, self.box_max_noise)
        box += np.random.normal(size=4) * std
        height, width = gt.shape
        box = np.clip(box, 0, [width, height, width, height])
        box[2:] = np.maximum(box[2:], np.minimum(box[:2] + 1, [width, height]))
        box[:2] = np.minimum(box[:2], box[2:] - 1)
        return tuple(float(v) for v in box)

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
