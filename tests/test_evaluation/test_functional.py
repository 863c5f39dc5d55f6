# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest

from samref.evaluation import mask_iou, miou_curve, noc, nof

IOUS = np.array([
    [0.50, 0.86, 0.91, 0.96],  # reaches 85 at 2, 90 at 3, 95 at 4
    [0.20, 0.30, 0.40, 0.50],  # never reaches any threshold
    [0.95, 0.95, 0.80, 0.99],  # 95 at the first click, dips later
])


def test_noc_is_the_first_click_reaching_the_threshold():
    np.testing.assert_array_equal(noc(IOUS, 0.85), [2, 4, 1])
    np.testing.assert_array_equal(noc(IOUS, 0.90), [3, 4, 1])
    np.testing.assert_array_equal(noc(IOUS, 0.95), [4, 4, 1])
    assert noc(IOUS, 0.90).mean() == pytest.approx(8 / 3)


def test_noc_is_the_click_budget_when_never_reached():
    curves = np.full((2, 20), 0.5)
    np.testing.assert_array_equal(noc(curves, 0.85), [20, 20])


def test_nof_counts_reaching_at_the_last_click_as_a_failure():
    curves = np.full((3, 20), 0.5)
    curves[0, 19] = 0.95  # reaches 0.95 exactly at click 20, the budget
    curves[1, 7:] = 0.96  # reaches 0.95 at click 8
    # curves[2] never reaches 0.95
    np.testing.assert_array_equal(noc(curves, 0.95), [20, 8, 20])
    assert nof(curves, 0.95) == 2  # the reference's "over max"
    assert nof(curves, 0.90) == 2
    assert nof(curves, 0.97) == 3
    assert nof(curves, 0.5) == 0  # all reach 0.5 at click 1


def test_nof_uses_the_number_of_clicks_as_budget():
    # IOUS has 4 clicks: the first sample reaches 0.95 at click 4 only.
    assert nof(IOUS, 0.85) == 1
    assert nof(IOUS, 0.95) == 2
    assert nof(IOUS, 0.5) == 1  # 0.50 only at the last click
    assert nof(IOUS, 0.995) == 3


def test_miou_curve_is_the_mean_per_click():
    np.testing.assert_allclose(
        miou_curve(IOUS), [0.55, 0.70333333, 0.70333333, 0.81666667])


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match='N x K'):
        noc(np.zeros(5), 0.9)


def test_iou_ignores_the_ignore_band():
    gt = np.array([[1, 1, -1, 0]], dtype=np.int8)
    pred = np.array([[True, False, True, True]])
    # Pixel 2 is ignored: intersection {0}, union {0, 1, 3}.
    assert mask_iou(gt, pred) == pytest.approx(1 / 3)
    assert mask_iou(gt, gt == 1) == 1.0
    assert mask_iou(np.full((2, 2), -1, np.int8), np.ones((2, 2), bool)) \
        == 1.0
