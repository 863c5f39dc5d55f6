# Copyright (c) samref contributors. All rights reserved.
import os
from collections import defaultdict

import cv2
import numpy as np
import pytest

from samref.datasets import make_shapes_dataset
from samref.datasets.synthetic import SHAPES, draw_sample, draw_shape


def test_shapes_dataset_is_deterministic_and_reused(tmp_path):
    first = make_shapes_dataset(str(tmp_path / 'a'), 4, seed=5)
    second = make_shapes_dataset(str(tmp_path / 'b'), 4, seed=5)
    names = sorted(os.listdir(f'{first}/gt'))
    assert names == sorted(os.listdir(f'{second}/gt'))
    for name in names:
        stem = name[:-4]
        for path in (f'img/{stem}.jpg', f'gt/{stem}.png'):
            a = cv2.imread(f'{first}/{path}', cv2.IMREAD_UNCHANGED)
            b = cv2.imread(f'{second}/{path}', cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(a, b)
    mask = cv2.imread(f'{first}/gt/{names[0]}', cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) == {0, 255} and mask.shape == (240, 320)
    stamp = (tmp_path / 'a' / 'gt' / names[0]).stat().st_mtime_ns
    make_shapes_dataset(first, 4, seed=5)  # same settings: not rewritten
    assert (tmp_path / 'a' / 'gt' / names[0]).stat().st_mtime_ns == stamp
    # Other settings: the folder is rewritten, with no file left over.
    make_shapes_dataset(first, 2, seed=6)
    assert all(
        name.startswith(('00000_', '00001_'))
        for name in os.listdir(f'{first}/gt'))
    assert sorted(os.listdir(f'{first}/img')) == sorted(
        n[:-4] + '.jpg' for n in os.listdir(f'{first}/gt'))


def test_each_picture_holds_several_disjoint_objects(tmp_path):
    root = make_shapes_dataset(str(tmp_path / 'shapes'), 8, seed=0)
    pictures = defaultdict(list)
    for name in sorted(os.listdir(f'{root}/gt')):
        pictures[name.split('_')[0]].append(name[:-4])
    assert len(pictures) == 8
    # Several targets per picture: only the click tells which one is meant.
    assert np.mean([len(stems) for stems in pictures.values()]) >= 2
    for stems in pictures.values():
        masks = [
            cv2.imread(f'{root}/gt/{stem}.png', cv2.IMREAD_UNCHANGED) > 0
            for stem in stems
        ]
        assert all(mask.sum() >= 300 for mask in masks)
        assert np.sum(masks, axis=0).max() == 1  # no pixel in two objects
        images = [cv2.imread(f'{root}/img/{stem}.jpg') for stem in stems]
        assert all((image == images[0]).all() for image in images)


def test_annotated_objects_stand_out_from_their_surroundings():
    rng = np.random.default_rng(3)
    for _ in range(20):
        picture, instances = draw_sample((240, 320), rng)
        assert instances.max() >= 1
        # Annotated objects differ from their surroundings in colour.
        for k in range(1, instances.max() + 1):
            inside = instances == k
            ring = cv2.dilate(
                inside.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
            ring &= instances == 0
            colour_in = picture[inside].mean(axis=0)
            colour_out = picture[ring].mean(axis=0)
            assert np.abs(colour_in - colour_out).max() > 20


@pytest.mark.parametrize('kind', [k for k in SHAPES if k != 'blob'])
def test_every_shape_but_the_blob_has_thin_parts_or_holes(kind):
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


def test_blobs_are_solid():
    mask = draw_shape('blob', (240, 320), np.random.default_rng(0))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    assert opened.sum() > 0.9 * mask.sum() > 500


def test_unknown_shape_is_named():
    with pytest.raises(KeyError, match='star'):
        draw_shape('star', (10, 10), np.random.default_rng(0))


def test_the_benchmarks_object_is_the_ring_with_a_bar():
    from samref.apis import synthetic_object
    from samref.datasets import draw_ring_with_bar
    ring = draw_ring_with_bar((64, 64), seed=3, extent=(40, 64))
    assert not ring[40:].any()  # nothing below the image
    _, labels = cv2.connectedComponents((~ring).astype(np.uint8))
    assert labels.max() >= 2  # a hole: background the border does not reach
    gt = synthetic_object(64, seed=3, image_size=(40, 64))
    assert (gt[40:] == -1).all()
    np.testing.assert_array_equal(gt[:40] == 1, ring[:40])
