# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest
import torch

from samref.apis import InteractivePredictor
from testing_utils import build_from_config


@pytest.fixture(scope='module')
def predictor():
    torch.manual_seed(0)
    model = build_from_config('demo/samref_tiny_256_stage2.py').eval()
    predictor = InteractivePredictor(model)
    # 128 x 100 (W x H): the input frame is twice as large, 256 / 128.
    predictor.set_image(
        np.random.default_rng(0).integers(0, 256, (100, 128, 3), np.uint8))
    return predictor


def test_a_box_starts_the_object_and_goes_with_every_click(
        predictor, monkeypatch):
    session = predictor.new_session()
    received = []
    interact = session.model.interact

    def record(features, points, labels, previous=None, boxes=None):
        received.append((points.clone(), boxes))
        return interact(features, points, labels, previous, boxes)

    monkeypatch.setattr(session.model, 'interact', record)
    first = session.add_box(10, 20, 60, 70)
    assert first.clicks == [] and first.click is None
    assert first.box == (10.0, 20.0, 60.0, 70.0) == session.box
    assert first.mask.shape == (100, 128)
    second = session.add_click(30, 40, True)
    assert second.box == first.box and second.clicks == [(30.0, 40.0, True)]
    # The input frame is 2x the original (128 -> 256 pixels wide).
    assert received[0][0].shape == (1, 0, 2)
    for _, boxes in received:
        assert boxes.tolist() == [[20.0, 40.0, 120.0, 140.0]]
    assert received[1][0].tolist() == [[[60.0, 80.0]]]
    # Undo takes the click back, then the box.
    assert session.undo() is session.last and session.box == first.box
    assert session.undo() is None and session.box is None
    assert session.add_click(30, 40, True).box is None
    assert received[-1][1] is None


def test_box_after_clicks_keeps_them_and_feeds_the_mask_back(predictor):
    session = predictor.new_session()
    clicked = session.add_click(30, 40, True)
    boxed = session.add_box(5, 5, 100, 90)
    assert boxed.clicks == clicked.clicks and boxed.box == (5, 5, 100, 90)
    again = predictor.new_session()
    again.add_click(30, 40, True)
    # Without the fed-back mask the same prompts give another result.
    fresh = again.predict(again.clicks, None, (5, 5, 100, 90))
    assert not torch.equal(fresh.interaction.logits, boxed.interaction.logits)


@pytest.mark.parametrize('box, message', [
    ((10, 20, 5, 30), 'is not a box inside'),
    ((10, 20, 200, 30), 'is not a box inside'),
    ((float('nan'), 0, 5, 5), 'non-finite'),
    ((1, 2, 3), r'a box is \(x0, y0, x1, y1\)'),
])
def test_bad_boxes_are_refused(predictor, box, message):
    session = predictor.new_session()
    with pytest.raises(ValueError, match=message):
        session.add_box(
            *box) if len(box) == 4 else session.predict([], None, box)
    assert session.last is None
    with pytest.raises(ValueError, match='at least one click'):
        session.predict([], None)
