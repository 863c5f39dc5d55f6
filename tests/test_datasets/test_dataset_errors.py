# Copyright (c) samref contributors. All rights reserved.
"""Broken layouts raise errors that name the offending file or folder;
nothing is skipped silently."""
import os.path as osp
import re

import numpy as np
import pytest

from samref.datasets import DatasetLayoutError
from samref.datasets.mask_formats import MASK_DECODERS, MaskFileError

H, W = 9, 12
BLOCK = np.zeros((H, W), np.uint8)
BLOCK[2:6, 3:9] = 255
IDS = np.zeros((H, W), np.uint8)
IDS[2:6, 3:9] = 1
IDS[6, 3:9] = 255


def named(path) -> str:
    """A ``match`` pattern for a message that names ``path``."""
    return re.escape(osp.normpath(str(path)))


# Registered type -> function writing one valid image/mask pair named
# ``stem`` and returning (image path, mask path, data_root).
def write_grabcut(layout, stem):
    return (layout.image(f'data_GT/{stem}.jpg'),
            layout.mask(f'boundary_GT/{stem}.bmp', BLOCK), layout.root)


def write_berkeley(layout, stem):
    return (layout.image(f'images/{stem}.jpg'),
            layout.mask(f'masks/{stem}.png', BLOCK), layout.root)


def write_img_gt(layout, stem):
    return (layout.image(f'img/{stem}.jpg'),
            layout.mask(f'gt/{stem}.png', BLOCK), layout.root)


def write_hqseg_coift(layout, stem):
    base = 'thin_object_detection/COIFT'
    return (layout.image(f'{base}/images/{stem}.jpg'),
            layout.mask(f'{base}/masks/{stem}.png', BLOCK), layout.root)


