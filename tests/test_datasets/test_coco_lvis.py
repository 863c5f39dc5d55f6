# Copyright (c) samref contributors. All rights reserved.
"""``COCOLVISDataset`` and the decoding of COCO / LVIS annotations, on the
tiny layout of the ``coco_lvis`` fixture."""
import json
import logging
import re
from collections import Counter

import numpy as np
import pytest
from mmseg.registry import DATASETS
from pycocotools import mask as mask_utils

from samref.datasets import COCOLVISDataset, DatasetLayoutError
from samref.datasets.coco_lvis import polygon_fault, usable_segmentation
from samref.datasets.mask_formats import (ANNOTATION_DECODERS, MaskFileError,
                                          check_mask_format,
                                          decode_coco_segmentation)
from samref.datasets.transforms import LoadObjectMasks


def build_coco_lvis(coco_lvis, **kwargs):
    cfg = dict(
        type='COCOLVISDataset',
        data_root=str(coco_lvis.root),
        lvis_ann_file=coco_lvis.lvis_rel,
        pipeline=[])
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def items_of(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def ann_ids(item):
    return [o['ann_id'] for o in item['objects']]


# ------------------------------------------------------------ the dataset
def test_registered():
    assert DATASETS.get('COCOLVISDataset') is COCOLVISDataset
    assert check_mask_format('coco') == 'coco'
    assert COCOLVISDataset.LAYOUT['mask_format'] in ANNOTATION_DECODERS


def test_items_and_objects(coco_lvis):
    """One item per image with a usable object: COCO images in file order,
    then LVIS-only ones; COCO objects before LVIS ones; crowd and broken
    annotations left out."""
    ds = build_coco_lvis(coco_lvis)
    assert ds.dataset_name == 'COCO+LVIS'
    items = items_of(ds)
    assert [it['img_path'] for it in items] == \
        [str(coco_lvis.img_paths[i]) for i in (1, 2, 3, 4)]
    # image 3 is a COCO val2017 image, found through LVIS's coco_url
    assert '/val2017/' in items[2]['img_path']
    assert [ann_ids(it) for it in items] == [[101, 201, 202, 206],
                                             [104, 105, 107, 108], [203, 205],
                                             [204]]
    for it in items:
        assert it['dataset_name'] == 'COCO+LVIS'
        for obj in it['objects']:
            coco = obj['ann_id'] < 200
            assert obj['source'] == ('coco' if coco else 'lvis')
            assert obj['click_gamma'] == (0.6 if coco else 0.9)
            assert obj['mask_format'] == 'coco'
            assert obj['instance_id'] is None
            assert obj['seg_map_path'] == str(
                coco_lvis.coco_file if coco else coco_lvis.lvis_file)
            img_id = int(it['img_path'][-8:-4])
            assert (obj['height'], obj['width']) == coco_lvis.hw[img_id]
    # the zero-area polygon of 105 is dropped, its good polygon kept
    obj_105 = items[1]['objects'][1]
    assert len(obj_105['segmentation']) == 1
    # RLE is kept as in the file
    assert isinstance(items[1]['objects'][0]['segmentation']['counts'], str)
    assert isinstance(items[1]['objects'][2]['segmentation']['counts'], list)


def test_dropped_annotations_warned_once(coco_lvis, warnings_log):
    build_coco_lvis(coco_lvis)
    messages = [r.getMessage() for r in warnings_log]
    assert len(messages) == 1, messages
    assert warnings_log[0].levelno == logging.WARNING
    msg = messages[0]
    assert str(coco_lvis.coco_file) in msg
    assert re.search(r'\b2 broken\b', msg), msg
    assert '1 polygons with fewer than 3 points' in msg
    assert '1 polygons of zero area' in msg
    assert re.search(r'\b1 annotations\b', msg), msg
    assert 'annotation 103' in msg
    # crowd annotations are a rule, not a fault
    detail = msg.split(str(coco_lvis.coco_file))[-1]
    assert '102' not in detail and '106' not in detail


@pytest.mark.parametrize('segmentation, faults', [
    ([[1, 1, 5, 5]], {
        'polygons with fewer than 3 points': 1
    }),
    ([[0, 0, 5, 5, 10, 10]], {
        'polygons of zero area': 1
    }),
    ([[0, 0, 4, 0, 4, 4, 0]], {
        'malformed polygons': 1
    }),
    ([], {
        'missing or empty segmentations': 1
    }),
    (None, {
        'missing or empty segmentations': 1
    }),
    (dict(counts=[12], size=[3, 4]), {
        'empty RLEs': 1
    }),
    (dict(size=[3, 4]), {
        'malformed segmentations': 1
    }),
])
def test_unusable_segmentations(segmentation, faults):
    found = Counter()
    assert usable_segmentation(segmentation, found) is None
    assert dict(found) == faults


def test_usable_parts_kept():
    found = Counter()
    good = [0, 0, 4, 0, 4, 4]
    assert usable_segmentation([good, [1, 1, 5, 5], good], found) == \
        [good, good]
    assert dict(found) == {'polygons with fewer than 3 points': 1}
    assert polygon_fault(good) is None
    rle = dict(counts=[5, 2, 5], size=[3, 4])
    assert usable_segmentation(rle, found) is rle


def test_lvis_only_and_coco_only(coco_lvis):
    lvis = items_of(build_coco_lvis(coco_lvis, coco_ann_file=None))
    assert [it['img_path'] for it in lvis] == \
        [str(coco_lvis.img_paths[i]) for i in (1, 3, 4)]
    assert [ann_ids(it) for it in lvis] == [[201, 202, 206], [203, 205], [204]]
    coco = items_of(build_coco_lvis(coco_lvis, lvis_ann_file=None))
    assert [ann_ids(it) for it in coco] == [[101], [104, 105, 107, 108]]
    with pytest.raises(ValueError, match='coco_ann_file'):
        build_coco_lvis(coco_lvis, coco_ann_file=None, lvis_ann_file=None)


def test_click_gammas_and_img_dirs(coco_lvis):
    (coco_lvis.root / 'val2017').rename(coco_lvis.root / 'images_val')
    ds = build_coco_lvis(
        coco_lvis,
        coco_click_gamma=0.5,
        lvis_click_gamma=0.75,
        img_dirs=dict(train2017='train2017', val2017='images_val'))
    items = items_of(ds)
    assert items[2]['img_path'] == str(coco_lvis.root / 'images_val' /
                                       '000000000003.jpg')
    assert [o['click_gamma'] for o in items[0]['objects']] == \
        [0.5, 0.75, 0.75, 0.75]


def test_skip_image_ids(coco_lvis, layout):
    layout.text('coco/invalid.txt', ['2', '', '3'])
    ds = build_coco_lvis(coco_lvis, skip_image_ids='invalid.txt')
    assert [ann_ids(it) for it in items_of(ds)] == [[101, 201, 202, 206],
                                                    [204]]
    layout.text('coco/invalid.txt', ['2', '000000000003.jpg'])
    with pytest.raises(ValueError, match='000000000003.jpg'):
        build_coco_lvis(coco_lvis, skip_image_ids='invalid.txt')


@pytest.mark.parametrize('setting', ['coco_ann_file', 'lvis_ann_file'])
def test_missing_annotation_file(coco_lvis, setting):
    with pytest.raises(DatasetLayoutError, match='absent.json'):
        build_coco_lvis(coco_lvis, **{setting: 'annotations/absent.json'})


def test_missing_image_folder(coco_lvis):
    (coco_lvis.root / 'val2017' / '000000000003.jpg').unlink()
    (coco_lvis.root / 'val2017').rmdir()
    with pytest.raises(DatasetLayoutError) as info:
        build_coco_lvis(coco_lvis)
    assert str(coco_lvis.root / 'val2017') in str(info.value)


def test_folder_not_in_img_dirs(coco_lvis):
    with pytest.raises(DatasetLayoutError) as info:
        build_coco_lvis(coco_lvis, img_dirs=dict(train2017='train2017'))
    msg = str(info.value)
    assert 'val2017' in msg and str(coco_lvis.lvis_file) in msg


def test_image_without_coco_url(coco_lvis):
    lvis = json.loads(coco_lvis.lvis_file.read_text())
    del lvis['images'][1]['coco_url']
    coco_lvis.lvis_file.write_text(json.dumps(lvis))
    with pytest.raises(DatasetLayoutError) as info:
        build_coco_lvis(coco_lvis)
    msg = str(info.value)
    assert 'image 3' in msg and 'coco_url' in msg
    assert str(coco_lvis.lvis_file) in msg


def test_unreadable_annotation_file(coco_lvis):
    coco_lvis.coco_file.write_text('{"images": [')
    with pytest.raises(ValueError, match=str(coco_lvis.coco_file)):
        build_coco_lvis(coco_lvis)


def test_no_usable_object(coco_lvis, layout):
    layout.text('coco/invalid.txt', ['1', '2', '3', '4'])
    with pytest.raises(DatasetLayoutError, match='no image with a usable'):
        build_coco_lvis(coco_lvis, skip_image_ids='invalid.txt')


# --------------------------------------------------------------- decoding
def test_decode_polygons_and_rle():
    hw = (10, 12)
    expected = np.zeros(hw, np.int8)
    expected[2:4, 2:8] = 1  # an L ...
    expected[4:8, 2:4] = 1
    expected[7:9, 9:11] = 1  # ... and a square, merged
    polygons = [[2, 2, 8, 2, 8, 4, 4, 4, 4, 8, 2, 8],
                [9, 7, 11, 7, 11, 9, 9, 9]]
    out = decode_coco_segmentation(polygons, *hw)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, expected)
    # uncompressed RLE: column-major runs, starting with background
    column = np.zeros(hw, np.int8)
    column[3:6, 1] = 1
    rle = dict(counts=[13, 3, 104], size=list(hw))
    np.testing.assert_array_equal(
        decode_coco_segmentation(rle, 99, 99), column)
    # compressed RLE, bytes as pycocotools gives and str as json stores
    compressed = mask_utils.encode(np.asfortranarray(expected, np.uint8))
    np.testing.assert_array_equal(
        decode_coco_segmentation(compressed, *hw), expected)
    compressed['counts'] = compressed['counts'].decode()
    np.testing.assert_array_equal(
        decode_coco_segmentation(compressed, *hw), expected)


