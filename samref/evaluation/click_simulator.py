# Copyright (c) samref contributors. All rights reserved.
"""The protocol's click simulation (first published with RITM)."""
from typing import List, NamedTuple, Tuple

import cv2
import numpy as np


class Click(NamedTuple):
    """A simulated click, in pixels of the original image.

    Attributes:
        x (int): Column.
        y (int): Row.
        is_positive (bool): True for a click on the object.
    """
    x: int
    y: int
    is_positive: bool


def padded_distance(region: np.ndarray) -> np.ndarray:
    """L2 distance of every region pixel to the region's border.

    The region is padded with a 1-pixel zero border before OpenCV's exact
    distance transform and cropped afterwards, so the image border counts as
    region border.

    With OpenCV's threading off (``opencv_num_threads=0`` in the runtime
    config), it returns one of two results for the same mask from call to
    call, whose square roots differ in the last bit; the protocol's ties
    would then break differently on every run. The transform's squared
    distances are integers, so they are recovered by rounding and their
    square root is taken again in float64: equal distances are then equal
    bit for bit, on every call. This is exact while the distance stays
    below 1448 pixels (float32 keeps ``d ** 2`` within 0.5 of its integer
    up to ``2 ** 21``).

    Only the region's bounding box, with a ring of zeros around it, is
    transformed: the nearest zero pixel of a region pixel is never farther
    than that ring, so the distances are those of the whole map.

    Args:
        region (np.ndarray): ``H x W`` bool mask.

    Returns:
        np.ndarray: ``H x W`` float32 distances, 0 outside the region.
    """
    out = np.zeros(region.shape, dtype=np.float32)
    rows = np.flatnonzero(region.any(axis=1))
    if len(rows) == 0:
        return out
    cols = np.flatnonzero(region.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    padded = np.pad(region[box].astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2,
                                 cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    squared = np.rint(np.square(dist, dtype=np.float64))
    out[box] = np.sqrt(squared)
    return out


def object_box(gt: np.ndarray) -> Tuple[int, int, int, int]:
    """The bounding box of an object, the box-first protocol's first prompt.

    Args:
        gt (np.ndarray): ``H x W`` map, the object where it is 1.

    Returns:
        tuple[int, int, int, int]: ``(x0, y0, x1, y1)`` on the edges of the
        pixel grid: the object's pixels are columns ``x0 .. x1 - 1`` and
        rows ``y0 .. y1 - 1``.

    Raises:
        ValueError: The map has no object pixel.
    """
    rows = np.flatnonzero((gt == 1).any(axis=1))
    if len(rows) == 0:
        raise ValueError('the mask has no object pixel to box')
    cols = np.flatnonzero((gt == 1).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


class ClickSimulator:
    """Simulates the clicks of one object's interaction.

    Given the current prediction, the next click goes to the error pixel
    farthest from the border of its error region:

    - ``FN = gt & ~pred``, ``FP = ~gt & pred``, both without ignore pixels;
    - each region's padded L2 distance transform, multiplied by a "not
      clicked yet" map so that no error pixel is clicked twice;
    - positive when ``max(FN distance) > max(FP distance)``, strictly (a tie
      gives a negative click), on the pixel of maximal distance in the chosen
      region; ties go to the first such pixel in row-major order.

    When no error pixel is left to click (the prediction equals the ground
    truth outside the ignore pixels, or every error pixel was clicked
    already), both maxima are 0 and the tie rule applies as in the reference
    clicker: a negative click on pixel (row 0, column 0), every time. The
    model receives it like any other click.

    Args:
        gt (np.ndarray): ``H x W`` map with 1 for the object, 0 for
            background and -1 for ignored pixels.
    """

    def __init__(self, gt: np.ndarray) -> None:
        if gt.ndim != 2:
            raise ValueError(f'gt must be an H x W map, got shape {gt.shape}')
        self.gt = gt == 1
        self.valid = gt != -1
        self.not_clicked = np.ones(gt.shape, dtype=bool)
        self.clicks: List[Click] = []

    def next_click(self, pred: np.ndarray) -> Click:
        """Simulate the click that corrects ``pred`` the most.

        Args:
            pred (np.ndarray): ``H x W`` bool prediction (all False before
                the first click).

        Returns:
            Click: The click, also appended to :attr:`clicks`; the negative
            click at ``(0, 0)`` when no error pixel is left to click.
        """
        if pred.shape != self.gt.shape:
            raise ValueError(f'prediction of shape {pred.shape} does not '
                             f'match the ground truth {self.gt.shape}')
        fn = self.gt & ~pred & self.valid
        fp = ~self.gt & pred & self.valid
        fn_dist = padded_distance(fn) * self.not_clicked
        fp_dist = padded_distance(fp) * self.not_clicked
        # No error pixel left: both maxima are 0, the click is negative and
        # the first pixel of the all-zero FP map, (0, 0), is the maximum.
        is_positive = bool(fn_dist.max() > fp_dist.max())
        dist = fn_dist if is_positive else fp_dist
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        self.not_clicked[y, x] = False
        click = Click(int(x), int(y), is_positive)
        self.clicks.append(click)
        return click
