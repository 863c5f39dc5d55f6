# Copyright (c) samref contributors. All rights reserved.
"""Datasets of one image folder and one mask folder paired by file stem,
and the FocusCut layout, on tiny layouts written into ``tmp_path``."""
import logging
import re

import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmseg.registry import DATASETS

from samref.datasets import InteractiveSegDataset
from samref.datasets.mask_formats import MASK_DECODERS, MaskFileError

H, W = 9, 12


def raw_mask(edge_values, object_value=255, seed=0):
    """A 9 x 12 mask: a block of ``object_value``, a band of 128 on its top
    row, and ``edge_values`` along the first image row."""
    raw = np.zeros((H, W), np.uint8)
    raw[3:8, 2 + seed:9 + seed] = object_value
    raw[3, 2 + seed:9 + seed] = 128
    raw[0, :len(edge_values)] = edge_values
    return raw


def grabcut_expected(raw):
    """PROTOCOL.md: 128 is ignore, > 128 is object."""
    out = np.zeros(raw.shape, np.int8)
    out[raw > 128] = 1
    out[raw == 128] = -1
    return out


def grey_expected(raw):
    """PROTOCOL.md: > 127 is object on 0..255 grey masks, no ignore."""
    return (raw > 127).astype(np.int8)


def nonzero_expected(raw):
    """PROTOCOL.md: > 0 is object (DAVIS, COCO-MVal), no ignore."""
    return (raw > 0).astype(np.int8)