@pytest.mark.parametrize('polygons', [[], [[1, 1, 5, 5]], [[0, 0, 4, 0, 4]]])
def test_decode_broken_polygons_raises(polygons):
    """pycocotools would read 4 numbers as a box and decode odd ones to
    nothing."""
    with pytest.raises(ValueError, match='3 points'):
        decode_coco_segmentation(polygons, 10, 10)


def test_load_object_masks_decodes_annotations(coco_lvis):
    ds = build_coco_lvis(coco_lvis)
    for i, item in enumerate(items_of(ds)):
        img_id = int(item['img_path'][-8:-4])
        results = dict(item, ori_shape=coco_lvis.hw[img_id])
        masks = LoadObjectMasks()(results)['gt_object_masks']
        assert masks.dtype == np.int8
        expected = np.stack([coco_lvis.masks[k] for k in ann_ids(item)])
        np.testing.assert_array_equal(masks, expected)


def coco_object(segmentation, hw=(10, 12), ann_id=7):
    return dict(
        segmentation=segmentation,
        height=hw[0],
        width=hw[1],
        ann_id=ann_id,
        source='coco',
        click_gamma=0.6,
        mask_format='coco',
        instance_id=None,
        seg_map_path='ann/instances.json')


def test_load_object_masks_annotation_size_mismatch():
    """The annotation file's image size must be the image's size."""
    results = dict(
        img_path='img.jpg',
        ori_shape=(10, 13),
        objects=[coco_object([[1, 1, 5, 1, 5, 5]])])
    with pytest.raises(MaskFileError) as info:
        LoadObjectMasks()(results)
    msg = str(info.value)
    assert 'annotation 7 of ann/instances.json' in msg
    assert '12x10' in msg and '13x10' in msg and 'img.jpg' in msg


def test_load_object_masks_annotation_without_pixel():
    """A sub-pixel polygon decodes to nothing: an error naming it."""
    results = dict(
        img_path='img.jpg',
        ori_shape=(10, 12),
        objects=[coco_object([[1.1, 1.1, 1.2, 1.1, 1.2, 1.2]], ann_id=9)])
    with pytest.raises(MaskFileError, match='no object pixel') as info:
        LoadObjectMasks()(results)
    assert 'annotation 9 of ann/instances.json' in str(info.value)


def test_load_object_masks_undecodable_annotation():
    results = dict(
        img_path='img.jpg',
        ori_shape=(10, 12),
        objects=[coco_object(dict(counts='garbage!', size=[10, 12]))])
    with pytest.raises(MaskFileError) as info:
        LoadObjectMasks()(results)
    assert 'annotation 7 of ann/instances.json' in str(info.value)
