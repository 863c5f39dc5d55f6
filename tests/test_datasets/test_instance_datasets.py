# Copyright (c) samref contributors. All rights reserved.
"""SBD and PASCAL VOC: images named by ``val.txt``, one instance-id map
each, one sample per instance (PROTOCOL.md "Samples")."""
import numpy as np
import pytest
from scipy.io import savemat

from samref.datasets import PascalVOCInstanceDataset, SBDDataset

H, W = 9, 12


def instance_map(ids, boundary=False):
    """A 9 x 12 map with one horizontal stripe per id of ``ids``; with
    ``boundary`` a VOC-style 255 line under every stripe."""
    out = np.zeros((H, W), np.uint8)
    for k, i in enumerate(ids):
        out[2 * k, 1 + k:10 + k] = i
        if boundary:
            out[2 * k + 1, 1 + k:10 + k] = 255
    return out


def voc_expected(raw, ids):
    """PROTOCOL.md: the instance is 1, 255 is ignore, other ids are 0."""
    out = np.zeros((len(ids), *raw.shape), np.int8)
    for k, i in enumerate(ids):
        out[k][raw == i] = 1
        out[k][raw == 255] = -1
    return out


def sbd_expected(raw, ids):
    """PROTOCOL.md: every non-zero id is one object; no ignore."""
    return np.stack([(raw == i).astype(np.int8) for i in ids])


# ------------------------------------------------------------------- SBD
@pytest.fixture
def sbd_root(layout):
    """``img/*.jpg``, ``inst/*.mat``, ``val.txt``; ``2008_000003`` is not
    listed and must not be read."""
    maps = {
        '2008_000009': instance_map([1, 2, 3]),
        '2008_000002': instance_map([1]),
        '2008_000003': instance_map([4, 5]),
    }
    for name, ids in maps.items():
        layout.image(f'img/{name}.jpg')
        layout.sbd_mat(f'inst/{name}.mat', ids)
    layout.text('val.txt', ['2008_000009', '', '2008_000002  '])
    return layout.root, maps


def test_sbd_items(build, sbd_root):
    root, _ = sbd_root
    ds = build('SBDDataset', root)
    assert ds.dataset_name == 'SBD'
    assert len(ds) == 2  # val.txt order, blank lines skipped
    first, second = (ds.get_data_info(i) for i in range(2))
    assert first['img_path'] == str(root / 'img' / '2008_000009.jpg')
    assert second['img_path'] == str(root / 'img' / '2008_000002.jpg')
    assert [o['instance_id'] for o in first['objects']] == [1, 2, 3]
    assert [o['instance_id'] for o in second['objects']] == [1]
    for item, name in zip((first, second), ('2008_000009', '2008_000002')):
        assert item['subset'] is None
        assert item['dataset_name'] == 'SBD'
        for obj in item['objects']:
            assert obj['seg_map_path'] == str(root / 'inst' / f'{name}.mat')
            assert obj['mask_format'] == 'sbd_instance'
    # one sample per instance
    assert sum(len(ds.get_data_info(i)['objects'])
               for i in range(len(ds))) == 4


def test_sbd_pipeline(build, sbd_root, check_packed):
    root, maps = sbd_root
    ds = build('SBDDataset', root)
    check_packed(ds[0], sbd_expected(maps['2008_000009'], [1, 2, 3]))
    check_packed(ds[1], sbd_expected(maps['2008_000002'], [1]))


def test_sbd_other_list_file(build, sbd_root, layout):
    root, maps = sbd_root
    layout.text('train.txt', ['2008_000003'])
    ds = build('SBDDataset', root, ann_file='train.txt')
    assert len(ds) == 1
    assert [o['instance_id'] for o in ds.get_data_info(0)['objects']] == [4, 5]


def test_ignore_ids():
    """Only VOC has an ignore id (its boundary band); SBD has none."""
    assert SBDDataset.IGNORE_ID is None
    assert PascalVOCInstanceDataset.IGNORE_ID == 255


