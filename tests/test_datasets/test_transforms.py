# Copyright (c) samref contributors. All rights reserved.
"""``LoadObjectMasks`` and ``PackInteractiveInputs`` on their own."""
import numpy as np
import pytest
import torch
from mmseg.registry import TRANSFORMS

from samref.datasets.mask_formats import MaskFileError
from samref.datasets.transforms import (LoadObjectMasks, PackInteractiveInputs,
                                        loading)

H, W = 9, 12


def obj(path, fmt, instance_id=None):
    return dict(
        seg_map_path=str(path), mask_format=fmt, instance_id=instance_id)


def test_registered():
    assert TRANSFORMS.get('LoadObjectMasks') is LoadObjectMasks
    assert TRANSFORMS.get('PackInteractiveInputs') is PackInteractiveInputs


def test_load_object_masks_stacks_objects_in_order(layout):
    grey = np.zeros((H, W), np.uint8)
    grey[1:4, 2:6] = 255
    grey[0, 0] = 128
    ids = np.zeros((H, W), np.uint8)
    ids[5, :] = 1
    ids[6, :] = 2
    ids[7, :] = 255
    results = dict(
        img_path='img.jpg',
        ori_shape=(H, W),
        objects=[
            obj(layout.mask('g.png', grey), 'grabcut'),
            obj(layout.palette_mask('i.png', ids), 'voc_instance', 2),
            obj(layout.mask('g.png', grey), 'grey'),
            obj(layout.palette_mask('i.png', ids), 'sbd_instance', 255),
        ])
    out = LoadObjectMasks()(results)
    masks = out['gt_object_masks']
    assert masks.dtype == np.int8
    assert masks.shape == (4, H, W)
    expected = np.zeros((4, H, W), np.int8)
    expected[0][grey == 255] = 1
    expected[0][grey == 128] = -1
    expected[1][ids == 2] = 1
    expected[1][ids == 255] = -1
    expected[2][grey > 127] = 1
    expected[3][ids == 255] = 1
    np.testing.assert_array_equal(masks, expected)


def test_load_object_masks_checks_size(layout):
    path = layout.mask('m.png', np.zeros((W, H)))  # transposed
    results = dict(
        img_path='the_image.jpg',
        ori_shape=(H, W),
        objects=[obj(path, 'nonzero')])
    with pytest.raises(MaskFileError) as info:
        LoadObjectMasks()(results)
    msg = str(info.value)
    assert str(path) in msg and 'the_image.jpg' in msg
    assert f'{H}x{W}' in msg and f'{W}x{H}' in msg


@pytest.fixture
def count_reads(monkeypatch):
    """The paths ``LoadObjectMasks`` reads, in order."""
    calls = []
    read = loading.read_raw_mask

    def counting_read(path):
        calls.append(path)
        return read(path)

    monkeypatch.setattr(loading, 'read_raw_mask', counting_read)
    return calls


def test_load_object_masks_reads_instance_map_once(layout, count_reads):
    """A file shared by several objects is read once per image."""
    ids = np.zeros((H, W), np.uint8)
    ids[1, :] = 1
    ids[2, :] = 2
    ids[3, :] = 3
    ids[4, :] = 255
    path = layout.palette_mask('i.png', ids)
    results = dict(
        img_path='img.jpg',
        ori_shape=(H, W),
        objects=[obj(path, 'voc_instance', i) for i in (3, 1, 2)])
    masks = LoadObjectMasks()(results)['gt_object_masks']
    assert count_reads == [str(path)]
    # decoded per object, from the one raw map
    for k, i in enumerate((3, 1, 2)):
        np.testing.assert_array_equal(masks[k] == 1, ids == i)
        np.testing.assert_array_equal(masks[k] == -1, ids == 255)


def test_load_object_masks_reads_sbd_mat_once(layout, count_reads):
    ids = np.zeros((H, W), np.uint8)
    ids[1, :] = 1
    ids[2, :] = 255
    path = layout.sbd_mat('inst/x.mat', ids)
    results = dict(
        img_path='img.jpg',
        ori_shape=(H, W),
        objects=[obj(path, 'sbd_instance', i) for i in (1, 255)])
    masks = LoadObjectMasks()(results)['gt_object_masks']
    assert count_reads == [str(path)]
    expected = np.stack([ids == 1, ids == 255]).astype(np.int8)
    np.testing.assert_array_equal(masks, expected)


