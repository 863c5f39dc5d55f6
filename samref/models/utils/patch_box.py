# Copyright (c) samref contributors. All rights reserved.
from typing import Tuple

import cv2
import numpy as np

Box = Tuple[float, float, float, float]


def select_patch_box(new_mask: np.ndarray,
                     prev_mask: np.ndarray,
                     click: Tuple[float, float],
                     valid_size: Tuple[int, int],
                     expand_ratio: float = 1.4,
                     min_size: float = 16.0) -> Box:
    """The PatchDiff window for the last click (SAM-REF, section 3.4.1).

    The window is the bounding box of the connected component (8-connected)
    of ``new_mask XOR prev_mask`` that contains the last click, expanded by
    ``expand_ratio`` about its centre, grown to at least ``min_size`` per
    side and clipped to the valid (unpadded) area. When the click lies in no
    changed component (the new mask agrees with the previous one there), the
    window is a ``min_size`` square centred on the click.

    Args:
        new_mask (np.ndarray): ``H x W`` bool mask after this click.
        prev_mask (np.ndarray): ``H x W`` bool mask before it.
        click (tuple[float, float]): ``(x, y)`` of the last click, in pixels
            of the masks.
        valid_size (tuple[int, int]): ``(h, w)`` of the unpadded image in
            pixels of the masks.
        expand_ratio (float): Expansion of the component's box.
            Defaults to 1.4.
        min_size (float): Smallest side of the window. Defaults to 16.

    Returns:
        tuple[float, float, float, float]: ``(x0, y0, x1, y1)`` in pixels of
        the masks.
    """
    height, width = valid_size
    x = int(np.clip(click[0], 0, new_mask.shape[1] - 1))
    y = int(np.clip(click[1], 0, new_mask.shape[0] - 1))
    changed = (new_mask ^ prev_mask).astype(np.uint8)
    _, components, stats, _ = cv2.connectedComponentsWithStats(
        changed, connectivity=8)
    component = components[y, x]
    if component == 0:
        cx, cy, w, h = x + 0.5, y + 0.5, 0.0, 0.0
    else:
        left, top, w, h = stats[component, :4].astype(float)
        cx, cy = left + w / 2, top + h / 2
    w = min(max(w * expand_ratio, min_size), width)
    h = min(max(h * expand_ratio, min_size), height)
    # Shift the window inside the valid area rather than shrinking it.
    x0 = float(np.clip(cx - w / 2, 0, width - w))
    y0 = float(np.clip(cy - h / 2, 0, height - h))
    return x0, y0, x0 + w, y0 + h