def items_of(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def check_item(item, img_path, mask_paths, name, fmt, subset=None):
    assert item['img_path'] == str(img_path)
    assert item['dataset_name'] == name
    assert item['subset'] == subset
    assert [o['seg_map_path'] for o in item['objects']] == \
        [str(p) for p in mask_paths]
    assert all(o['mask_format'] == fmt for o in item['objects'])
    assert all(o['instance_id'] is None for o in item['objects'])


@pytest.fixture
def warnings_log():
    """Messages of WARNING and above sent to the current mmengine logger
    (where ``print_log(..., logger='current')`` writes)."""
    records = []

    class Collect(logging.Handler):

        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Collect(level=logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# --------------------------------------------------------------- GrabCut
@pytest.fixture
def grabcut_root(layout):
    """Three images: .jpg, .bmp and upper-case .JPG (as in the real set),
    one portrait."""
    raws = {
        'a': raw_mask([0, 1, 127, 128, 129, 200, 254, 255]),
        'b': raw_mask([128, 128, 0], seed=1),
        'c': np.pad(raw_mask([255, 129, 128]), ((0, 3), (0, 0)))[:, :9],
    }
    layout.image('data_GT/a.jpg', bgr=(10, 20, 200))
    layout.image('data_GT/b.bmp', bgr=(200, 30, 40))
    layout.image('data_GT/c.JPG', hw=(12, 9), bgr=(90, 90, 90))
    for stem, raw in raws.items():
        layout.mask(f'boundary_GT/{stem}.bmp', raw)
    return layout.root, raws


def test_grabcut_items(build, grabcut_root):
    root, _ = grabcut_root
    ds = build('GrabCutDataset', root)
    assert len(ds) == 3
    assert ds.dataset_name == 'GrabCut'
    for item, (stem, ext) in zip(
            items_of(ds), [('a', 'jpg'), ('b', 'bmp'), ('c', 'JPG')]):
        check_item(item, root / 'data_GT' / f'{stem}.{ext}',
                   [root / 'boundary_GT' / f'{stem}.bmp'], 'GrabCut',
                   'grabcut')
        assert len(item['objects']) == 1


def test_grabcut_pipeline(build, grabcut_root, check_packed):
    root, raws = grabcut_root
    ds = build('GrabCutDataset', root)
    colours = [(10, 20, 200), (200, 30, 40), (90, 90, 90)]
    for i, (stem, raw) in enumerate(raws.items()):
        expected = grabcut_expected(raw)[None]
        sample = check_packed(ds[i], expected, hw=raw.shape, bgr=colours[i])
        assert sample.metainfo['dataset_name'] == 'GrabCut'
        assert sample.metainfo['img_path'].endswith(stem + '.' +
                                                    ['jpg', 'bmp', 'JPG'][i])
    # The edge values of the first row, spelt out.
    gt = ds[0]['data_samples'].gt_object_masks.numpy()
    np.testing.assert_array_equal(gt[0, 0, :8], [0, 0, 0, -1, 1, 1, 1, 1])
    assert (gt == -1).sum() == 1 + 7  # one edge pixel and the 128 band


def test_grabcut_mask_format_override(build, grabcut_root):
    """``mask_format`` replaces the layout's decoder."""
    root, raws = grabcut_root
    ds = build('GrabCutDataset', root, mask_format='grey')
    assert ds.mask_format == 'grey'
    assert ds.get_data_info(0)['objects'][0]['mask_format'] == 'grey'
    gt = ds[0]['data_samples'].gt_object_masks.numpy()[0]
    np.testing.assert_array_equal(gt, grey_expected(raws['a']))
    assert (gt == 1).sum() > (grabcut_expected(raws['a']) == 1).sum()


def test_dataset_name_and_subset_settings(build, grabcut_root):
    root, _ = grabcut_root
    ds = build('GrabCutDataset', root, dataset_name='GC', subset='val')
    assert ds.dataset_name == 'GC'
    assert ds.metainfo['dataset_name'] == 'GC'
    item = ds.get_data_info(1)
    assert (item['dataset_name'], item['subset']) == ('GC', 'val')
    meta = ds[1]['data_samples'].metainfo
    assert (meta['dataset_name'], meta['subset']) == ('GC', 'val')


# -------------------------------------------------------------- Berkeley
def test_berkeley(build, layout, check_packed):
    raws = {
        'b1': raw_mask([128, 129, 127]),
        'b2': raw_mask([255, 0, 128], seed=2),
    }
    for stem, raw in raws.items():
        layout.image(f'images/{stem}.jpg')
        layout.mask(f'masks/{stem}.png', raw)
    ds = build('BerkeleyDataset', layout.root)
    assert len(ds) == 2
    assert ds.dataset_name == 'Berkeley'
    for i, (stem, raw) in enumerate(raws.items()):
        check_item(
            ds.get_data_info(i), layout.root / 'images' / f'{stem}.jpg',
            [layout.root / 'masks' / f'{stem}.png'], 'Berkeley', 'grabcut')
        check_packed(ds[i], grabcut_expected(raw)[None], bgr=(16, 128, 240))


# ----------------------------------------------------- DAVIS, COCO-MVal
def test_davis(build, layout, check_packed):
    """PROTOCOL.md: > 0 is object, whatever the object value; no ignore."""
    grey = raw_mask([0, 1, 127, 128, 254, 255])
    ones = (raw_mask([]) > 0).astype(np.uint8)
    ones[0, 0] = 1
    k_mask = np.where(raw_mask([38], seed=1) > 0, 38, 0).astype(np.uint8)
    for stem, raw in (('f1', grey), ('f2', ones), ('f3', k_mask)):
        layout.image(f'img/{stem}.jpg')
        layout.mask(f'gt/{stem}.png', raw)
    ds = build('DAVISDataset', layout.root)
    assert len(ds) == 3
    assert ds.dataset_name == 'DAVIS'
    check_item(
        ds.get_data_info(0), layout.root / 'img' / 'f1.jpg',
        [layout.root / 'gt' / 'f1.png'], 'DAVIS', 'nonzero')
    check_packed(ds[0], nonzero_expected(grey)[None])
    gt = ds[0]['data_samples'].gt_object_masks.numpy()
    np.testing.assert_array_equal(gt[0, 0, :6], [0, 1, 1, 1, 1, 1])
    assert gt.min() == 0  # 128 is no ignore band here
    check_packed(ds[1], ones[None].astype(np.int8))
    check_packed(ds[2], (k_mask == 38)[None].astype(np.int8))


def test_coco_mval(build, layout, check_packed):
    raws = [raw_mask([255, 0]), raw_mask([0, 255], seed=1)]
    raws = [np.where(r > 0, 255, 0).astype(np.uint8) for r in raws]
    names = ['airplane00_000000281693', 'airplane01_000000281693']
    for name, raw in zip(names, raws):
        layout.image(f'img/{name}.jpg')
        layout.mask(f'gt/{name}.png', raw)
    ds = build('COCOMValDataset', layout.root)
    assert len(ds) == 2
    assert ds.dataset_name == 'COCO-MVal'
    for i, (name, raw) in enumerate(zip(names, raws)):
        check_item(
            ds.get_data_info(i), layout.root / 'img' / f'{name}.jpg',
            [layout.root / 'gt' / f'{name}.png'], 'COCO-MVal', 'nonzero')
        check_packed(ds[i], (raw == 255).astype(np.int8)[None])


# ------------------------------------------------------------- HQSeg-44K
# Folders of the four parts as HQ-SAM distributes them (PROTOCOL.md gives
# the innermost names).
HQSEG = {
    'DIS-VD': ('DIS5K/DIS-VD/im', 'DIS5K/DIS-VD/gt', ['d1', 'd2']),
    'ThinObject5K': ('thin_object_detection/ThinObject5K/images_test',
                     'thin_object_detection/ThinObject5K/masks_test', ['t1']),
    'COIFT': ('thin_object_detection/COIFT/images',
              'thin_object_detection/COIFT/masks', ['c1', 'c2']),
    'HRSOD': ('thin_object_detection/HRSOD/images',
              'thin_object_detection/HRSOD/masks_max255', ['h1']),
}


def write_hqseg(layout, parts=tuple(HQSEG)):
    raws = {}
    for k, part in enumerate(parts):
        img_dir, mask_dir, stems = HQSEG[part]
        for j, stem in enumerate(stems):
            raw = raw_mask([0, 1, 127, 128, 254, 255][j:], seed=k % 3)
            layout.image(f'{img_dir}/{stem}.jpg')
            layout.mask(f'{mask_dir}/{stem}.png', raw)
            raws[stem] = (part, raw)
    return raws


def test_hqseg_all_parts(build, layout, check_packed):
    raws = write_hqseg(layout)
    ds = build('HQSeg44KDataset', layout.root)
    assert len(ds) == 6
    assert ds.dataset_name == 'HQSeg-44K'
    items = items_of(ds)
    assert [it['subset'] for it in items] == [
        'DIS-VD', 'DIS-VD', 'ThinObject5K', 'COIFT', 'COIFT', 'HRSOD'
    ]
    for i, (item, (stem, (part, raw))) in enumerate(zip(items, raws.items())):
        img_dir, mask_dir, _ = HQSEG[part]
        check_item(
            item,
            layout.root / img_dir / f'{stem}.jpg',
            [layout.root / mask_dir / f'{stem}.png'],
            'HQSeg-44K',
            'grey',
            subset=part)
        sample = check_packed(ds[i], grey_expected(raw)[None])
        assert sample.metainfo['subset'] == part


def test_hqseg_single_part(build, layout, check_packed):
    """One part reads only its own folders; the others may be absent."""
    raws = write_hqseg(layout, parts=['COIFT'])
    ds = build('HQSeg44KDataset', layout.root, parts=['COIFT'])
    assert len(ds) == 2
    assert ds.dataset_name == 'HQSeg-44K'
    for i, (stem, (_, raw)) in enumerate(raws.items()):
        item = ds.get_data_info(i)
        assert item['subset'] == 'COIFT'
        assert item['img_path'] == str(layout.root / HQSEG['COIFT'][0] /
                                       f'{stem}.jpg')
        check_packed(ds[i], grey_expected(raw)[None])


def test_hqseg_parts_keep_given_order(build, layout):
    write_hqseg(layout)
    ds = build('HQSeg44KDataset', layout.root, parts=['HRSOD', 'DIS-VD'])
    assert ds.parts == ['HRSOD', 'DIS-VD']
    assert [it['subset'] for it in items_of(ds)] == \
        ['HRSOD', 'DIS-VD', 'DIS-VD']


@pytest.mark.parametrize('parts', ['COIFT', ('COIFT', )])
def test_hqseg_part_as_string_or_tuple(build, layout, parts):
    """``parts='COIFT'`` is one part, not the letters of its name."""
    write_hqseg(layout, parts=['COIFT'])
    ds = build('HQSeg44KDataset', layout.root, parts=parts)
    assert ds.parts == ['COIFT']
    assert len(ds) == 2
    assert {it['subset'] for it in items_of(ds)} == {'COIFT'}


def test_hqseg_default_parts_are_the_four_val_parts(build, layout):
    write_hqseg(layout)
    ds = build('HQSeg44KDataset', layout.root)
    assert ds.parts == ['DIS-VD', 'ThinObject5K', 'COIFT', 'HRSOD']


def test_hqseg_part_prefixes(build, layout, check_packed):
    """Parts laid out elsewhere; ``parts`` defaults to the given ones."""
    raw = raw_mask([0, 127, 128])
    layout.image('mine/im/x.jpg')
    layout.mask('mine/gt/x.png', raw)
    ds = build(
        'HQSeg44KDataset',
        layout.root,
        part_prefixes=dict(
            Mine=dict(img_path='mine/im', seg_map_path='mine/gt')))
    assert ds.parts == ['Mine']
    item = ds.get_data_info(0)
    assert item['subset'] == 'Mine'
    assert item['img_path'] == str(layout.root / 'mine' / 'im' / 'x.jpg')
    check_packed(ds[0], grey_expected(raw)[None])


def test_hqseg_0_1_mask_has_no_object(build, layout):
    """> 127 on a 0/1 mask finds no object pixel: an error, not an empty
    sample scored as IoU 0 or 1."""
    write_hqseg(layout, parts=['COIFT'])
    zero_one = (raw_mask([]) > 0).astype(np.uint8)
    mask = layout.mask(f'{HQSEG["COIFT"][1]}/c2.png', zero_one)
    ds = build('HQSeg44KDataset', layout.root, parts='COIFT')
    ds[0]
    with pytest.raises(MaskFileError, match='no object pixel') as info:
        ds[1]
    assert str(mask) in str(info.value)


# -------------------------------------------------------------- FocusCut
@pytest.fixture
def focuscut_root(layout):
    """``<DS>/img``, ``<DS>/gt/<stem>#00k.png``, ``<DS>/list/val.txt``;
    ``c`` is not listed, ``b#002`` is not listed either."""
    root = layout.root / 'DAVIS'
    raws = {
        'a#001': raw_mask([0, 1, 2, 128, 254, 255], object_value=1),
        'a#002': raw_mask([255, 1], object_value=1, seed=1),
        'b#001': raw_mask([1, 0, 255], object_value=1, seed=2),
        'b#002': raw_mask([], object_value=1),
        'c#001': raw_mask([], object_value=1),
    }
    for stem in 'abc':
        layout.image(f'DAVIS/img/{stem}.jpg')
    for name, raw in raws.items():
        layout.mask(f'DAVIS/gt/{name}.png', raw)
    layout.text('DAVIS/list/val.txt', ['b#001', 'a'])
    return root, raws


def focuscut_expected(raw):
    """PROTOCOL.md: 1 is object, 255 is ignore, anything else background."""
    out = (raw == 1).astype(np.int8)
    out[raw == 255] = -1
    return out


def test_focuscut_items(build, focuscut_root):
    root, _ = focuscut_root
    ds = build('FocusCutDataset', root)
    assert ds.dataset_name == 'DAVIS'  # the folder's name
    assert len(ds) == 2  # b then a, in list order; c is not listed
    b, a = items_of(ds)
    check_item(b, root / 'img' / 'b.jpg', [root / 'gt' / 'b#001.png'], 'DAVIS',
               'focuscut')
    check_item(a, root / 'img' / 'a.jpg',
               [root / 'gt' / 'a#001.png', root / 'gt' / 'a#002.png'], 'DAVIS',
               'focuscut')
    assert sum(len(it['objects']) for it in (a, b)) == 3


def test_focuscut_pipeline(build, focuscut_root, check_packed):
    root, raws = focuscut_root
    ds = build('FocusCutDataset', root)
    check_packed(ds[0], focuscut_expected(raws['b#001'])[None])
    sample = check_packed(
        ds[1],
        np.stack([
            focuscut_expected(raws['a#001']),
            focuscut_expected(raws['a#002'])
        ]))
    np.testing.assert_array_equal(sample.gt_object_masks[0, 0, :6].numpy(),
                                  [0, 1, 0, 0, 0, -1])


def test_focuscut_groups_object_lines_by_image(build, focuscut_root, layout):
    root, _ = focuscut_root
    layout.text('DAVIS/list/val.txt', ['a#002', 'b#002', 'a#001'])
    ds = build('FocusCutDataset', root, dataset_name='DAVIS-FC')
    assert ds.dataset_name == 'DAVIS-FC'
    a, b = items_of(ds)
    assert [o['seg_map_path'] for o in a['objects']] == \
        [str(root / 'gt' / 'a#002.png'), str(root / 'gt' / 'a#001.png')]
    assert [o['seg_map_path'] for o in b['objects']] == \
        [str(root / 'gt' / 'b#002.png')]
    assert tuple(ds[0]['data_samples'].gt_object_masks.shape) == (2, H, W)


def test_focuscut_relative_data_root(build, focuscut_root, monkeypatch):
    """A relative ``data_root`` that exists is no metainfo file name."""
    root, _ = focuscut_root
    monkeypatch.chdir(root.parent)
    ds = build('FocusCutDataset', 'DAVIS')
    assert ds.dataset_name == 'DAVIS'
    assert ds.metainfo['dataset_name'] == 'DAVIS'
    assert len(ds) == 2
    assert tuple(ds[1]['data_samples'].gt_object_masks.shape) == (2, H, W)


@pytest.mark.parametrize('suffix', ['/', '/./'])
def test_focuscut_name_of_root_with_trailing_slash(build, focuscut_root,
                                                   suffix):
    root, _ = focuscut_root
    ds = build('FocusCutDataset', str(root) + suffix)
    assert ds.dataset_name == 'DAVIS'
    assert ds.get_data_info(0)['dataset_name'] == 'DAVIS'


def test_dataset_name_is_not_a_file_name(build, grabcut_root, monkeypatch):
    """A ``dataset_name`` that names an existing file stays the name."""
    root, _ = grabcut_root
    (root / 'GC').write_text('first line\nsecond line\n')
    monkeypatch.chdir(root)
    ds = build('GrabCutDataset', root, dataset_name='GC')
    assert ds.dataset_name == 'GC'
    assert ds.metainfo['dataset_name'] == 'GC'
    assert ds.get_data_info(0)['dataset_name'] == 'GC'
    assert ds[0]['data_samples'].metainfo['dataset_name'] == 'GC'


# val.txt lines -> objects per image, in order: 'a' means all of a's masks.
LISTED_TWICE = [
    (['a', 'a#001'], [['a#001', 'a#002']]),
    (['a#001', 'a'], [['a#001', 'a#002']]),
    (['a#002', 'a', 'a#002'], [['a#002', 'a#001']]),
    (['a#001', 'a#001'], [['a#001']]),
    (['b#001', 'a#001', 'b#001', 'a'], [['b#001'], ['a#001', 'a#002']]),
]


@pytest.mark.parametrize('lines, expected', LISTED_TWICE)
def test_focuscut_object_listed_twice_is_evaluated_once(
        build, focuscut_root, layout, lines, expected):
    root, _ = focuscut_root
    layout.text('DAVIS/list/val.txt', lines)
    ds = build('FocusCutDataset', root)
    items = items_of(ds)
    assert [it['img_path'] for it in items] == \
        [str(root / 'img' / f'{names[0][0]}.jpg') for names in expected]
    for i, (item, names) in enumerate(zip(items, expected)):
        assert [o['seg_map_path'] for o in item['objects']] == \
            [str(root / 'gt' / f'{n}.png') for n in names]
        gt = ds[i]['data_samples'].gt_object_masks
        assert tuple(gt.shape) == (len(names), H, W)


# ------------------------------------------------- base class, orphan masks
def test_layout_defaults_are_known_formats():
    """Every registered dataset's default decoder exists."""
    # (InteractiveSegDataset's own LAYOUT default is left out: see the
    # base-class test below, which names its format.)
    for name in ('GrabCutDataset', 'BerkeleyDataset', 'DAVISDataset',
                 'COCOMValDataset', 'HQSeg44KDataset', 'FocusCutDataset',
                 'SBDDataset', 'PascalVOCInstanceDataset'):
        assert DATASETS.get(name).LAYOUT['mask_format'] in MASK_DECODERS


def test_base_class_with_explicit_layout(layout, pipeline, check_packed):
    raw = raw_mask([0, 128, 255])
    layout.image('pics/p.png')
    layout.mask('masks/p.png', raw)
    ds = InteractiveSegDataset(
        data_root=str(layout.root),
        data_prefix=dict(img_path='pics', seg_map_path='masks'),
        img_suffix='.png',
        mask_format='grabcut',
        pipeline=pipeline)
    assert ds.dataset_name == 'custom'
    check_item(
        ds.get_data_info(0), layout.root / 'pics' / 'p.png',
        [layout.root / 'masks' / 'p.png'], 'custom', 'grabcut')
    check_packed(ds[0], grabcut_expected(raw)[None])


def test_masks_without_image_are_left_out_with_a_warning(
        build, grabcut_root, layout, warnings_log):
    root, _ = grabcut_root
    layout.mask('boundary_GT/zz_orphan.bmp', raw_mask([]))
    layout.mask('boundary_GT/yy_orphan.bmp', raw_mask([]))
    ds = build('GrabCutDataset', root)
    assert len(ds) == 3
    assert all('orphan' not in it['objects'][0]['seg_map_path']
               for it in items_of(ds))
    messages = [r.getMessage() for r in warnings_log]
    assert len(messages) == 1, messages
    assert warnings_log[0].levelno == logging.WARNING
    msg = messages[0]
    assert re.search(r'\b2 masks?\b', msg), msg
    assert str(root / 'boundary_GT') in msg
    assert any(
        str(root / 'boundary_GT' / name) in msg
        for name in ('yy_orphan.bmp', 'zz_orphan.bmp'))


def test_no_warning_without_orphan_masks(build, grabcut_root, warnings_log):
    root, _ = grabcut_root
    build('GrabCutDataset', root)
    assert warnings_log == []


def test_hqseg_orphan_masks_warned_per_part(build, layout, warnings_log):
    write_hqseg(layout, parts=['COIFT', 'HRSOD'])
    orphan = layout.mask(f'{HQSEG["HRSOD"][1]}/lonely.png', raw_mask([]))
    ds = build('HQSeg44KDataset', layout.root, parts=['COIFT', 'HRSOD'])
    assert len(ds) == 3
    messages = [r.getMessage() for r in warnings_log]
    assert len(messages) == 1, messages
    assert re.search(r'\b1 masks?\b', messages[0]), messages[0]
    assert str(orphan) in messages[0]
