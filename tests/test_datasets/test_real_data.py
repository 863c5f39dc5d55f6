# Copyright (c) samref contributors. All rights reserved.
"""The real GrabCut and COCO-MVal copies in ``../shared/data``.

They exist on development machines, not necessarily in CI; the tests skip
with the missing folder named when they are absent.
"""
from pathlib import Path

import numpy as np
import pytest
from mmseg.registry import DATASETS
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2].parent / 'shared' / 'data'
GRABCUT = SHARED_DATA / 'GrabCut'
COCO_MVAL = SHARED_DATA / 'COCO_MVal'

needs_grabcut = pytest.mark.skipif(
    not GRABCUT.is_dir(), reason=f'real GrabCut data not found at {GRABCUT}')
needs_coco_mval = pytest.mark.skipif(
    not COCO_MVAL.is_dir(),
    reason=f'real COCO-MVal data not found at {COCO_MVAL}')

# Without Resize: masks stay at the original size either way, and reading
# 50 images is faster this way.
LOAD = [
    dict(type='LoadImageWithPixelLimit'),
    dict(type='LoadObjectMasks'),
    dict(type='PackInteractiveInputs'),
]


@needs_grabcut
def test_grabcut_real():
    ds = DATASETS.build(
        dict(type='GrabCutDataset', data_root=str(GRABCUT), pipeline=LOAD))
    assert len(ds) == 50
    assert ds.dataset_name == 'GrabCut'
    with_ignore = 0
    for i in range(len(ds)):
        item = ds.get_data_info(i)
        assert len(item['objects']) == 1
        assert item['objects'][0]['mask_format'] == 'grabcut'
        out = ds[i]
        h, w = out['inputs'].shape[1:]
        gt = out['data_samples'].gt_object_masks.numpy()
        assert gt.shape == (1, h, w)
        raw = np.array(Image.open(item['objects'][0]['seg_map_path']))
        expected = np.where(raw > 128, 1, 0)
        expected[raw == 128] = -1
        np.testing.assert_array_equal(gt[0], expected)
        assert (gt == 1).any(), item['img_path']
        assert (gt == 0).any(), item['img_path']
        with_ignore += bool((gt == -1).any())
    # 42 of the 50 masks carry the 128 band
    assert with_ignore >= 1


@needs_coco_mval
def test_coco_mval_real(build, check_packed):
    ds = build('COCOMValDataset', COCO_MVAL)
    assert len(ds) == 800
    assert ds.dataset_name == 'COCO-MVal'
    items = [ds.get_data_info(i) for i in range(len(ds))]
    assert all(len(it['objects']) == 1 for it in items)
    assert all(it['objects'][0]['mask_format'] == 'nonzero' for it in items)
    # several objects of one COCO image are separate files and samples
    assert len({it['img_path'] for it in items}) == 800
    for i in range(20):
        out = ds[i]
        gt = out['data_samples'].gt_object_masks.numpy()
        hw = tuple(out['data_samples'].metainfo['ori_shape'])
        assert gt.shape == (1, *hw)
        assert set(np.unique(gt)) == {0, 1}, items[i]['img_path']
        raw = np.array(Image.open(items[i]['objects'][0]['seg_map_path']))
        assert set(np.unique(raw)) <= {0, 255}  # README: 0 / 255 masks
        check_packed(out, (raw > 0)[None], hw=hw)