def test_load_object_masks_cache_is_per_image(layout, count_reads):
    """Two files each read once; a second image reads its files again
    (no cache across images, whose masks may share no file)."""
    a = np.zeros((H, W), np.uint8)
    a[1:3, 1:3] = 255
    b = np.zeros((H, W), np.uint8)
    b[4:6, 4:9] = 1
    path_a = layout.mask('a.png', a)
    path_b = layout.mask('b.png', b)
    results = dict(
        img_path='img.jpg',
        ori_shape=(H, W),
        objects=[
            obj(path_a, 'grey'),
            obj(path_b, 'focuscut'),
            obj(path_a, 'nonzero'),
            obj(path_b, 'nonzero')
        ])
    transform = LoadObjectMasks()
    masks = transform(dict(results))['gt_object_masks']
    assert count_reads == [str(path_a), str(path_b)]
    np.testing.assert_array_equal(masks[0], masks[2])
    np.testing.assert_array_equal(masks[1], masks[3])
    np.testing.assert_array_equal(masks[0], (a > 0).astype(np.int8))
    np.testing.assert_array_equal(masks[1], (b > 0).astype(np.int8))
    # a changed file is seen by the next image
    path_a.unlink()
    with pytest.raises(MaskFileError, match='a.png'):
        transform(dict(results))


@pytest.mark.parametrize('fmt, values', [
    ('grey', 0),
    ('grey', 1),
    ('nonzero', 0),
    ('grabcut', 128),
    ('focuscut', 255),
    ('focuscut', 2),
])
def test_load_object_masks_no_object_pixel(layout, fmt, values):
    """A mask that decodes to no object pixel (all zero, all ignore, or a
    0/1 mask read as grey) is an error naming the file."""
    good = np.zeros((H, W), np.uint8)
    good[2:4, 2:4] = 255
    empty = np.full((H, W), values, np.uint8)
    empty[0, 0] = 0
    path = layout.mask('empty.png', empty)
    results = dict(
        img_path='img.jpg',
        ori_shape=(H, W),
        objects=[obj(layout.mask('good.png', good), 'grey'),
                 obj(path, fmt)])
    with pytest.raises(MaskFileError, match='no object pixel') as info:
        LoadObjectMasks()(results)
    assert str(path) in str(info.value)
    assert 'good.png' not in str(info.value)


def test_load_object_masks_missing_instance_id(layout):
    """An instance id absent from the map names the file and the id."""
    ids = np.zeros((H, W), np.uint8)
    ids[1, :] = 1
    path = layout.palette_mask('i.png', ids)
    results = dict(
        img_path='img.jpg',
        ori_shape=(H, W),
        objects=[obj(path, 'voc_instance', 1),
                 obj(path, 'voc_instance', 7)])
    with pytest.raises(MaskFileError, match='no object pixel') as info:
        LoadObjectMasks()(results)
    assert str(path) in str(info.value)
    assert 'instance 7' in str(info.value)


def test_pack_interactive_inputs():
    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    masks = np.zeros((2, 4, 6), np.int8)
    masks[1, 0, 0] = -1
    results = dict(
        img=img,
        gt_object_masks=masks,
        img_path='x.jpg',
        ori_shape=(4, 6),
        img_shape=(5, 7),
        scale_factor=(7 / 6, 5 / 4),
        dataset_name='D',
        subset='S',
        objects=[{}, {}],
        unrelated='dropped')
    out = PackInteractiveInputs()(results)
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.dtype == torch.uint8
    assert inputs.is_contiguous()
    np.testing.assert_array_equal(inputs.numpy(), img.transpose(2, 0, 1))
    np.testing.assert_array_equal(sample.gt_object_masks.numpy(), masks)
    meta = sample.metainfo
    # The object records (polygons for COCO) stay out of the metainfo.
    assert set(meta) == {
        'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'dataset_name',
        'subset'
    }
    assert meta['subset'] == 'S' and meta['ori_shape'] == (4, 6)


def test_pack_grey_image_without_masks():
    out = PackInteractiveInputs(meta_keys=('img_path', ))(
        dict(img=np.zeros((3, 4), np.uint8), img_path='g.png'))
    assert tuple(out['inputs'].shape) == (1, 3, 4)
    sample = out['data_samples']
    assert 'gt_object_masks' not in sample
    assert sample.metainfo == dict(img_path='g.png')
