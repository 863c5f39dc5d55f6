# Copyright (c) samref contributors. All rights reserved.
"""The training side of the data: ``SampleObject`` (with the LVIS overlap
filter), ``ObjectMaskToSegMap``, ``SkipBadSample``, the full training
pipeline through mmseg's transforms, and the training datasets (COCO+LVIS,
HQSeg-44K train, SBD train, folders of image + mask pairs)."""
import json
from collections import Counter

import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmseg.registry import DATASETS, TRANSFORMS

from samref.datasets import (HQSEG_TRAIN_PARTS, DatasetLayoutError,
                             InteractiveSegDataset)
from samref.datasets.mask_formats import MaskFileError
from samref.datasets.transforms import (LoadObjectMasks, ObjectMaskToSegMap,
                                        SampleObject, SkipBadSample, sampling)
from testing_utils import CONFIG_DIR

H, W = 9, 12
LOAD = [
    dict(type='LoadImageWithPixelLimit'),
    dict(type='SampleObject'),
    dict(type='LoadObjectMasks'),
    dict(type='ObjectMaskToSegMap'),
]
# The metainfo that the training configs pack.
META_KEYS = Config.fromfile(
    str(CONFIG_DIR /
        '_base_/datasets/train_pipeline.py')).train_pipeline[-1]['meta_keys']


def train_pipeline(*extra):
    """The training pipeline of the configs, ``extra`` transforms before
    packing."""
    return [
        dict(type='SkipBadSample', transforms=[dict(t) for t in LOAD]),
        dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        *extra,
        dict(type='PackSegInputs', meta_keys=META_KEYS),
    ]


def build_coco_lvis(coco_lvis, pipeline=(), **kwargs):
    return DATASETS.build(
        dict(
            type='COCOLVISDataset',
            data_root=str(coco_lvis.root),
            lvis_ann_file=coco_lvis.lvis_rel,
            pipeline=list(pipeline),
            **kwargs))


def resized(mask, hw):
    """``mask`` resized with nearest neighbours to ``hw``, as mmseg's
    ``Resize`` does for seg maps."""
    return cv2.resize(
        np.asarray(mask, np.uint8), (hw[1], hw[0]),
        interpolation=cv2.INTER_NEAREST)


def long_side_1024(hw):
    scale = 1024 / max(hw)
    return int(hw[0] * scale + 0.5), int(hw[1] * scale + 0.5)


def test_registered():
    for cls in (SampleObject, ObjectMaskToSegMap, SkipBadSample):
        assert TRANSFORMS.get(cls.__name__) is cls


# ------------------------------------------------------------ SampleObject
def draw(transform, item, n, seed=0):
    """Ann ids and click gammas of ``n`` choices of ``transform``."""
    np.random.seed(seed)
    chosen = Counter()
    gammas = {}
    for _ in range(n):
        out = transform(dict(item, objects=list(item['objects'])))
        assert len(out['objects']) == 1
        ann_id = out['objects'][0]['ann_id']
        chosen[ann_id] += 1
        gammas[ann_id] = out['click_gamma']
    return chosen, gammas


def test_sample_object_lvis_overlap_filter(coco_lvis):
    """201 lies inside COCO's 101: never chosen; 206 has exactly half of
    its area in 101 (not more): kept; 202 is disjoint. The choice among
    the rest is uniform."""
    item = build_coco_lvis(coco_lvis).get_data_info(0)
    chosen, gammas = draw(SampleObject(), item, 300)
    assert set(chosen) == {101, 202, 206}
    assert all(70 <= n <= 130 for n in chosen.values()), chosen
    assert gammas == {101: 0.6, 202: 0.9, 206: 0.9}
    # the threshold is the setting
    chosen, _ = draw(SampleObject(max_overlap=1.0), item, 300)
    assert set(chosen) == {101, 201, 202, 206}
    chosen, _ = draw(SampleObject(max_overlap=0.4), item, 300)
    assert set(chosen) == {101, 202}


def test_sample_object_lvis_after_lvis(coco_lvis):
    """Without COCO objects, LVIS objects are compared with the LVIS
    objects taken before them: 205 lies inside 203."""
    item = build_coco_lvis(coco_lvis).get_data_info(2)
    chosen, gammas = draw(SampleObject(), item, 50)
    assert chosen == {203: 50}
    assert gammas == {203: 0.9}


