# Copyright (c) samref contributors. All rights reserved.
import math

import pytest
import torch

from samref.models import (NormalizedFocalLoss, PrototypeSimilarityLoss,
                           normalized_focal_loss, prototype_similarity_loss)


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
    weighted = NormalizedFocalLoss(
        error_weight=1.5, loss_weight=2.0)(pred, target, region)
    # Pixel losses are equal; the weighted one counts 1.5 + 1 over 2.
    assert weighted.item() == pytest.approx(2.0 * plain.item() * 1.25)


def test_nfl_gradient_is_zero_on_ignored_pixels():
    pred = torch.zeros(1, 1, 2, 2, requires_grad=True)
    target = torch.tensor([[1, -1], [0, -1]]).reshape(1, 1, 2, 2)
    normalized_focal_loss(pred, target).sum().backward()
    assert pred.grad[0, 0, :, 1].abs().sum() == 0
    assert pred.grad[0, 0, 0, 0] < 0 < pred.grad[0, 0, 1, 0]


def test_prototype_similarity_loss_matches_hand_values():
    # Two cells of 2 x 2 pixels: the object fills the left one.
    embeddings = torch.tensor([[3.0, 0.0], [0.0, 2.0]]).T.reshape(1, 2, 1, 2)
    masks = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]]).reshape(1, 1, 2, 4)
    # The prototype is the left cell's direction: similarity 1 and 0,
    # logits 10 * (1 - 0.5) and 10 * (0 - 0.5), targets 1 and 0.
    expected = math.log1p(math.exp(-5.0))
    loss = PrototypeSimilarityLoss(loss_weight=2.0)(embeddings, masks)
    assert loss.item() == pytest.approx(2.0 * expected, rel=1e-5)
    # When no cell is mostly covered, the prototype comes from the cell the
    # object covers most; a quarter-covered cell has the target 0.25:
    # 0.25 * softplus(-5) + 0.75 * softplus(5) = softplus(-5) + 3.75.
    masks[0, 0, :, 1] = 0
    masks[0, 0, 1, 0] = 0
    quarter = prototype_similarity_loss(embeddings, masks)
    assert quarter.item() == pytest.approx(
        (expected + 3.75 + expected) / 2, rel=1e-5)


def test_prototype_similarity_loss_ignores_cells_and_empty_objects():
    torch.manual_seed(0)
    embeddings = torch.randn(2, 8, 4, 4, requires_grad=True)
    masks = torch.zeros(2, 1, 16, 16, dtype=torch.long)
    masks[0, 0, :8, :8] = 1
    masks[0, 0, :, 12:] = -1  # the last column of cells is padding
    # The second sample has no object pixel: it contributes 0, not NaN.
    loss = prototype_similarity_loss(embeddings, masks)
    assert torch.isfinite(loss).all() and loss[1] == 0 and loss[0] > 0
    loss.sum().backward()
    assert embeddings.grad[0, :, :, 3].abs().max() == 0
    assert embeddings.grad[0, :, :, :3].abs().max() > 0
    assert embeddings.grad[1].abs().max() == 0
    # Cosine similarity: the length of an embedding does not matter.
    scaled = embeddings.detach().clone()
    scaled[:, :, 1] *= 7
    torch.testing.assert_close(
        prototype_similarity_loss(scaled, masks), loss.detach())


def test_prototype_similarity_loss_prefers_embeddings_that_group_objects():
    masks = torch.zeros(1, 1, 16, 16, dtype=torch.long)
    masks[0, 0, 4:12, 4:12] = 1
    inside = masks[0, 0, ::4, ::4] == 1
    grouped = torch.zeros(1, 2, 4, 4)
    grouped[0, 0][inside] = 1
    grouped[0, 1][~inside] = 1
    torch.manual_seed(0)
    scattered = torch.randn(1, 2, 4, 4)
    assert prototype_similarity_loss(grouped, masks) < \
        prototype_similarity_loss(scattered, masks)


def test_nfl_eps_guards_the_log_of_confidently_wrong_pixels():
    # p = sigmoid(-100) on an object pixel: pt underflows to about 4e-44,
    # so the log term is log(eps). With one valid pixel the rescaled
    # focal term is 1 and the loss is -alpha * log(pt + eps).
    pred = torch.tensor([-100.0, 0.0]).reshape(1, 1, 1, 2)
    target = torch.tensor([1, -1]).reshape(1, 1, 1, 2)
    float_eps = torch.finfo(torch.float32).eps
    for eps in (float_eps, 1e-12):
        loss = NormalizedFocalLoss(eps=eps)(pred, target)
        assert loss.item() == pytest.approx(-0.5 * math.log(eps), rel=1e-5)
    with pytest.raises(ValueError, match='eps'):
        NormalizedFocalLoss(eps=0.0)
