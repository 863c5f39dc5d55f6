# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest

from samref.evaluation import padded_distance
from samref.models import IterativeClickSampler


def test_first_click_is_the_deepest_interior_point():
    gt = np.zeros((20, 30), np.int8)
    gt[2:12, 4:28] = 1  # 10 x 24 rectangle
    gt[5:9, 20:24] = 0  # a hole on the right
    x, y = IterativeClickSampler.first_click(gt)
    dist = padded_distance(gt == 1)
    assert dist[y, x] == dist.max()
    assert gt[y, x] == 1
    with pytest.raises(ValueError, match='no object'):
        IterativeClickSampler.first_click(np.zeros((4, 4), np.int8))


def test_extra_clicks_follow_a_geometric_law():
    sampler = IterativeClickSampler(max_extra_clicks=20)
    np.random.seed(0)
    draws = np.array([sampler.num_extra_clicks(0.6) for _ in range(20000)])
    assert draws.min() == 0 and draws.max() <= 20
    weights = 0.6**np.arange(21)
    expected = weights / weights.sum()
    observed = np.bincount(draws, minlength=21) / len(draws)
    np.testing.assert_allclose(observed[:5], expected[:5], atol=0.01)
    # gamma 0.9 (LVIS) draws more clicks than 0.6 (COCO).
    more = np.mean([sampler.num_extra_clicks(0.9) for _ in range(5000)])
    assert more > draws.mean() + 2
    assert IterativeClickSampler(max_extra_clicks=0).num_extra_clicks(0.9) \
        == 0
    with pytest.raises(ValueError, match='gamma'):
        sampler.num_extra_clicks(1.5)


def test_next_click_lies_deep_inside_the_larger_error():
    gt = np.zeros((40, 40), np.int8)
    gt[5:35, 5:35] = 1
    gt[0, :] = -1
    pred = np.zeros((40, 40), bool)
    pred[5:35, 5:15] = True  # FN: 30 x 20 block; FP: a small corner
    pred[37:40, 37:40] = True
    sampler = IterativeClickSampler()
    np.random.seed(1)
    fn = (gt == 1) & ~pred
    dist = padded_distance(fn)
    seen = set()
    for _ in range(200):
        x, y, positive = sampler.next_click(gt, pred)
        assert positive and fn[y, x]
        assert dist[y, x] > dist.max() / 1.7
        seen.add((x, y))
    assert len(seen) > 10  # random among the candidates, not the argmax


def test_next_click_goes_negative_when_false_positives_dominate():
    gt = np.zeros((30, 30), np.int8)
    gt[10:12, 10:12] = 1
    pred = np.ones((30, 30), bool)
    np.random.seed(2)
    x, y, positive = IterativeClickSampler().next_click(gt, pred)
    assert not positive and gt[y, x] == 0
    assert IterativeClickSampler().next_click(gt, gt == 1) is None


def test_seeded_sampling_repeats():
    gt = np.zeros((30, 30), np.int8)
    gt[3:25, 3:25] = 1
    pred = np.zeros((30, 30), bool)
    sampler = IterativeClickSampler()
    runs = []
    for _ in range(2):
        np.random.seed(7)
        runs.append([(sampler.num_extra_clicks(0.6),
                      sampler.next_click(gt, pred)) for _ in range(10)])
    assert runs[0] == runs[1]