def test_sbd_every_nonzero_id_is_a_sample(build, layout, check_packed):
    """PROTOCOL.md "Samples": id 255 is an ordinary SBD instance."""
    raw = instance_map([1, 255, 128])
    layout.image('img/x.jpg')
    layout.sbd_mat('inst/x.mat', raw)
    layout.text('val.txt', ['x'])
    ds = build('SBDDataset', layout.root)
    assert [o['instance_id']
            for o in ds.get_data_info(0)['objects']] == [1, 128, 255]
    sample = check_packed(ds[0], sbd_expected(raw, [1, 128, 255]))
    assert sample.gt_object_masks.min() == 0  # nothing ignored


def test_sbd_ids_above_255(build, layout, check_packed):
    """``GTinst.Segmentation`` need not be uint8."""
    raw = instance_map([1, 2]).astype(np.uint16)
    raw[raw == 2] = 300
    layout.image('img/x.jpg')
    savemat(
        str(layout.path('inst/x.mat')), {
            'GTinst': {
                'Segmentation': raw,
                'Categories': np.full((2, 1), 15, np.uint8),
            }
        })
    layout.text('val.txt', ['x'])
    ds = build('SBDDataset', layout.root)
    assert [o['instance_id']
            for o in ds.get_data_info(0)['objects']] == [1, 300]
    check_packed(ds[0], sbd_expected(raw, [1, 300]))


# ------------------------------------------------------------ PASCAL VOC
@pytest.fixture
def voc_root(layout):
    """``JPEGImages``, palette ``SegmentationObject`` maps with a 255
    boundary, ``ImageSets/Segmentation/val.txt``."""
    maps = {
        '2007_000129': instance_map([1, 2, 3], boundary=True),
        '2007_000033': instance_map([1], boundary=True),
        '2007_000042': instance_map([1, 2], boundary=True),  # not listed
    }
    for name, raw in maps.items():
        layout.image(f'JPEGImages/{name}.jpg')
        layout.palette_mask(f'SegmentationObject/{name}.png', raw)
    layout.text('ImageSets/Segmentation/val.txt',
                ['2007_000129', '2007_000033'])
    return layout.root, maps


def test_voc_items(build, voc_root):
    root, _ = voc_root
    ds = build('PascalVOCInstanceDataset', root)
    assert ds.dataset_name == 'PascalVOC'
    assert len(ds) == 2
    first, second = (ds.get_data_info(i) for i in range(2))
    assert first['img_path'] == str(root / 'JPEGImages' / '2007_000129.jpg')
    assert second['img_path'] == str(root / 'JPEGImages' / '2007_000033.jpg')
    # 255 (the boundary) is no instance
    assert [o['instance_id'] for o in first['objects']] == [1, 2, 3]
    assert [o['instance_id'] for o in second['objects']] == [1]
    assert first['objects'][0]['seg_map_path'] == str(
        root / 'SegmentationObject' / '2007_000129.png')
    assert {o['mask_format'] for o in first['objects']} == {'voc_instance'}
    assert first['subset'] is None


def test_voc_pipeline(build, voc_root, check_packed):
    root, maps = voc_root
    ds = build('PascalVOCInstanceDataset', root)
    sample = check_packed(ds[0], voc_expected(maps['2007_000129'], [1, 2, 3]))
    gt = sample.gt_object_masks.numpy()
    # Every object sees the same 255 pixels as ignore, the others as 0.
    assert ((gt == -1).sum(axis=(1, 2)) == 9 * 3).all()
    assert ((gt == 1).sum(axis=(1, 2)) == 9).all()
    check_packed(ds[1], voc_expected(maps['2007_000033'], [1]))


def test_voc_ids_need_not_be_contiguous(build, layout, check_packed):
    raw = instance_map([2, 7], boundary=True)
    layout.image('JPEGImages/a.jpg')
    layout.palette_mask('SegmentationObject/a.png', raw)
    layout.text('ImageSets/Segmentation/val.txt', ['a'])
    ds = build('PascalVOCInstanceDataset', layout.root)
    assert [o['instance_id'] for o in ds.get_data_info(0)['objects']] == [2, 7]
    check_packed(ds[0], voc_expected(raw, [2, 7]))
