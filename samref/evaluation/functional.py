# Copyright (c) samref contributors. All rights reserved.
"""Interactive-segmentation metrics on arrays of per-click IoUs."""
import numpy as np


def mask_iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """IoU of a prediction against a 1 / 0 / -1 ground truth.

    Ignored pixels (-1) count neither in the intersection nor in the union.

    Args:
        gt (np.ndarray): ``H x W`` ground truth (1 object, 0 background, -1
            ignore).
        pred (np.ndarray): ``H x W`` bool prediction.

    Returns:
        float: The IoU; 1.0 when both are empty outside the ignore pixels.
    """
    valid = gt != -1
    obj = gt == 1
    union = np.count_nonzero((obj | pred) & valid)
    if union == 0:
        return 1.0
    return np.count_nonzero(obj & pred & valid) / union


def _as_curves(ious: np.ndarray) -> np.ndarray:
    ious = np.asarray(ious, dtype=np.float64)
    if ious.ndim != 2 or ious.shape[1] == 0:
        raise ValueError('expected an N x K array of per-click IoUs, got '
                         f'shape {ious.shape}')
    return ious


def noc(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Number of clicks to reach ``threshold``, per sample.

    Args:
        ious (np.ndarray): ``N x K`` IoUs after clicks 1..K.
        threshold (float): Target IoU, e.g. 0.9.

    Returns:
        np.ndarray: ``N`` click counts: the first (1-based) click with
        IoU >= threshold, K when it is never reached.
    """
    ious = _as_curves(ious)
    reached = ious >= threshold
    first = reached.argmax(axis=1) + 1
    return np.where(reached.any(axis=1), first, ious.shape[1])


def nof(ious: np.ndarray, threshold: float) -> int:
    """Number of failures: samples whose NoC@threshold is the click budget.

    This is the reference code's "over max" (RITM's protocol), which every
    published NoF figure uses: a sample that reaches ``threshold`` only at
    the last click ``K`` fails as much as one that never reaches it.

    Args:
        ious (np.ndarray): ``N x K`` IoUs after clicks 1..K.
        threshold (float): Target IoU.

    Returns:
        int: The count of samples (not a percentage).
    """
    ious = _as_curves(ious)
    return int(np.count_nonzero(noc(ious, threshold) == ious.shape[1]))


def miou_curve(ious: np.ndarray) -> np.ndarray:
    """Mean IoU after each click.

    Args:
        ious (np.ndarray): ``N x K`` IoUs after clicks 1..K.

    Returns:
        np.ndarray: ``K`` values; element ``k - 1`` is mIoU@k.
    """
    return _as_curves(ious).mean(axis=0)