def test_sample_object_same_seed_same_choice(coco_lvis):
    item = build_coco_lvis(coco_lvis).get_data_info(1)
    first, _ = draw(SampleObject(), item, 40, seed=3)
    again, _ = draw(SampleObject(), item, 40, seed=3)
    assert first == again
    assert set(first) == {104, 105, 107, 108}  # COCO only: no filter


@pytest.fixture
def count_decodes(monkeypatch):
    """The ann ids ``SampleObject`` decodes."""
    calls = []
    load = sampling.load_object_mask

    def counting_load(obj, raw):
        calls.append(obj['ann_id'])
        return load(obj, raw)

    monkeypatch.setattr(sampling, 'load_object_mask', counting_load)
    return calls


def test_sample_object_decodes_only_for_the_filter(coco_lvis, count_decodes):
    ds = build_coco_lvis(coco_lvis)
    transform = SampleObject()
    for i in (1, 3):  # COCO objects only; one LVIS object alone
        transform(ds.get_data_info(i))
    assert count_decodes == []
    transform(ds.get_data_info(0))
    assert count_decodes == [101, 201, 202, 206]


def test_sample_object_size_mismatch(coco_lvis):
    item = build_coco_lvis(coco_lvis).get_data_info(0)
    item['objects'][2]['height'] = 21
    with pytest.raises(MaskFileError) as info:
        SampleObject()(item)
    msg = str(info.value)
    assert f'annotation 202 of {coco_lvis.lvis_file}' in msg
    assert f'annotation 101 of {coco_lvis.coco_file}' in msg
    assert '30x21' in msg and '30x20' in msg


def test_sample_object_default_gamma_and_no_object():
    objects = [dict(seg_map_path='a.png', mask_format='grey')]
    out = SampleObject()(dict(img_path='x.jpg', objects=objects))
    assert out['click_gamma'] == 0.6
    assert out['source'] is None
    out = SampleObject(default_click_gamma=0.8)(
        dict(img_path='x.jpg', objects=objects))
    assert out['click_gamma'] == 0.8
    with pytest.raises(MaskFileError, match='x.jpg'):
        SampleObject()(dict(img_path='x.jpg', objects=[]))


# ------------------------------------------------------ ObjectMaskToSegMap
def test_object_mask_to_seg_map():
    mask = np.array([[[0, 1, -1], [1, 1, 0]]], np.int8)
    out = ObjectMaskToSegMap()(dict(gt_object_masks=mask))
    assert out['gt_seg_map'].dtype == np.uint8
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 1, 255], [1, 1, 0]])
    assert out['seg_fields'] == ['gt_seg_map']
    # the unresized, unflipped mask does not linger
    assert 'gt_object_masks' not in out
    out = ObjectMaskToSegMap()(
        dict(gt_object_masks=mask, seg_fields=['gt_depth_map']))
    assert out['seg_fields'] == ['gt_depth_map', 'gt_seg_map']


def test_object_mask_to_seg_map_needs_one_object():
    """Several objects mean SampleObject is missing: a pipeline error that
    SkipBadSample lets through."""
    results = dict(
        img_path='x.jpg', gt_object_masks=np.ones((2, 3, 4), np.int8))
    with pytest.raises(RuntimeError, match='SampleObject'):
        ObjectMaskToSegMap()(dict(results))
    with pytest.raises(RuntimeError):
        SkipBadSample([ObjectMaskToSegMap()])(dict(results))


