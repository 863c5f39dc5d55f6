# Copyright (c) samref contributors. All rights reserved.
"""Decoding of mask files into object (1) / background (0) / ignore (-1)."""
import numpy as np
import pytest
from PIL import Image

from samref.datasets.mask_formats import (MASK_DECODERS, MaskFileError,
                                          check_mask_format, decode_mask,
                                          read_mask_file, read_raw_mask,
                                          read_sbd_instances)

FORMATS = {
    'grabcut', 'nonzero', 'grey', 'sbd_instance', 'voc_instance', 'focuscut'
}
# Raw value -> decoded value, one table per format of PROTOCOL.md "Samples".
GRABCUT = {0: 0, 1: 0, 100: 0, 127: 0, 128: -1, 129: 1, 200: 1, 255: 1}
NONZERO = {0: 0, 1: 1, 2: 1, 38: 1, 127: 1, 128: 1, 200: 1, 255: 1}
GREY = {0: 0, 1: 0, 64: 0, 127: 0, 128: 1, 200: 1, 255: 1}
FOCUSCUT = {0: 0, 1: 1, 2: 0, 128: 0, 254: 0, 255: -1}


def row(table: dict) -> tuple:
    raw = np.array([list(table)], np.uint8)
    expected = np.array([list(table.values())], np.int8)
    return raw, expected


def test_decoders_registered():
    assert set(MASK_DECODERS) == FORMATS


@pytest.mark.parametrize('fmt, table', [
    ('grabcut', GRABCUT),
    ('nonzero', NONZERO),
    ('grey', GREY),
    ('focuscut', FOCUSCUT),
])
def test_decoder_values(fmt, table):
    raw, expected = row(table)
    out = MASK_DECODERS[fmt](raw, None)
    assert out.dtype == np.int8
    assert out.shape == raw.shape
    np.testing.assert_array_equal(out, expected)
    # decode_mask is the same decoder, looked up by name
    np.testing.assert_array_equal(decode_mask(raw, fmt), expected)


@pytest.mark.parametrize('k', [1, 38, 255])
def test_nonzero_decoder_any_positive_value(k):
    """DAVIS: a {0, k} mask is object wherever it is k, for any k > 0."""
    raw = np.array([[0, k, k, 0]], np.uint8)
    np.testing.assert_array_equal(MASK_DECODERS['nonzero'](raw, None),
                                  [[0, 1, 1, 0]])


def test_grey_decoder_ignores_0_1_masks():
    """HQSeg-44K: > 127 on 0..255 masks, so a 0/1 mask has no object."""
    raw = np.array([[0, 1, 1, 0]], np.uint8)
    assert not MASK_DECODERS['grey'](raw, None).any()


@pytest.mark.parametrize('fmt, instance_id', [('nonzero', None),
                                              ('grey', None),
                                              ('sbd_instance', 255),
                                              ('sbd_instance', 128)])
def test_decoders_without_ignore(fmt, instance_id):
    """PROTOCOL.md: DAVIS, COCO-MVal, HQSeg-44K and SBD have no ignore."""
    raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = MASK_DECODERS[fmt](raw, instance_id)
    assert out.dtype == np.int8
    assert out.min() == 0 and out.max() == 1


