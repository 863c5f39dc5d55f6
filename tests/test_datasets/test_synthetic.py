# Copyright (c) samref contributors. All rights reserved.
import cv2
import numpy as np
import pytest

from samref.datasets import make_shapes_dataset
from samref.datasets.synthetic import SHAPES, draw_shape


def test_shapes_dataset_is_deterministic_and_reused(tmp_path):
    first = make_shapes_dataset(str(tmp_path / 'a'), 4, seed=5)
    second = make_shapes_dataset(str(tmp_path / 'b'), 4, seed=5)
    for name in ('img/00003.jpg', 'gt/00003.png'):
        a = cv2.imread(f'{first}/{name}', cv2.IMREAD_UNCHANGED)
        b = cv2.imread(f'{second}/{name}', cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(a, b)
    mask = cv2.imread(f'{first}/gt/00000.png', cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) == {0, 255} and mask.shape == (240, 320)
    stamp = (tmp_path / 'a' / 'img' / '00000.jpg').stat().st_mtime_ns
    make_shapes_dataset(first, 4, seed=5)  # same settings: not rewritten
    assert (tmp_path / 'a' / 'img' / '00000.jpg').stat().st_mtime_ns == \
        stamp


@pytest.mark.parametrize('kind', SHAPES)
def test_every_shape_has_thin_parts_or_holes(kind):
    mask = draw_shape(kind, (240, 320), np.random.default_rng(0))
    assert mask.any()
    # Thin structures or holes: an opening by a 7x7 disk removes a part.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    filled = mask.copy()
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, contours, -1, 1, -1)
    assert opened.sum() < mask.sum() or filled.sum() > mask.sum()


def test_unknown_shape_is_named():
    with pytest.raises(KeyError, match='star'):
        draw_shape('star', (10, 10), np.random.default_rng(0))