# ------------------------------------------------- the training pipeline
def test_training_pipeline_coco_lvis(coco_lvis):
    """Long side 1024, gt_sem_seg the resized chosen object (flipped with
    the image), its source and the click_gamma of its source."""
    ds = build_coco_lvis(coco_lvis, train_pipeline())
    candidates = [[101, 202, 206], [104, 105, 107, 108], [203], [204]]
    flips = set()
    np.random.seed(1)
    for i, img_id in enumerate((1, 2, 3, 4)):
        hw = coco_lvis.hw[img_id]
        new_hw = long_side_1024(hw)
        for _ in range(4):
            out = ds[i]
            inputs, sample = out['inputs'], out['data_samples']
            meta = sample.metainfo
            assert meta['img_path'] == str(coco_lvis.img_paths[img_id])
            assert tuple(inputs.shape) == (3, *new_hw)
            assert max(inputs.shape[1:]) == 1024
            assert tuple(meta['img_shape']) == new_hw
            assert tuple(meta['ori_shape']) == hw
            gt = sample.gt_sem_seg.data.numpy()
            assert gt.shape == (1, *new_hw)
            assert set(np.unique(gt)) <= {0, 1}
            flip = meta['flip']
            flips.add(flip)
            matches = [
                k for k in candidates[i] if np.array_equal(
                    gt[0],
                    resized(coco_lvis.masks[k], new_hw)[:, ::-1]
                    if flip else resized(coco_lvis.masks[k], new_hw))
            ]
            assert len(matches) == 1
            assert meta['click_gamma'] == (0.6 if matches[0] < 200 else 0.9)
            assert meta['source'] == ('coco' if matches[0] < 200 else 'lvis')
            # the image's dark half moves with the flip
            img = inputs.float().mean(0)
            left = img[:, :new_hw[1] // 4].mean()
            right = img[:, -new_hw[1] // 4:].mean()
            assert (left > right) == flip
    assert flips == {True, False}


@pytest.fixture
def grabcut_pairs(layout):
    """A folder of image + mask pairs in the GrabCut layout: object 255,
    unsure band 128 (ignored)."""
    raw = np.zeros((H, W), np.uint8)
    raw[2:7, 3:9] = 255
    raw[2, 3:9] = 128
    layout.image('img/a.png')
    layout.mask('gt/a.png', raw)
    return raw


def build_pairs(layout, pipeline, **kwargs):
    return InteractiveSegDataset(
        data_root=str(layout.root),
        data_prefix=dict(img_path='img', seg_map_path='gt'),
        mask_format='grabcut',
        pipeline=pipeline,
        **kwargs)


def test_training_pipeline_ignore_and_pad(layout, grabcut_pairs):
    """Ignored pixels become 255; mmcv's Pad pads the map with 255."""
    expected = np.zeros((H, W), np.uint8)
    expected[grabcut_pairs == 255] = 1
    expected[grabcut_pairs == 128] = 255
    new_hw = long_side_1024((H, W))
    ds = build_pairs(
        layout,
        train_pipeline(dict(type='Pad', size=(1024, 1024))),
        test_mode=False)
    np.random.seed(0)
    flips = set()
    for _ in range(6):
        out = ds[0]
        gt = out['data_samples'].gt_sem_seg.data.numpy()[0]
        meta = out['data_samples'].metainfo
        assert gt.shape == (1024, 1024)
        assert tuple(out['inputs'].shape) == (3, 1024, 1024)
        want = resized(expected, new_hw)
        if meta['flip']:
            want = want[:, ::-1]
        flips.add(meta['flip'])
        np.testing.assert_array_equal(gt[:new_hw[0], :new_hw[1]], want)
        assert (gt[new_hw[0]:] == 255).all()
        assert (out['inputs'][:, new_hw[0]:] == 0).all()
        assert set(np.unique(gt)) == {0, 1, 255}
        assert meta['click_gamma'] == 0.6
    assert flips == {True, False}


# ----------------------------------------------------------- bad samples
@pytest.fixture
def skip_log(warnings_log):
    """``(count before, records)``: the process-wide count of skipped
    samples before the test, and the warnings logged."""
    return SkipBadSample.num_skipped, warnings_log


def check_skipped(skip_log, n, *names):
    before, records = skip_log
    assert SkipBadSample.num_skipped == before + n
    skipped = [
        r.getMessage() for r in records
        if r.getMessage().startswith('bad sample skipped')
    ]
    assert len(skipped) == n
    msg = skipped[-1]
    for name in names:
        assert str(name) in msg, msg
    assert f'{before + n} bad samples skipped so far in this process' in msg
    return msg


def test_skip_corrupt_image(layout, skip_log):
    bad = layout.garbage('img/bad.jpg')
    transform = SkipBadSample([dict(type='LoadImageWithPixelLimit')])
    assert transform(dict(img_path=str(bad))) is None
    check_skipped(skip_log, 1, bad)
    assert transform(dict(img_path=str(layout.root / 'none.jpg'))) is None
    check_skipped(skip_log, 2, layout.root / 'none.jpg')
    good = layout.image('img/good.png')
    out = transform(dict(img_path=str(good)))
    assert out['img'].shape == (H, W, 3)
    assert SkipBadSample.num_skipped == skip_log[0] + 2


def test_skip_mask_of_another_size(layout, skip_log):
    img = layout.image('img/a.png')
    mask = layout.mask('gt/a.png', np.full((H + 1, W), 255))
    results = dict(
        img_path=str(img),
        objects=[
            dict(seg_map_path=str(mask), mask_format='grey', instance_id=None)
        ])
    assert SkipBadSample(LOAD)(results) is None
    msg = check_skipped(skip_log, 1, img, mask, 'MaskFileError')
    assert f'{W}x{H + 1}' in msg


def test_skip_annotation_of_another_size(coco_lvis, skip_log):
    """The annotation file says image 4 is 21 high; the image is 20."""
    lvis = json.loads(coco_lvis.lvis_file.read_text())
    lvis['images'][2]['height'] = 21
    coco_lvis.lvis_file.write_text(json.dumps(lvis))
    item = build_coco_lvis(coco_lvis).get_data_info(3)
    assert SkipBadSample(LOAD)(item) is None
    check_skipped(skip_log, 1, coco_lvis.img_paths[4],
                  f'annotation 204 of {coco_lvis.lvis_file}')


def test_programming_errors_propagate(layout, skip_log):
    img = str(layout.image('img/a.png'))

    def raise_(error):

        def transform(results):
            raise error

        return transform

    for error in (KeyError('objects'), TypeError('bug'), KeyboardInterrupt()):
        transform = SkipBadSample(
            [dict(type='LoadImageWithPixelLimit'),
             raise_(error)])
        with pytest.raises(type(error)):
            transform(dict(img_path=img))
    with pytest.raises(KeyError):  # LoadObjectMasks without objects
        SkipBadSample(LOAD[2:])(dict(img_path=img, ori_shape=(H, W)))
    assert SkipBadSample.num_skipped == skip_log[0]
    assert skip_log[1] == []


def test_dataset_draws_another_sample(layout, grabcut_pairs, skip_log):
    """In training mode mmengine replaces a skipped sample with a random
    other one; in test mode a skipped sample is an error."""
    layout.image('img/c.png', bgr=(1, 2, 3))
    layout.mask('gt/c.png', grabcut_pairs)
    bad = layout.garbage('img/b.png')
    layout.mask('gt/b.png', grabcut_pairs)
    ds = build_pairs(layout, train_pipeline(), test_mode=False)
    assert ds.get_data_info(1)['img_path'] == str(bad)
    np.random.seed(0)
    for n in range(1, 4):
        out = ds[1]
        assert out['data_samples'].img_path != str(bad)
        assert out['data_samples'].gt_sem_seg.data.shape[1:] == \
            long_side_1024((H, W))
        assert SkipBadSample.num_skipped >= skip_log[0] + n
    check_skipped(skip_log, SkipBadSample.num_skipped - skip_log[0], bad)
    ds = build_pairs(layout, train_pipeline(), test_mode=True)
    with pytest.raises(Exception, match='None'):
        ds[1]


def test_all_bad_gives_up_after_max_refetch(layout, grabcut_pairs):
    layout.garbage('img/a.png')
    ds = build_pairs(layout, train_pipeline(), max_refetch=3)
    with pytest.raises(Exception, match='after 3'):
        ds[0]


# ---------------------------------------------------- HQSeg-44K train
TRAIN_PARTS = {
    'DIS5K-TR': ('DIS5K/DIS-TR/im', 'DIS5K/DIS-TR/gt'),
    'ThinObject5K-TR': ('thin_object_detection/ThinObject5K/images_train',
                        'thin_object_detection/ThinObject5K/masks_train'),
    'FSS-1000': ('cascade_psp/fss_all', ) * 2,
    'ECSSD': ('cascade_psp/ecssd', ) * 2,
    'MSRA10K': ('cascade_psp/MSRA_10K', ) * 2,
    'DUT-OMRON': ('cascade_psp/DUT-OMRON', ) * 2,
}


def write_hqseg_train(layout):
    """Two images per part; part k's masks have their block at column
    k."""
    masks = {}
    for k, (part, (img_dir, mask_dir)) in enumerate(TRAIN_PARTS.items()):
        for stem in ('x1', 'x2'):
            raw = np.zeros((H, W), np.uint8)
            raw[2:6, k:k + 4] = 255
            raw[0, 0] = 100  # below 128: background
            layout.image(f'{img_dir}/{stem}.jpg')
            masks[part, stem] = layout.mask(f'{mask_dir}/{stem}.png', raw)
    return masks


def test_hqseg_train_parts(build, layout, check_packed):
    masks = write_hqseg_train(layout)
    assert {
        part: (prefix['img_path'], prefix['seg_map_path'])
        for part, prefix in HQSEG_TRAIN_PARTS.items()
    } == TRAIN_PARTS
    ds = build('HQSeg44KDataset', layout.root, split='train')
    assert len(ds) == 12
    items = [ds.get_data_info(i) for i in range(len(ds))]
    assert [it['subset'] for it in items] == \
        [p for p in TRAIN_PARTS for _ in range(2)]
    for it, ((part, stem), mask) in zip(items, masks.items()):
        img_dir = TRAIN_PARTS[part][0]
        assert it['img_path'] == str(layout.root / img_dir / f'{stem}.jpg')
        assert [o['seg_map_path'] for o in it['objects']] == [str(mask)]
        assert it['objects'][0]['mask_format'] == 'grey'
    for i in (0, 11):  # a two-folder part and a same-folder part
        k = i // 2
        expected = np.zeros((1, H, W), np.int8)
        expected[0, 2:6, k:k + 4] = 1
        check_packed(ds[i], expected)


def test_hqseg_train_single_part_and_errors(build, layout):
    write_hqseg_train(layout)
    ds = build('HQSeg44KDataset', layout.root, split='train', parts='ECSSD')
    assert [ds.get_data_info(i)['subset'] for i in range(len(ds))] == \
        ['ECSSD', 'ECSSD']
    with pytest.raises(KeyError) as info:
        build('HQSeg44KDataset', layout.root, split='train', parts='COIFT')
    assert 'FSS-1000' in str(info.value)
    with pytest.raises(ValueError, match='split'):
        build('HQSeg44KDataset', layout.root, split='test')


def test_hqseg_same_folder_part_needs_its_suffixes(build, layout):
    """Without the part's own suffixes, masks would be taken as images."""
    write_hqseg_train(layout)
    prefixes = dict(
        ECSSD=dict(
            img_path='cascade_psp/ecssd', seg_map_path='cascade_psp/ecssd'))
    with pytest.raises(DatasetLayoutError, match='two files named x1'):
        build('HQSeg44KDataset', layout.root, part_prefixes=prefixes)


# ------------------------------------------------------------ SBD train
def test_sbd_train_with_sample_object(layout):
    ids = np.zeros((H, W), np.uint8)
    for k, i in enumerate((1, 2, 3)):
        ids[2 * k, 1 + k:10 + k] = i
    layout.image('img/2008_000001.jpg')
    layout.sbd_mat('inst/2008_000001.mat', ids)
    layout.text('train.txt', ['2008_000001'])
    ds = DATASETS.build(
        dict(
            type='SBDDataset',
            data_root=str(layout.root),
            ann_file='train.txt',
            test_mode=False,
            pipeline=[
                dict(type='SkipBadSample', transforms=LOAD),
                dict(type='PackSegInputs', meta_keys=META_KEYS)
            ]))
    assert len(ds) == 1
    np.random.seed(0)
    chosen = Counter()
    for _ in range(60):
        sample = ds[0]['data_samples']
        gt = sample.gt_sem_seg.data.numpy()[0]
        assert sample.click_gamma == 0.6
        (instance, ) = np.unique(ids[gt == 1])
        np.testing.assert_array_equal(gt, ids == instance)
        chosen[int(instance)] += 1
    assert set(chosen) == {1, 2, 3}
    # one object loaded per sample
    results = SampleObject()(dict(ds.get_data_info(0)))
    results['ori_shape'] = (H, W)
    assert LoadObjectMasks()(results)['gt_object_masks'].shape == (1, H, W)


def test_compose_from_configs_and_objects():
    """SkipBadSample takes configs and objects, as mmcv's Compose does."""
    wrapper = SkipBadSample([dict(type='SampleObject'), SampleObject(0.2)])
    assert isinstance(wrapper.transforms, Compose)
    assert [type(t) for t in wrapper.transforms.transforms] == \
        [SampleObject, SampleObject]
    assert wrapper.transforms.transforms[1].max_overlap == 0.2