def test_sbd_instance_decoder():
    """SBD: id 255 is an ordinary instance, nothing is ignored."""
    raw = np.array([[0, 1, 2, 3, 255, 2]], np.uint8)
    decode = MASK_DECODERS['sbd_instance']
    np.testing.assert_array_equal(decode(raw, 2), [[0, 0, 1, 0, 0, 1]])
    np.testing.assert_array_equal(decode(raw, 1), [[0, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(decode(raw, 255), [[0, 0, 0, 0, 1, 0]])
    assert decode(raw, 2).dtype == np.int8
    with pytest.raises(ValueError, match='instance_id'):
        decode(raw, None)


def test_voc_instance_decoder():
    """VOC: the instance is 1, the 255 boundary is ignore for every id."""
    raw = np.array([[0, 1, 2, 3, 255, 2]], np.uint8)
    decode = MASK_DECODERS['voc_instance']
    np.testing.assert_array_equal(decode(raw, 2), [[0, 0, 1, 0, -1, 1]])
    np.testing.assert_array_equal(decode(raw, 1), [[0, 1, 0, 0, -1, 0]])
    assert decode(raw, 2).dtype == np.int8
    with pytest.raises(ValueError, match='instance_id'):
        decode(raw, None)


@pytest.mark.parametrize('fmt', ['sbd_instance', 'voc_instance'])
def test_instance_decoders_int32_ids(fmt):
    """SBD maps arrive as int32 and may be compared with large ids."""
    raw = np.array([[0, 7, 300, 255]], np.int32)
    expected = [[0, 1, 0, -1 if fmt == 'voc_instance' else 0]]
    np.testing.assert_array_equal(MASK_DECODERS[fmt](raw, 7), expected)
    np.testing.assert_array_equal(MASK_DECODERS[fmt](raw, 300)[0, :3],
                                  [0, 0, 1])


@pytest.mark.parametrize('fmt', sorted(FORMATS))
def test_decoding_leaves_raw_unchanged(fmt):
    """``LoadObjectMasks`` decodes one raw map for several objects."""
    raw = np.array([[0, 1, 2, 127, 128, 129, 255]], np.uint8)
    before = raw.copy()
    decode_mask(raw, fmt, 2)
    np.testing.assert_array_equal(raw, before)


@pytest.mark.parametrize('fmt', sorted(FORMATS))
def test_check_mask_format_known(fmt):
    assert check_mask_format(fmt) == fmt


@pytest.mark.parametrize('fmt', ['binary', 'instance', 'Grabcut', ''])
def test_check_mask_format_unknown(fmt):
    """The removed names and near misses raise, listing the known ones."""
    with pytest.raises(KeyError) as info:
        check_mask_format(fmt)
    msg = str(info.value)
    assert repr(fmt) in msg
    assert all(name in msg for name in FORMATS)


def test_read_mask_file_keeps_palette_indices(layout):
    """A ``P`` PNG gives its indices, not the palette's colours."""
    ids = np.array([[0, 1, 2], [255, 2, 0]], np.uint8)
    path = layout.palette_mask('obj.png', ids)
    out = read_mask_file(str(path))
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out, ids)


def test_read_mask_file_colour_mask_gives_one_channel(tmp_path):
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 1] = 255
    path = tmp_path / 'rgb.png'
    Image.fromarray(rgb).save(path)
    out = read_mask_file(str(path))
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out, [[0, 255, 0], [0, 0, 0]])


def test_read_mask_file_bmp(layout):
    values = np.array([[0, 128, 255]], np.uint8)
    path = layout.mask('m.bmp', values)
    np.testing.assert_array_equal(read_mask_file(str(path)), values)


def test_read_mask_file_garbage(layout):
    path = layout.garbage('bad.png')
    with pytest.raises(MaskFileError, match='bad.png'):
        read_mask_file(str(path))


def test_read_mask_file_missing(tmp_path):
    path = tmp_path / 'absent.png'
    with pytest.raises(MaskFileError, match='absent.png'):
        read_mask_file(str(path))


def test_read_sbd_instances(layout):
    ids = np.array([[0, 1, 1], [2, 2, 0]], np.uint8)
    path = layout.sbd_mat('inst/x.mat', ids)
    out = read_sbd_instances(str(path))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ids)


def test_read_sbd_instances_garbage(layout):
    path = layout.garbage('inst/broken.mat')
    with pytest.raises(MaskFileError, match='broken.mat'):
        read_sbd_instances(str(path))


def test_read_sbd_instances_without_gtinst(tmp_path):
    from scipy.io import savemat
    path = tmp_path / 'cls.mat'
    savemat(str(path), {'GTcls': {'Segmentation': np.zeros((2, 2))}})
    with pytest.raises(MaskFileError, match='cls.mat'):
        read_sbd_instances(str(path))


def test_read_raw_mask_reads_mat_as_sbd(layout):
    ids = np.array([[0, 1, 2, 255]], np.uint8)
    path = layout.sbd_mat('a.mat', ids)
    raw = read_raw_mask(str(path))
    assert raw.dtype == np.int32
    np.testing.assert_array_equal(raw, ids)
    np.testing.assert_array_equal(
        decode_mask(raw, 'sbd_instance', 2), [[0, 0, 1, 0]])


def test_read_raw_mask_image_values_unchanged(layout):
    raw, _ = row(GRABCUT)
    path = layout.mask('a.bmp', raw)
    np.testing.assert_array_equal(read_raw_mask(str(path)), raw)


@pytest.mark.parametrize('name', ['absent.png', 'absent.mat'])
def test_read_raw_mask_missing(tmp_path, name):
    with pytest.raises(MaskFileError, match=name):
        read_raw_mask(str(tmp_path / name))


def test_decode_mask_grabcut_file(layout):
    raw, expected = row(GRABCUT)
    path = layout.mask('a.bmp', raw)
    out = decode_mask(read_raw_mask(str(path)), 'grabcut')
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, expected)


def test_decode_mask_unknown_format():
    with pytest.raises(KeyError, match='no-such-format'):
        decode_mask(np.zeros((2, 2), np.uint8), 'no-such-format')