def write_focuscut(layout, stem):
    lines = (layout.root / 'list' / 'val.txt').read_text().split() \
        if (layout.root / 'list' / 'val.txt').exists() else []
    layout.text('list/val.txt', lines + [f'{stem}#001'])
    return (layout.image(f'img/{stem}.jpg'),
            layout.mask(f'gt/{stem}#001.png', BLOCK // 255), layout.root)


def write_sbd(layout, stem):
    lines = (layout.root / 'val.txt').read_text().split() \
        if (layout.root / 'val.txt').exists() else []
    layout.text('val.txt', lines + [stem])
    return (layout.image(f'img/{stem}.jpg'),
            layout.sbd_mat(f'inst/{stem}.mat', IDS), layout.root)


def write_voc(layout, stem):
    val = layout.root / 'ImageSets' / 'Segmentation' / 'val.txt'
    lines = val.read_text().split() if val.exists() else []
    layout.text('ImageSets/Segmentation/val.txt', lines + [stem])
    return (layout.image(f'JPEGImages/{stem}.jpg'),
            layout.palette_mask(f'SegmentationObject/{stem}.png',
                                IDS), layout.root)


WRITERS = {
    'GrabCutDataset': (write_grabcut, {}),
    'BerkeleyDataset': (write_berkeley, {}),
    'DAVISDataset': (write_img_gt, {}),
    'COCOMValDataset': (write_img_gt, {}),
    'HQSeg44KDataset': (write_hqseg_coift, dict(parts='COIFT')),
    'FocusCutDataset': (write_focuscut, {}),
    'SBDDataset': (write_sbd, {}),
    'PascalVOCInstanceDataset': (write_voc, {}),
}
ALL_TYPES = list(WRITERS) + ['HQSeg44KDataset-all']
PAIR_TYPES = [
    'GrabCutDataset', 'BerkeleyDataset', 'DAVISDataset', 'COCOMValDataset',
    'HQSeg44KDataset'
]
LIST_TYPES = ['FocusCutDataset', 'SBDDataset', 'PascalVOCInstanceDataset']


def test_layout_error_is_file_not_found():
    assert issubclass(DatasetLayoutError, FileNotFoundError)


def test_mask_file_error_is_value_error():
    assert issubclass(MaskFileError, ValueError)


@pytest.mark.parametrize('type_', ALL_TYPES)
def test_missing_data_root(build, tmp_path, type_):
    missing = tmp_path / 'no_such_dataset'
    kwargs = {} if type_.endswith('-all') else WRITERS[type_][1]
    with pytest.raises(DatasetLayoutError, match=named(missing)):
        build(type_.split('-')[0], missing, **kwargs)


@pytest.mark.parametrize('type_', list(WRITERS))
def test_missing_mask_folder(build, layout, type_):
    write, kwargs = WRITERS[type_]
    _, mask, root = write(layout, 'a')
    mask.unlink()
    mask.parent.rmdir()
    with pytest.raises(DatasetLayoutError, match=named(mask.parent)):
        build(type_, root, **kwargs)


@pytest.mark.parametrize('type_', list(WRITERS))
def test_image_without_mask(build, layout, type_):
    """A second image whose mask is missing raises; it is not dropped."""
    write, kwargs = WRITERS[type_]
    write(layout, 'a')
    img, mask, root = write(layout, 'b')
    mask.unlink()
    with pytest.raises(DatasetLayoutError, match=named(img)):
        build(type_, root, **kwargs)


@pytest.mark.parametrize('type_', PAIR_TYPES)
def test_empty_image_folder(build, layout, type_):
    write, kwargs = WRITERS[type_]
    img, _, root = write(layout, 'a')
    img.unlink()
    with pytest.raises(DatasetLayoutError, match=named(img.parent)):
        build(type_, root, **kwargs)


def test_hqseg_all_parts_needs_every_part(build, layout):
    _, _, root = write_hqseg_coift(layout, 'a')
    with pytest.raises(DatasetLayoutError, match=named(root / 'DIS5K')):
        build('HQSeg44KDataset', root)


def test_two_images_with_one_stem(build, layout):
    """``a.jpg`` and ``a.bmp`` would both claim ``boundary_GT/a.bmp``."""
    write_grabcut(layout, 'a')
    layout.image('data_GT/a.bmp')
    with pytest.raises(DatasetLayoutError) as info:
        build('GrabCutDataset', layout.root)
    msg = str(info.value)
    assert str(layout.root / 'data_GT') in msg
    assert 'a.bmp' in msg and 'a.jpg' in msg


@pytest.mark.parametrize('type_', LIST_TYPES)
def test_missing_list_file(build, layout, type_):
    write, kwargs = WRITERS[type_]
    write(layout, 'a')
    val = {
        'FocusCutDataset': 'list/val.txt',
        'SBDDataset': 'val.txt',
        'PascalVOCInstanceDataset': 'ImageSets/Segmentation/val.txt',
    }[type_]
    (layout.root / val).unlink()
    with pytest.raises(DatasetLayoutError, match=named(layout.root / val)):
        build(type_, layout.root, **kwargs)


@pytest.mark.parametrize('type_', LIST_TYPES)
def test_list_names_missing_image(build, layout, type_):
    write, kwargs = WRITERS[type_]
    write(layout, 'a')
    img, _, root = write(layout, 'ghost_image')
    img.unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build(type_, root, **kwargs)
    msg = str(info.value)
    assert 'ghost_image' in msg
    assert 'val.txt' in msg
    # suffixes are spelt out, not printed as a Python tuple
    assert "('" not in msg and "')" not in msg


def test_focuscut_image_line_without_masks(build, layout):
    """A list line naming an image whose masks are all missing."""
    write_focuscut(layout, 'a')
    layout.image('img/b.jpg')
    layout.text('list/val.txt', ['a#001', 'b'])
    with pytest.raises(
            DatasetLayoutError,
            match=named(layout.root / 'img' / 'b.jpg')) as info:
        build('FocusCutDataset', layout.root)
    assert 'b#001' in str(info.value)


@pytest.mark.parametrize('type_', ['GrabCutDataset', 'DAVISDataset'])
def test_mask_size_differs_from_image(build, layout, type_):
    write, kwargs = WRITERS[type_]
    img, mask, root = write(layout, 'a')
    layout.mask(mask.relative_to(root).as_posix(), np.zeros((H + 1, W)))
    ds = build(type_, root, **kwargs)
    with pytest.raises(MaskFileError) as info:
        ds[0]
    msg = str(info.value)
    assert str(mask) in msg and str(img) in msg


def test_instance_map_size_differs_from_image(build, layout):
    img, _, root = write_voc(layout, 'a')
    map_path = layout.palette_mask('SegmentationObject/a.png', IDS[:, :-1])
    ds = build('PascalVOCInstanceDataset', root)
    with pytest.raises(MaskFileError) as info:
        ds[0]
    assert str(map_path) in str(info.value) and str(img) in str(info.value)


def test_sbd_map_size_differs_from_image(build, layout):
    img, _, root = write_sbd(layout, 'a')
    mat = layout.sbd_mat('inst/a.mat', IDS[1:])
    ds = build('SBDDataset', root)
    with pytest.raises(MaskFileError) as info:
        ds[0]
    assert str(mat) in str(info.value) and str(img) in str(info.value)


@pytest.mark.parametrize(
    'type_',
    ['GrabCutDataset', 'BerkeleyDataset', 'DAVISDataset', 'FocusCutDataset'])
def test_corrupt_mask_file(build, layout, type_):
    """Garbage bytes in a mask raise when the pipeline reads it."""
    write, kwargs = WRITERS[type_]
    _, mask, root = write(layout, 'a')
    layout.garbage(mask.relative_to(root).as_posix())
    ds = build(type_, root, **kwargs)
    with pytest.raises(MaskFileError, match=named(mask)):
        ds[0]


def test_mask_removed_after_build(build, layout):
    _, mask, root = write_img_gt(layout, 'a')
    ds = build('COCOMValDataset', root)
    mask.unlink()
    with pytest.raises(MaskFileError, match=named(mask)):
        ds[0]


def test_corrupt_instance_map_png(build, layout):
    """VOC maps are read when the dataset is built, to list the ids."""
    _, map_path, root = write_voc(layout, 'a')
    layout.garbage('SegmentationObject/a.png')
    with pytest.raises(MaskFileError, match=named(map_path)):
        build('PascalVOCInstanceDataset', root)


def test_corrupt_mat_file(build, layout):
    _, mat, root = write_sbd(layout, 'a')
    layout.garbage('inst/a.mat')
    with pytest.raises(MaskFileError, match=named(mat)):
        build('SBDDataset', root)


def test_mat_file_without_gtinst(build, layout):
    from scipy.io import savemat
    _, mat, root = write_sbd(layout, 'a')
    savemat(str(mat), {'GTcls': {'Segmentation': IDS}})
    with pytest.raises(MaskFileError, match=named(mat)):
        build('SBDDataset', root)


def test_voc_map_without_instance(build, layout):
    """Only background and boundary: no sample, so the map is an error."""
    write_voc(layout, 'a')
    _, map_path, root = write_voc(layout, 'b')
    layout.palette_mask('SegmentationObject/b.png', np.where(IDS == 1, 0, IDS))
    with pytest.raises(DatasetLayoutError, match=named(map_path)):
        build('PascalVOCInstanceDataset', root)


def test_sbd_map_without_instance(build, layout):
    write_sbd(layout, 'a')
    _, mat, root = write_sbd(layout, 'b')
    layout.sbd_mat('inst/b.mat', np.zeros((H, W)))
    with pytest.raises(DatasetLayoutError, match=named(mat)):
        build('SBDDataset', root)


@pytest.mark.parametrize('parts',
                         [['COIFT', 'NoSuchPart'], ['dis-vd'], 'NoSuchPart',
                          ('HRSOD', 'hrsod')])
def test_unknown_hqseg_part(build, layout, parts):
    write_hqseg_coift(layout, 'a')
    bad = parts if isinstance(parts, str) else parts[-1]
    with pytest.raises(KeyError, match=bad) as info:
        build('HQSeg44KDataset', layout.root, parts=parts)
    # the message lists the parts to choose from
    for part in ('DIS-VD', 'ThinObject5K', 'COIFT', 'HRSOD'):
        assert part in str(info.value)


@pytest.mark.parametrize('parts', [[], ()])
def test_hqseg_no_part(build, layout, parts):
    """No part would be an empty dataset, not all four parts."""
    write_hqseg_coift(layout, 'a')
    with pytest.raises(ValueError, match='parts'):
        build('HQSeg44KDataset', layout.root, parts=parts)


@pytest.mark.parametrize('type_', list(WRITERS))
def test_unknown_mask_format(build, layout, type_):
    """An unknown decoder is reported when the dataset is built, listing
    the known ones, before any file of the layout is looked at."""
    write, kwargs = WRITERS[type_]
    _, _, root = write(layout, 'a')
    with pytest.raises(KeyError, match='no_such_format') as info:
        build(type_, root, mask_format='no_such_format', **kwargs)
    assert all(name in str(info.value) for name in MASK_DECODERS)
    # also with a data_root that does not exist
    with pytest.raises(KeyError, match='binary'):
        build(type_, root / 'missing', mask_format='binary', **kwargs)


# Registered type -> raw mask values with no object pixel for its format.
EMPTY_MASKS = {
    'GrabCutDataset': np.where(BLOCK > 0, 128, 0),  # only the unsure band
    'BerkeleyDataset': np.zeros((H, W)),
    'DAVISDataset': np.zeros((H, W)),
    'COCOMValDataset': np.zeros((H, W)),
    'HQSeg44KDataset': BLOCK // 255,  # a 0/1 mask read with > 127
    'FocusCutDataset': np.where(BLOCK > 0, 255, 0),  # only void
}


@pytest.mark.parametrize('type_', list(EMPTY_MASKS))
def test_mask_without_object_pixel(build, layout, type_):
    """An object without any object pixel is an error naming the file, not
    a sample with an undefined IoU."""
    write, kwargs = WRITERS[type_]
    write(layout, 'a')
    _, mask, root = write(layout, 'b')
    layout.mask(mask.relative_to(root).as_posix(), EMPTY_MASKS[type_])
    ds = build(type_, root, **kwargs)
    assert len(ds) == 2
    ds[0]
    with pytest.raises(MaskFileError, match='no object pixel') as info:
        ds[1]
    assert str(mask) in str(info.value)
