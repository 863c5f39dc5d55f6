# Copyright (c) samref contributors. All rights reserved.
import math

import pytest
import torch

from samref.models import NormalizedFocalLoss, normalized_focal_loss


def test_nfl_matches_a_hand_computed_value():
    # Two valid pixels (object with p = 0.5, background with p = 0.5) and
    # one ignored pixel.
    pred = torch.tensor([0.0, 0.0, 3.0]).reshape(1, 1, 1, 3)
    target = torch.tensor([1, 0, -1]).reshape(1, 1, 1, 3)
    # pt = 0.5 for both; focal (1 - pt)^2 = 0.25 each, rescaled to sum to 2
    # valid pixels: 1 each. loss = -0.5 * 1 * log(0.5) per pixel, mean.
    expected = 0.5 * math.log(2)
    assert normalized_focal_loss(pred, target).item() == pytest.approx(
        expected, rel=1e-6)


def test_nfl_normalises_the_focal_term():
    # One easy pixel (p = 0.9 on the object) and one hard (p = 0.1).
    logit = math.log(9)
    pred = torch.tensor([logit, -logit]).reshape(1, 1, 1, 2)
    target = torch.tensor([1, 1]).reshape(1, 1, 1, 2)
    focal = torch.tensor([0.1**2, 0.9**2])
    scale = 2 / focal.sum()
    pixel = -0.5 * focal * scale * torch.log(torch.tensor([0.9, 0.1]))
    assert normalized_focal_loss(pred, target).item() == pytest.approx(
        pixel.mean().item(), rel=1e-5)


def test_error_region_weight():
    pred = torch.tensor([0.0, 0.0]).reshape(1, 1, 1, 2)
    target = torch.tensor([1, 0]).reshape(1, 1, 1, 2)
    region = torch.tensor([True, False]).reshape(1, 1, 1, 2)
    plain = NormalizedFocalLoss()(pred, target, region)
    weighted = NormalizedFocalLoss(error_weight=1.5, loss_weight=2.0)(
        pred, target, region)
    # Pixel losses are equal; the weighted one counts 1.5 + 1 over 2.
    assert weighted.item() == pytest.approx(2.0 * plain.item() * 1.25)


def test_nfl_gradient_is_zero_on_ignored_pixels():
    pred = torch.zeros(1, 1, 2, 2, requires_grad=True)
    target = torch.tensor([[1, -1], [0, -1]]).reshape(1, 1, 2, 2)
    normalized_focal_loss(pred, target).sum().backward()
    assert pred.grad[0, 0, :, 1].abs().sum() == 0
    assert pred.grad[0, 0, 0, 0] < 0 < pred.grad[0, 0, 1, 0]
