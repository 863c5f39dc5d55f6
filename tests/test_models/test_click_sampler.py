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


def test_box_prob_zero_draws_nothing_from_the_generator():
    sampler = IterativeClickSampler()
    np.random.seed(3)
    assert not any(sampler.starts_with_box() for _ in range(10))
    assert np.random.rand() == np.random.RandomState(3).rand()


def test_box_share_and_jittered_boxes():
    gt = np.zeros((100, 120), np.int8)
    gt[20:60, 30:90] = 1  # 60 wide, 40 high: the box (30, 20, 90, 60)
    np.random.seed(0)
    sampler = IterativeClickSampler(box_prob=0.25, box_max_noise=3.0)
    share = np.mean([sampler.starts_with_box() for _ in range(4000)])
    assert abs(share - 0.25) < 0.03
    boxes = np.array([sampler.first_box(gt) for _ in range(4000)])
    offsets = boxes - [30, 20, 90, 60]
    # 10 % of the side (6 and 4 pixels) capped at 3 pixels.
    np.testing.assert_allclose(offsets.std(axis=0), [3, 3, 3, 3], rtol=0.1)
    np.testing.assert_allclose(offsets.mean(axis=0), 0, atol=0.3)
    assert IterativeClickSampler(box_noise=0.0).first_box(gt) == \
        (30.0, 20.0, 90.0, 60.0)


def test_jittered_boxes_stay_inside_the_map_and_not_empty():
    gt = np.zeros((10, 10), np.int8)
    gt[0:2, 8:10] = 1  # a 2 x 2 object in the corner
    sampler = IterativeClickSampler(box_noise=5.0, box_max_noise=50.0)
    np.random.seed(1)
    for _ in range(500):
        x0, y0, x1, y1 = sampler.first_box(gt)
        assert 0 <= x0 < x1 <= 10 and 0 <= y0 < y1 <= 10
        assert x1 - x0 >= 1 and y1 - y0 >= 1


def test_box_settings_are_checked():
    with pytest.raises(ValueError, match='box_prob'):
        IterativeClickSampler(box_prob=1.5)
    with pytest.raises(ValueError, match='box_noise'):
        IterativeClickSampler(box_noise=-0.1)
